"""The one-command path (`mobile-sdk export`): checkpoint -> artifacts for every platform -> parity
-> benchmarks -> manifest.json + golden vectors + vocabulary -> a summary table.

The whole run writes into a staging copy of OUT that replaces OUT only when every step succeeded
(`folder.writing`), so an interrupted or failing run leaves OUT as it was, and a second run into
the same OUT fails at once on its lock.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


# Seconds each benchmark row runs for at least (and 50 runs): half of `mobile-sdk bench`'s default,
# so that the one-command run stays short; `mobile-sdk bench OUT` measures longer.
BENCH_SECONDS = 0.5


# What the parity check and the benchmarks import in this process, per platform (each takes 5-15 s:
# coremltools pulls TensorFlow and ExecuTorch's exir in; ExecuTorch's runtime pulls exir too).
_RUNTIME_MODULES = {"executorch": ("executorch.runtime",), "tflite": ("ai_edge_litert.interpreter",),
                    "coreml": ("coremltools",)}
_BENCH_MODULES = ("onnxruntime", "onnxruntime.quantization", "onnxscript")


def _warm_imports(targets, bench: bool) -> None:
    """While worker processes convert, import here (in a daemon thread) what the parity check and
    the benchmarks will need, so that those steps do not start with the imports. Best effort: a
    module that fails to import here fails again, with its error, where it is used."""
    import importlib
    import threading

    from .exporter import resolve_targets

    names = [m for p in resolve_targets(targets) for m in _RUNTIME_MODULES.get(p, ())]
    names += list(_BENCH_MODULES) if bench else []

    def run():
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - reported where the module is really used
                pass

    threading.Thread(target=run, name="mobile-sdk-warm-imports", daemon=True).start()


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
                 label_bank=None, templates=None, budget=None, workers=None) -> PipelineResult:
    """`checkpoint`: a built-in checkpoint path, a model source spec (`open_clip:ViT-B-32` with
    `weights`, `hf:DIR`, `module:function`) or a DualEncoder adapter. `suite`: the evaluation
    suite parity judges task agreement on (a `data.suites.Suite` or an `--eval-data` value;
    default: the built-in world); read before anything is converted, so bad data fails first.
    `label_bank`: a file of class names (or a list): their prompts (`templates`) are embedded by the
    eager text tower and shipped as OUT/label_bank.json, so an app can classify with the image
    tower alone. `progress`: an object whose `stage(name)` returns the `on_step(label, index, total)`
    callback of that stage (the CLI's progress bar, `_console.Progress`); default: silent.
    `budget` (a `budget.Budget`): convert every candidate precision of each platform (`precisions`
    replaces the candidates), check them all, and keep per platform the smallest (or fastest) one
    within the budget; the manifest's `selection` records the choice and the rejected candidates.
    `workers`: conversion processes run at once (default: one per core, at most one per platform
    and tower and at most `exporter.MAX_WORKERS`)."""
    from .data.suites import load_suite
    from .exporter import export, prepare_inputs
    from .errors import ConversionError
    from .folder import MANIFEST, ExportFolder, FolderError, atomic_write_text, writing
    from .manifest import write_folder_manifest
    from .models.sources import load_adapter

    out = Path(out).absolute()  # artifacts and the manifest are reported by absolute path
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
    checkpoint = Path(model.weights) if model.family == "builtin" and model.weights else None

    def step(name, fn):
        on_step = progress.stage(name) if progress is not None else None
        t0 = time.perf_counter()
        res = fn(on_step)
        seconds[name] = round(time.perf_counter() - t0, 1)
        return res

    if budget is not None:
        from converters import platform_module

        from .budget import candidates
        from .errors import ConfigError
        from .exporter import resolve_targets

        if not parity:
            raise ConfigError("--budget keeps the candidates that pass the parity check: drop --no-parity")
        precisions = {p: list((precisions or {}).get(p) or candidates(p, platform_module(p)))
                      for p in resolve_targets(targets)}
    inputs = step("calibration data", lambda _: prepare_inputs(model, calibration_dir, towers=towers))
    if workers is None:
        from .exporter import default_workers, resolve_targets

        workers = default_workers(len(resolve_targets(targets)) * len(towers))
    # Every step writes into a staging copy of OUT that replaces OUT only when all of them
    # succeeded (folder.writing): a failing target, Ctrl-C or SIGTERM leave OUT as it was.
    with writing(out) as staging:
        stage = staging.path
        if workers > 1 and (parity or bench):
            _warm_imports(targets, bench)
        artifacts = step("convert", lambda on_step: export(model, stage, targets, precisions, towers, inputs=inputs,
                                                           checkpoint=checkpoint, eval_data=suite.describe(),
                                                           on_step=on_step, workers=workers))
        report = None
        if parity:
            from .parity import ParityConfig, check_folder, write_reports

            cfg = parity_cfg or ParityConfig()
            report = step("parity", lambda on_step: check_folder(stage, cfg=cfg, model=model, suite=suite,
                                                                  on_step=on_step))
            if budget is not None:
                from .budget import choose, keep_chosen

                timed = None
                if budget.prefer == "latency":
                    from .bench import bench_folder as time_candidates

                    timed = step("bench candidates", lambda on_step: time_candidates(
                        stage, threads, model=model, peers=False, on_step=on_step))
                report = keep_chosen(stage, report, choose(report, towers, budget, timed))
                artifacts = [a for a in artifacts if report["selection"][a.platform]["chosen"] == a.precision]
                write_folder_manifest(stage, model, checkpoint, report, selection=report["selection"])
            write_reports(report, stage)
        bench_result = None
        if bench:
            from .bench import bench_folder, write_plot

            bench_result = step("bench", lambda on_step: bench_folder(stage, threads, model=model, on_step=on_step,
                                                                         seconds=BENCH_SECONDS))
            atomic_write_text(stage / "bench.json", json.dumps(bench_result, indent=2) + "\n")
            write_plot(bench_result, report, stage / "bench.png")
            if report is not None:  # parity.html gains the size / latency / agreement chart
                from .parity import write_reports

                write_reports(report, stage, bench=bench_result)
        bank = None
        if classes is not None:
            from .label_bank import write_label_bank

            bank = step("label bank", lambda _: write_label_bank(stage, model, classes, templates))
        selection = (report or {}).get("selection")
        write_folder_manifest(stage, model, checkpoint, report, label_bank=bank, selection=selection)
        golden_file = None
        if golden:
            from .golden import GOLDEN_FILE, write_golden

            step("golden vectors", lambda _: write_golden(stage, model))
            golden_file = GOLDEN_FILE
            write_folder_manifest(stage, model, checkpoint, report, golden=golden_file, label_bank=bank,
                                  selection=selection)
        try:  # what parity, bench and the apps will read: checked before it lands
            ExportFolder.open(stage)
        except FolderError as e:
            raise ConversionError(f"the export folder this run wrote fails its own check, so {out} was left as it "
                                  f"was: {e}. This is a bug: please report it with -vv output") from e
        for art in artifacts:
            art.path = staging.final(art.path)
    seconds["total"] = round(time.perf_counter() - t_start, 1)
    return PipelineResult(artifacts, report, bench_result, out / MANIFEST, out / golden_file if golden_file else None,
                          seconds)


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
