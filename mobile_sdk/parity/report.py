"""Parity reports: `parity.json` (machine-readable), `parity.md`, and a self-contained
`parity.html` rendered from a Jinja2 template (tables, what each figure means, and the charts
embedded as base64 PNG)."""

from __future__ import annotations

import base64
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


def selection_rows(selection: dict) -> list[list[str]]:
    """One row per --budget candidate: platform, precision, size, agreement, cosine, latency, verdict."""
    rows = []
    for plat, sel in selection.items():
        for r in sel["candidates"]:
            verdict = "kept" if r["chosen"] else ("within the budget, larger" if r["passed"] else r["reason"])
            rows.append([plat, r["precision"], f"{r['bytes'] / 1e6:.2f} MB",
                         "-" if r["agreement"] is None else f"{100 * r['agreement']:.1f}%",
                         "-" if r["cosine_mean"] is None else f"{r['cosine_mean']:.5f}",
                         "-" if r["latency_ms"] is None else f"{r['latency_ms']:.2f} ms", verdict])
    return rows


def render_markdown(report: dict) -> str:
    lines = [f"# Parity report: {report['folder']}", "",
             f"Reference: `{report['checkpoint']}`; calibration inputs: {report['n_calibration']} from "
             f"`{report['calibration']}`; evaluation suite: {suite_label(report)}.", "",
             f"**{'PASSED' if report['passed'] else 'FAILED'}**", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(report)]
    if report.get("selection"):
        lines += ["", "## Precision chosen per platform (--budget)", "",
                  "| platform | candidate | size | zero-shot agreement | cosine mean | latency | verdict |",
                  "|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in selection_rows(report["selection"])]
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
    plt = _pyplot()
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
    return _png(fig)


METRICS = [
    ("cosine mean", "Mean cosine similarity between the artifact's embedding and eager PyTorch's, per input, on the "
     "test inputs (and, separately, the calibration inputs). 1.0 is the same direction.",
     "At least the precision family's bar (table below): what that number format costs when nothing is wrong. A "
     "broken op or a bad quantization range falls far below it."),
    ("cosine min", "The worst single input's cosine.",
     "Catches the few inputs that break (a clipped range, an overflow) while the mean stays high."),
    ("SQNR", "Signal-to-quantization-noise ratio of the output: 10 log10(|reference|^2 / |reference - artifact|^2), "
     "in dB. Every 10 dB is ten times less error power.", "Reported, not a bar: the cosines carry the bar."),
    ("zero-shot agreement", "Share of zero-shot answers (the top-1 class) of the artifact pair, both towers of one "
     "platform and precision, that equal eager PyTorch's on the evaluation suite; for a caption file, retrieval top-1.",
     "The gate: it is what a user of the app sees. 99% for float and dynamic int8, 98% for static int8 and "
     "palettized weights, whose rounding may flip the model's own near ties."),
    ("retrieval agreement", "Share of retrieval answers (best caption for an image, best image for a caption) equal "
     "to eager's.", "Reported, not a bar: in the built-in world the candidates differ by one fact, so many of its "
     "decisions are near ties of the model itself."),
    ("accuracy change", "The artifact pair's task accuracy minus eager PyTorch's, in points.",
     "Reported per task (chart and tables below)."),
    ("first divergent layer", "Each layer's output SQNR against eager's; the first layer below the family's "
     "threshold.", "Names where to look when an artifact fails; `none below` means the loss is spread thinly."),
]


def _bars() -> list[dict]:
    from .tolerances import DEFAULT_TOLERANCES, PLATFORM_TOLERANCES, as_dict

    rows = [dict(family=f"{fam}" + (" (palettized, any bits)" if fam == "pal" else ""), **as_dict(t))
            for fam, t in DEFAULT_TOLERANCES.items()]
    rows += [dict(family=f"{plat} {fam}", **as_dict(t)) for (plat, fam), t in PLATFORM_TOLERANCES.items()]
    return rows


def _cell(value, bar, fmt, higher=True) -> dict:
    """A summary cell: the value, its bar and whether it meets it (no bar: plain)."""
    if value is None:
        return {"value": "-", "bar": "", "cls": ""}
    text = fmt(value)
    if bar is None:
        return {"value": text, "bar": "", "cls": ""}
    ok = value >= bar if higher else value <= bar
    return {"value": text, "bar": f"bar {'>=' if higher else '<='} {fmt(bar)}", "cls": "pass" if ok else "fail"}


def _summary(report: dict) -> list[dict]:
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    rows = []
    for a in report["artifacts"]:
        tol = a.get("tolerance") or {}
        ag = (a.get("tasks") or {}).get("agreement") or {}
        gate = "zeroshot" if "zeroshot" in ag else "retrieval"
        test, cal = a.get("test") or {}, a.get("calibration") or {}
        cells = [
            _cell(test.get("cosine_mean"), tol.get("cosine_mean"), lambda v: f"{v:.5f}"),
            _cell(test.get("cosine_min"), tol.get("cosine_min"), lambda v: f"{v:.5f}"),
            _cell(test.get("sqnr_db"), None, lambda v: _fmt(v, 1)),
            _cell(cal.get("cosine_mean"), tol.get("cosine_mean"), lambda v: f"{v:.5f}"),
            _cell(ag.get("zeroshot"), tol.get("agreement") if gate == "zeroshot" else None, pct),
            _cell(ag.get("retrieval"), tol.get("agreement") if gate == "retrieval" else None, pct),
        ]
        rows.append({"platform": a["platform"], "tower": a["tower"], "precision": a["precision"],
                     "size": f"{a['bytes'] / 1e6:.2f} MB", "status": a["status"], "cells": cells,
                     "layer": _loc_cell(a.get("localization") or {})})
    return rows


def _details(report: dict) -> list[dict]:
    ref = report.get("reference_accuracy") or {}
    out = []
    for a in report["artifacts"]:
        tasks = []
        acc = (a.get("tasks") or {}).get("accuracy") or {}
        for t, v in acc.items():
            agree = a["tasks"]["agreement"].get(t)
            tasks.append({"name": t, "reference": f"{100 * ref[t]:.1f}%" if t in ref else "-",
                          "artifact": f"{100 * v:.1f}%",
                          "change": f"{100 * (v - ref[t]):+.1f}" if t in ref else "-",
                          "agreement": "-" if agree is None else f"{100 * agree:.1f}%"})
        loc, text = a.get("localization"), ""
        if loc and loc.get("status") in ("ok", "replica_mismatch"):
            text = (f"Per-layer SQNR (threshold {loc['threshold_db']} dB; first below: "
                    f"{loc['first_divergent_layer'] or 'none'}): "
                    + ", ".join(f"{c['layer']} {_fmt(c['sqnr_db'], 1)}" for c in loc["layers"]))
        elif loc:
            text = f"Localization {loc['status']}: {loc.get('reason', '')}"
        out.append({"title": f"{a['platform']} {a['tower']} {a['precision']}", "status": a["status"],
                    "reasons": a.get("reasons") or [], "tasks": tasks, "localization": text})
    return out


def _accuracy_plot(report: dict) -> str | None:
    """Grouped horizontal bars: per task, each platform + precision pair's accuracy change (points)."""
    ref = report.get("reference_accuracy") or {}
    pairs: dict[str, dict] = {}
    for a in report["artifacts"]:
        acc = (a.get("tasks") or {}).get("accuracy")
        if acc:
            pairs.setdefault(f"{a['platform']} {a['precision']}", acc)
    tasks = [t for t in ref if any(t in acc for acc in pairs.values())]
    if not pairs or not tasks:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(tasks) * max(1, len(pairs)) / 2 + 1.6), dpi=100)
    h = 0.8 / len(pairs)
    for i, (name, acc) in enumerate(pairs.items()):
        ys = [j + i * h for j in range(len(tasks))]
        ax.barh(ys, [100 * (acc.get(t, ref[t]) - ref[t]) for t in tasks], height=h, label=name)
    ax.set_yticks([j + 0.4 - h / 2 for j in range(len(tasks))])
    ax.set_yticklabels(tasks, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("accuracy change against eager PyTorch (points)")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def render_html(report: dict, bench: dict | None = None) -> str:
    """parity.html from the Jinja2 template (mobile_sdk/templates/parity.html.j2): the summary with
    every figure beside its bar, what each figure means and why its bar is there, the accuracy
    change per task, every artifact's per-layer SQNR, and, given the bench result, the size /
    latency / agreement trade-off."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("mobile_sdk", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    status = [a["status"] for a in report["artifacts"]]
    counts = ", ".join(f"{status.count(s)} {s}" for s in ("pass", "fail", "skipped") if status.count(s))
    tradeoff, note = None, ""
    if bench is not None:
        from ..bench import tradeoff_png

        png = tradeoff_png(bench, report)
        if png:
            tradeoff = base64.b64encode(png).decode()
            note = ("Median batch-1 latency measured on this host (" + bench.get("machine", {}).get("cpu", "?")
                    + ") against zero-shot agreement with eager PyTorch; marker area is the file size. Phones differ: "
                    "compare the artifacts with each other and with the peers, not the milliseconds with a phone's.")
    selection_plot = None
    if report.get("selection"):
        from ..budget import selection_png

        png = selection_png(report["selection"])
        selection_plot = base64.b64encode(png).decode() if png else None
    return env.get_template("parity.html.j2").render(
        selection=selection_rows(report["selection"]) if report.get("selection") else None,
        selection_plot=selection_plot,
        passed=report["passed"], checkpoint=report["checkpoint"], n_calibration=report["n_calibration"],
        calibration=report["calibration"], suite=suite_label(report), counts=f"Artifacts: {counts}." if counts else "",
        summary_header=["platform", "tower", "precision", "size", "status", "test cosine mean", "test cosine min",
                        "test SQNR (dB)", "calibration cosine mean", "zero-shot agreement", "retrieval agreement",
                        "first divergent layer"],
        summary=_summary(report), metrics=[{"name": n, "what": w, "bar": b} for n, w, b in METRICS], bars=_bars(),
        accuracy_plot=_accuracy_plot(report), sqnr_plot=_sqnr_plot(report), tradeoff_plot=tradeoff,
        tradeoff_note=note, details=_details(report))


def _clean(o):
    """JSON-safe: inf/nan as strings."""
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return str(o)
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_reports(report: dict, folder: str | Path, json_path: str | Path | None = None,
                  bench: dict | None = None) -> list[Path]:
    """parity.json, parity.md and parity.html into `folder` (`bench`: the bench result, whose
    trade-off chart the HTML then shows)."""
    folder = Path(folder)
    paths = []
    for name, text in (("parity.json", json.dumps(_clean(report), indent=2) + "\n"),
                       ("parity.md", render_markdown(report)), ("parity.html", render_html(report, bench))):
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
