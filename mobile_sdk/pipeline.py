"""The one-command path (`mobile-sdk export`): checkpoint -> artifacts for every platform -> parity
-> benchmarks -> manifest.json + golden vectors + vocabulary -> a summary table.

Every step writes atomically, so an interrupted or failing run leaves earlier results intact; the
manifest is written last, so it only ever describes artifacts that exist.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    artifacts: list
    parity: dict | None
    bench: dict | None
    manifest: Path
    golden: Path | None
    seconds: dict


def run_pipeline(checkpoint, out: Path, targets=("all",), precisions=None, towers=("image", "text"),
                 calibration_dir=None, parity_cfg=None, bench: bool = True, parity: bool = True,
                 golden: bool = True, threads=(1, 2), progress=None, weights=None, suite=None,
                 label_bank=None, templates=None) -> PipelineResult:
    """`checkpoint`: a built-in checkpoint path, a model source spec (`open_clip:ViT-B-32` with
    `weights`, `hf:DIR`, `module:function`) or a DualEncoder adapter. `suite`: the evaluation
    suite parity judges task agreement on (a `data.suites.Suite` or an `--eval-data` value;
    default: the built-in world); read before anything is converted, so bad data fails first.
    `label_bank`: a file of class names (or a list): their prompts (`templates`) are embedded by the
    eager text tower and shipped as OUT/label_bank.json, so an app can classify with the image
    tower alone. `progress`: an object whose `stage(name)` returns the `on_step(label, index, total)`
    callback of that stage (the CLI's progress bar, `_console.Progress`); default: silent."""
    from .data.suites import load_suite
    from .exporter import export, prepare_inputs
    from .manifest import build_manifest, write_manifest
    from .models.sources import load_adapter

    out = Path(out)
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    suite = load_suite(suite)
    classes = None
    if label_bank is not None:
        from .data.suites import DEFAULT_TEMPLATES
        from .label_bank import read_class_names

        classes = read_class_names(label_bank) if isinstance(label_bank, (str, Path)) else list(label_bank)
        templates = tuple(templates or DEFAULT_TEMPLATES)
    model = load_adapter(checkpoint, weights)
    if parity and suite.kind != "world":
        # read the user's images now: an empty class or a bad image fails before anything converts
        from .exporter import square_size
        from .parity import ParityConfig

        suite.sets(square_size(model), (parity_cfg or ParityConfig()).n_test)
    meta = getattr(model, "meta", {"name": model.name})
    checkpoint = Path(model.weights) if model.family == "builtin" and model.weights else None

    def step(name, fn):
        on_step = progress.stage(name) if progress is not None else None
        t0 = time.perf_counter()
        res = fn(on_step)
        seconds[name] = round(time.perf_counter() - t0, 1)
        return res

    inputs = step("calibration data", lambda _: prepare_inputs(model, calibration_dir, towers=towers))
    # Conversions run in a staging folder beside OUT and are moved in only when all succeeded: a
    # failing target leaves no partial OUT, and an earlier export in OUT intact.
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        artifacts = step("convert", lambda on_step: export(model, stage, targets, precisions, towers, inputs=inputs,
                                                   checkpoint=checkpoint, eval_data=suite.describe(),
                                                   on_step=on_step))
        artifacts = _move_in(stage, out, artifacts)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    report = None
    if parity:
        from .parity import ParityConfig, check_folder, write_reports

        cfg = parity_cfg or ParityConfig()
        report = step("parity", lambda on_step: check_folder(out, cfg=cfg, model=model, suite=suite,
                                                              on_step=on_step))
        write_reports(report, out)
    bench_result = None
    if bench:
        from .bench import bench_folder, write_plot

        bench_result = step("bench", lambda on_step: bench_folder(out, threads, model=model, on_step=on_step))
        (out / "bench.json").write_text(json.dumps(bench_result, indent=2) + "\n")
        write_plot(bench_result, report, out / "bench.png")
        if report is not None:  # parity.html gains the size / latency / agreement chart
            from .parity import write_reports

            write_reports(report, out, bench=bench_result)
    tokenizer_files = model.tokenizer.files(out) if hasattr(model.tokenizer, "files") else {}
    manifest = build_manifest(out, model, meta, checkpoint, report, golden=None, tokenizer_files=tokenizer_files)
    if classes is not None:
        from .label_bank import write_label_bank

        manifest["label_bank"] = step("label bank", lambda _: write_label_bank(out, model, classes, templates))
    golden_path = None
    if golden:
        from .golden import GOLDEN_FILE, write_golden

        golden_path = step("golden vectors", lambda _: write_golden(out, model, manifest))
        manifest["golden"] = GOLDEN_FILE
    path = write_manifest(manifest, out)
    seconds["total"] = round(time.perf_counter() - t_start, 1)
    return PipelineResult(artifacts, report, bench_result, path, golden_path, seconds)


def _move_in(stage: Path, out: Path, artifacts: list) -> list:
    """Move every file under `stage` to the same place under `out` (replacing; a `.mlpackage`
    folder is replaced whole) and point the artifacts and their metadata at the new place."""
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(stage.rglob("*")):
        rel = src.relative_to(stage)
        if any(p.endswith(".mlpackage") for p in rel.parts[:-1]):
            continue  # moved with its package
        dst = out / rel
        if src.is_dir() and not src.name.endswith(".mlpackage"):
            dst.mkdir(parents=True, exist_ok=True)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_dir():
            shutil.rmtree(dst)
        os.replace(src, dst)
    for art in artifacts:
        art.path = out / Path(art.path).relative_to(stage)
        meta = art.path.with_suffix(".json")
        if meta.is_file():
            d = json.loads(meta.read_text())
            d["path"] = str(art.path)
            meta.write_text(json.dumps(d, indent=2) + "\n")
    return artifacts


def summary_rows(result: PipelineResult) -> list[list[str]]:
    """One row per artifact: size, parity status and figures, latency at the most threads measured."""
    parity = {a["file"]: a for a in (result.parity or {}).get("artifacts", [])}
    lat = {}
    if result.bench:
        n = max(r["threads"] for r in result.bench["rows"])
        for r in result.bench["rows"]:
            if r["threads"] == n and r["kind"] == "artifact":
                lat[r["name"]] = r.get("median_ms")
    rows = []
    out = result.manifest.parent
    for art in result.artifacts:
        rel = str(Path(art.path).relative_to(out))
        p = parity.get(rel, {})
        name = f"{art.platform} {art.tower} {art.precision}"
        size = art.path.stat().st_size if art.path.is_file() else sum(
            f.stat().st_size for f in art.path.rglob("*") if f.is_file())
        test = p.get("test", {})
        agreement = p.get("tasks", {}).get("agreement", {})
        agree = agreement.get("zeroshot", agreement.get("retrieval"))  # a caption file: retrieval is the bar
        rows.append([name, f"{size / 1e6:.2f} MB", (p.get("status") or "-").upper(),
                     f"{test['cosine_mean']:.5f}" if test.get("cosine_mean") is not None else "-",
                     f"{100 * agree:.1f}%" if agree is not None else "-",
                     f"{lat[name]:.2f} ms" if lat.get(name) is not None else "-"])
    return rows


SUMMARY_HEADER = ["artifact", "size", "parity", "test cosine", "zero-shot agreement", "latency (median)"]
