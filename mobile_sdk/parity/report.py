"""Parity reports: `parity.json` (machine-readable), `parity.md`, and a self-contained
`parity.html` (tables + per-layer SQNR plots embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path


def suite_label(report: dict) -> str:
    """The evaluation suite a report's task figures come from, in words."""
    suite = report.get("suite") or {"kind": "world"}
    n = report["n_test_per_task"]
    if suite["kind"] == "world":
        return f"the built-in world's test split, {n} samples per task"
    if suite["kind"] == "folder":
        return (f"image folder {suite['path']} ({len(suite['classes'])} classes, at most {n} images each; "
                f"templates {suite['templates']})")
    return f"caption file {suite['path']} (first {n} lines)"


def _fmt(v, digits=5) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "inf"
        return f"{v:.{digits}f}"
    return str(v)


def summary_rows(report: dict) -> list[list[str]]:
    rows = []
    for a in report["artifacts"]:
        ag = a.get("tasks", {}).get("agreement", {})
        loc = a.get("localization") or {}
        rows.append([
            a["platform"], a["tower"], a["precision"], f"{a['bytes'] / 1e6:.2f} MB", a["status"].upper(),
            _fmt(a["test"].get("cosine_mean")), _fmt(a["test"].get("cosine_min")), _fmt(a["test"].get("sqnr_db"), 1),
            _fmt(a["calibration"].get("cosine_mean")),
            f"{100 * ag['zeroshot']:.1f}%" if "zeroshot" in ag else "-",
            f"{100 * ag['retrieval']:.1f}%" if "retrieval" in ag else "-",
            _loc_cell(loc),
        ])
    return rows


def _loc_cell(loc: dict) -> str:
    if not loc:
        return "-"
    if loc.get("status") not in ("ok", "replica_mismatch"):
        return f"({loc.get('status')})"
    first = loc.get("first_divergent_layer")
    return first or f"none below {loc['threshold_db']:g} dB (weakest: {loc.get('weakest_layer', '-')})"


HEADER = ["platform", "tower", "precision", "size", "status", "test cos mean", "test cos min", "test SQNR dB",
          "calib cos mean", "zero-shot agreement", "retrieval agreement", "first divergent layer"]


def render_markdown(report: dict) -> str:
    lines = [f"# Parity report: {report['folder']}", "",
             f"Reference: `{report['checkpoint']}`; calibration inputs: {report['n_calibration']} from "
             f"`{report['calibration']}`; evaluation suite: {suite_label(report)}.", "",
             f"**{'PASSED' if report['passed'] else 'FAILED'}**", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(report)]
    ref = report["reference_accuracy"]
    for a in report["artifacts"]:
        lines += ["", f"## {a['platform']} {a['tower']} {a['precision']} ({a['status']})", ""]
        for r in a["reasons"]:
            lines.append(f"- {r}")
        if a.get("tasks", {}).get("accuracy"):
            lines += ["", "| task | reference | artifact | change | agreement |", "|---|---|---|---|---|"]
            for t, acc in a["tasks"]["accuracy"].items():
                agree = a["tasks"]["agreement"].get(t)  # recall@5 has no top-1 agreement of its own
                lines.append(f"| {t} | {100 * ref[t]:.1f}% | {100 * acc:.1f}% | {100 * (acc - ref[t]):+.1f} | "
                             f"{'-' if agree is None else f'{100 * agree:.1f}%'} |")
        loc = a.get("localization")
        if loc and loc.get("status") in ("ok", "replica_mismatch"):
            if loc.get("reason"):
                lines += ["", f"Localization: {loc['reason']}"]
            lines += ["", f"Per-layer SQNR (threshold {loc['threshold_db']} dB; first below: "
                          f"{loc['first_divergent_layer'] or 'none'}):", ""]
            lines.append(", ".join(f"{c['layer']} {_fmt(c['sqnr_db'], 1)}" for c in loc["layers"]))
        elif loc:
            lines += ["", f"Localization {loc['status']}: {loc.get('reason', '')}"]
    return "\n".join(lines) + "\n"


def _sqnr_plot(report: dict) -> str | None:
    """One PNG with the per-layer SQNR curve of every localized artifact, base64."""
    curves = [(a, a["localization"]) for a in report["artifacts"]
              if a.get("localization") and a["localization"].get("status") in ("ok", "replica_mismatch")]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    towers = [t for t in ("image", "text") if any(a["tower"] == t for a, _ in curves)]
    fig, axes = plt.subplots(1, len(towers), figsize=(6 * len(towers), 4.2), dpi=100, squeeze=False)
    for ax, tower in zip(axes[0], towers):  # one panel per tower: each has its own layer list
        layers: list[str] = []
        for a, loc in curves:
            if a["tower"] != tower:
                continue
            layers = [c["layer"] for c in loc["layers"]]
            vals = [min(c["sqnr_db"], 150.0) if c["sqnr_db"] is not None else float("nan") for c in loc["layers"]]
            ax.plot(range(len(vals)), vals, marker="o", label=f"{a['platform']} {a['precision']}")
            ax.axhline(loc["threshold_db"], color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("SQNR vs eager (dB, capped at 150)")
        ax.set_title(f"{tower} tower: per-layer SQNR against the eager model", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def render_html(report: dict) -> str:
    esc = html.escape
    rows = "".join("<tr>" + "".join(f"<td class='{esc(c.lower())}'>{esc(c)}</td>" for c in r) + "</tr>"
                   for r in summary_rows(report))
    plot = _sqnr_plot(report)
    details = esc(render_markdown(report))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Parity report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:3px 8px;font-size:13px}}td.pass{{background:#dfd}}td.fail{{background:#fdd}}td.skipped{{background:#eee}}
pre{{background:#f7f7f7;padding:1em;white-space:pre-wrap}}</style></head><body>
<h1>Parity report: {'PASSED' if report['passed'] else 'FAILED'}</h1>
<p>Reference {esc(report['checkpoint'])}; {report['n_calibration']} calibration inputs; evaluation suite:
{esc(suite_label(report))}.</p>
<table><tr>{''.join(f'<th>{esc(h)}</th>' for h in HEADER)}</tr>{rows}</table>
{f'<h2>Per-layer SQNR</h2><img alt="per-layer SQNR" src="data:image/png;base64,{plot}">' if plot else ''}
<h2>Details</h2><pre>{details}</pre></body></html>
"""


def _clean(o):
    """JSON-safe: inf/nan as strings."""
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return str(o)
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_reports(report: dict, folder: str | Path, json_path: str | Path | None = None) -> list[Path]:
    folder = Path(folder)
    paths = []
    for name, text in (("parity.json", json.dumps(_clean(report), indent=2) + "\n"),
                       ("parity.md", render_markdown(report)), ("parity.html", render_html(report))):
        p = folder / name
        tmp = p.with_name(f".{name}.tmp")
        tmp.write_text(text)
        tmp.replace(p)
        paths.append(p)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(_clean(report), indent=2) + "\n")
        paths.append(Path(json_path))
    return paths
