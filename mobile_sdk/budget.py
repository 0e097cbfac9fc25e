"""`export --budget AGREEMENT`: per platform, the smallest (or fastest) artifact that still gives
the same answers.

Every candidate precision of each platform is converted and checked by the parity checker on the
evaluation suite; a candidate passes the gate when both of its towers run, give finite outputs
with a test-split cosine mean of at least `cosine` against the eager model, and the pair's
zero-shot agreement with the eager model (retrieval agreement for a captions file) is at least
`agreement`. Of the passing candidates the smallest (both towers' bytes together) is kept, or,
with `prefer="latency"`, the fastest on this host (the towers' median batch-1 latency at the most
threads measured). The others are removed from the export; the manifest's `selection` records the
choice and every candidate with its figures and, for a rejected one, why.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ConfigError, ConversionError

# Candidates per platform, smallest first (an explicit --precision list replaces them).
CANDIDATES = {
    "executorch": ["int4w", "int8_dynamic", "int8", "fp32"],
    "tflite": ["int4w", "int8", "int8_cpu", "fp16", "fp32"],
    "coreml": ["palmix", "pal4", "pal6", "pal8", "fp16"],
}


@dataclass(frozen=True)
class Budget:
    agreement: float = 0.98  # zero-shot (or retrieval) top-1 agreement with the eager model, at least
    cosine: float = 0.99  # test-split cosine mean of each tower, at least
    prefer: str = "size"  # "size" | "latency"

    def __post_init__(self):
        if not 0.0 < self.agreement <= 1.0:
            raise ConfigError(f"--budget {self.agreement}: give the zero-shot agreement to keep, in (0, 1], e.g. 0.98 "
                              f"(or 98%)")
        if not 0.0 < self.cosine <= 1.0:
            raise ConfigError(f"budget cosine {self.cosine} must be in (0, 1]")
        if self.prefer not in ("size", "latency"):
            raise ConfigError(f"--prefer {self.prefer!r}: choose size or latency")


def parse_budget(text: str | float) -> float:
    """`0.98`, `98` or `98%` -> 0.98."""
    s = str(text).strip()
    try:
        v = float(s.rstrip("%"))
    except ValueError:
        raise ConfigError(f"--budget {text!r}: give the zero-shot agreement to keep, e.g. 0.98 or 98%") from None
    return v / 100 if s.endswith("%") or v > 1 else v


def candidates(platform: str, module) -> list[str]:
    return [p for p in CANDIDATES.get(platform, []) if p in module.PRECISIONS] or [module.PRECISIONS[0]]


def _latency(bench: dict | None) -> dict[tuple[str, str, str], float]:
    if not bench or not bench.get("rows"):
        return {}
    n = max(r["threads"] for r in bench["rows"])
    out = {}
    for r in bench["rows"]:
        if r["kind"] == "artifact" and r["threads"] == n and r.get("median_ms") is not None:
            plat, tower, prec = r["name"].split(" ", 2)
            out[(plat, tower, prec)] = r["median_ms"]
    return out


def choose(report: dict, towers, budget: Budget, bench: dict | None = None) -> dict:
    """{platform: {"chosen", "budget", "candidates": [...]}} from the parity report of every
    candidate. ConversionError when a platform has no candidate within the budget."""
    latency = _latency(bench)
    groups: dict[str, dict[str, list[dict]]] = {}
    for a in report["artifacts"]:
        groups.setdefault(a["platform"], {}).setdefault(a["precision"], []).append(a)
    out = {}
    for plat, precs in groups.items():
        rows = []
        for prec, arts in precs.items():
            by_tower = {a["tower"]: a for a in arts}
            tasks = next((a.get("tasks") for a in arts if a.get("tasks")), {}) or {}
            ag = tasks.get("agreement") or {}
            agreement = ag.get("zeroshot", ag.get("retrieval"))
            cosines = [by_tower[t].get("test", {}).get("cosine_mean") for t in towers if t in by_tower]
            ms = [latency.get((plat, t, prec)) for t in towers]
            row = {"precision": prec, "bytes": sum(a["bytes"] for a in arts), "agreement": agreement,
                   "cosine_mean": min(c for c in cosines if c is not None) if any(c is not None for c in cosines)
                   else None, "latency_ms": sum(ms) if all(m is not None for m in ms) else None}
            why = []
            missing = [t for t in towers if t not in by_tower]
            skipped = [a for a in arts if a["status"] == "skipped"]
            if missing:
                why.append(f"no {', '.join(missing)} tower")
            if skipped:
                why.append(f"not run here: {skipped[0]['reasons'][0] if skipped[0]['reasons'] else 'skipped'}")
            if row["cosine_mean"] is None or len([c for c in cosines if c is not None]) < len(towers):
                why.append("no cosine figure (the artifact did not run)")
            elif row["cosine_mean"] < budget.cosine:
                why.append(f"cosine mean {row['cosine_mean']:.4f} < {budget.cosine}")
            if len(towers) == 2:
                if agreement is None:
                    why.append("no agreement figure")
                elif agreement < budget.agreement:
                    why.append(f"agreement {100 * agreement:.1f}% < {100 * budget.agreement:.1f}%")
            if budget.prefer == "latency" and row["latency_ms"] is None and not why:
                why.append("no latency measured on this host")
            row["passed"], row["reason"] = not why, "; ".join(why) or None
            rows.append(row)
        key = (lambda r: (r["latency_ms"], r["bytes"])) if budget.prefer == "latency" else (lambda r: r["bytes"])
        passing = sorted((r for r in rows if r["passed"]), key=key)
        if not passing:
            raise ConversionError(
                f"{plat}: no precision is within the budget (agreement >= {100 * budget.agreement:.1f}%, cosine mean "
                f">= {budget.cosine}): " + "; ".join(f"{r['precision']}: {r['reason']}" for r in rows)
                + ". Loosen --budget, or pass --precision with other candidates")
        chosen = passing[0]["precision"]
        for r in rows:
            r["chosen"] = r["precision"] == chosen
        out[plat] = {"chosen": chosen, "budget": asdict(budget),
                     "candidates": sorted(rows, key=lambda r: r["bytes"])}
    return out


def keep_chosen(folder: Path, report: dict, selection: dict) -> dict:
    """Remove every rejected candidate's files (artifact, sidecar, debug twin, a converter log no
    kept artifact names) from the export folder `folder`; -> the parity report of the kept ones."""
    folder = Path(folder)
    kept, dropped = [], []
    for a in report["artifacts"]:
        (kept if selection.get(a["platform"], {}).get("chosen") == a["precision"] else dropped).append(a)
    logs_kept = set()
    for a in kept:
        meta = json.loads((folder / a["file"]).with_suffix(".json").read_text())
        if (meta.get("extra") or {}).get("log"):
            logs_kept.add((folder / a["file"]).parent / Path(meta["extra"]["log"]).name)
    for a in dropped:
        path = folder / a["file"]
        sidecar = path.with_suffix(".json")
        extra = json.loads(sidecar.read_text()).get("extra") or {}
        for ref in ((extra.get("debug_twin") or {}).get("file"), extra.get("log")):
            p = path.parent / Path(ref).name if ref and Path(ref).is_absolute() else (path.parent / ref if ref else None)
            if p is not None and p not in logs_kept and p.is_file():
                p.unlink()
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
    out = dict(report)
    out["artifacts"] = kept
    out["passed"] = all(a["status"] != "fail" for a in kept)
    out["selection"] = selection
    return out


def selection_png(selection: dict) -> bytes | None:
    """Each platform's candidates: size against agreement, the budget's pass line, the chosen one
    ringed, rejected ones hollow."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not selection:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    colors = {"executorch": "#1f77b4", "tflite": "#2ca02c", "coreml": "#d62728"}
    bar = None
    for plat, sel in selection.items():
        bar = sel["budget"]["agreement"]
        for r in sel["candidates"]:
            if r["agreement"] is None:
                continue
            c = colors.get(plat, "#555555")
            ax.scatter(r["bytes"] / 1e6, 100 * r["agreement"], s=140 if r["chosen"] else 60,
                       facecolors=c if r["passed"] else "none", edgecolors="black" if r["chosen"] else c,
                       linewidths=2 if r["chosen"] else 1.2, zorder=3)
            ax.annotate(f"{plat} {r['precision']}" + (" (kept)" if r["chosen"] else ""),
                        (r["bytes"] / 1e6, 100 * r["agreement"]), textcoords="offset points", xytext=(6, 4),
                        fontsize=8)
    if bar is not None:
        ax.axhline(100 * bar, color="#888888", linestyle="--", linewidth=1)
        ax.text(ax.get_xlim()[1], 100 * bar, f" budget {100 * bar:.1f}%", va="bottom", ha="right", fontsize=8,
                color="#555555")
    ax.set_xscale("log")
    ax.set_xlabel("both towers, MB (log)")
    ax.set_ylabel("zero-shot agreement with eager, %")
    ax.set_title("candidates per platform: filled = within the budget, ringed = kept")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


__all__ = ["Budget", "CANDIDATES", "candidates", "choose", "keep_chosen", "parse_budget", "selection_png"]
