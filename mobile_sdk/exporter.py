"""`mobile-sdk export`: one checkpoint -> artifacts for each chosen platform, tower and precision.

The model, the calibration inputs and the example inputs are prepared once; each platform's
converter (`converters.platform_module`) then writes `OUT/{platform}/{tower}_{precision}.{ext}`
plus its JSON metadata. A failing conversion raises before anything of it is written, and earlier
artifacts in OUT stay as they were (the converters write atomically).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, DataError
from .progress import Steps

log = logging.getLogger(__name__)

TOWERS = ("image", "text")
# The committed calibration images and captions, found beside the package (a checkout or an editable
# install) whatever the current folder is.
# shipped inside the package (the repository's top-level calibration_data/ links to it), so every
# command works from any folder
DEFAULT_CALIBRATION = str(Path(__file__).resolve().parent / "calibration_data")
# All 300 committed calibration images / captions. Percentile activation ranges settle with more
# samples: the shipped student's full-integer image tower, 128 -> 300 samples, cosine 0.99859 ->
# 0.99879 and zero-shot agreement with the eager model (eager text tower) 98.9% -> 99.4%
# (400 test samples per task), for ~10 s more conversion.
DEFAULT_CALIBRATION_N = 300
# Precisions written when none are asked for, where a platform's single default is not enough:
# LiteRT gets both int8 variants (full-integer for NPUs; the CPU variant the Android demo uses).
DEFAULTS = {"tflite": ["int8", "int8_cpu"]}


@dataclass
class ExportInputs:
    """Batch-1 example inputs and calibration inputs of both towers, in the model's raw format
    (float32 NCHW pixels in [0, 255]; int32 token ids)."""
    example: dict[str, torch.Tensor]
    calibration: dict[str, list[torch.Tensor]]
    source: str = ""
    notes: list[str] = field(default_factory=list)


def default_precision(module, tower: str) -> str:
    """A platform's default precision for a tower (`DEFAULT_PRECISION` may be one value or per tower)."""
    d = module.DEFAULT_PRECISION
    return d[tower] if isinstance(d, dict) else d


def resolve_targets(targets: tuple[str, ...] | list[str]) -> list[str]:
    """Target names -> platforms. `all` is every platform whose backend is installed (the others are
    named in a warning with their install command); a platform named explicitly must be installed."""
    from converters import PLATFORMS, backends, installed_platforms

    out: list[str] = []
    for t in targets or ("all",):
        if t == "all":
            names = installed_platforms()
            skipped = [b for n, b in backends().items() if n not in names]
            if not names:
                from .errors import BackendMissing

                raise BackendMissing("no platform backend is installed; install one or all of them in the same pip "
                                     "call as the torch pin: pip install 'torch==2.13.0' \"mobile-sdk[all]\" (or "
                                     + ", ".join(f'[{b.extra}]' for b in backends().values()) + ")")
            for b in skipped:
                log.warning("skipping %s: its backend (%s) is not installed; %s", b.name, ", ".join(b.missing()),
                            b.install_hint())
        else:
            names = (t,)
        for name in names:
            if name not in PLATFORMS:
                raise ConfigError(f"unknown target {name!r}; choose one of {', '.join(PLATFORMS)} or 'all'")
            backends()[name].require()
            if name not in out:
                out.append(name)
    return out


def parse_precisions(values, platforms: list[str]) -> dict[str, list[str]]:
    """`--precision` values -> {platform: [precisions]}. A bare value applies to every platform
    (only allowed with one target); `PLATFORM:PRECISION` to that platform."""
    out: dict[str, list[str]] = {}
    for v in values or ():
        plat, sep, prec = v.partition(":")
        if not sep:
            if len(platforms) != 1:
                raise ConfigError(f"--precision {v}: with several targets ({', '.join(platforms)}) write "
                                  f"PLATFORM:PRECISION, e.g. {platforms[0]}:{v}")
            plat, prec = platforms[0], v
        if plat not in platforms:
            raise ConfigError(f"--precision {v}: {plat!r} is not among the targets ({', '.join(platforms)})")
        out.setdefault(plat, []).append(prec)
    return out


def square_size(adapter) -> int:
    """The side of the adapter's (square) image input; the preprocessing crops squares."""
    h, w = adapter.image_size
    if h != w:
        raise ConfigError(f"model {adapter.name}: image input {h}x{w} is not square; the SDK's preprocessing "
                          f"(center crop + area resize) makes square inputs only")
    return int(h)


def prepare_inputs(model, calibration_dir: str | Path | None = None,
                   n: int = DEFAULT_CALIBRATION_N, towers=TOWERS) -> ExportInputs:
    """Calibration images (image tower) and captions (text tower) from a folder, preprocessed
    exactly as the apps will; the first sample of each is the example input."""
    from .data.calibration import load_calibration
    from .models.adapter import as_adapter

    adapter = as_adapter(model)
    folder = Path(calibration_dir or DEFAULT_CALIBRATION)
    cal = load_calibration(folder, square_size(adapter), n)
    example, calibration = {}, {}
    if "image" in towers:
        pixels = torch.from_numpy(np.ascontiguousarray(cal.images)).permute(0, 3, 1, 2).float().contiguous()
        calibration["image"] = [pixels[i:i + 1] for i in range(len(pixels))]
        example["image"] = calibration["image"][0]
    if "text" in towers:
        if not cal.captions:
            raise DataError(f"calibration folder {folder} has no captions (captions.jsonl with "
                            f"{{\"file\", \"caption\"}} lines); the text tower calibrates on captions. "
                            f"Add them, or export only the image tower (--tower image)")
        ids = torch.from_numpy(np.ascontiguousarray(adapter.tokenizer(cal.captions[:n]), dtype=np.int32))
        calibration["text"] = [ids[i:i + 1] for i in range(len(ids))]
        example["text"] = calibration["text"][0]
    return ExportInputs(example, calibration, str(folder.resolve()))


def export(model, out_dir: str | Path, targets=("all",), precisions: dict[str, list[str]] | None = None,
           towers=TOWERS, inputs: ExportInputs | None = None, calibration_dir=None, on_step=None,
           checkpoint: str | Path | None = None, verify: bool = True, eval_data: dict | None = None,
           manifest: bool = True, workers: int = 1) -> list:
    """Convert each tower of `model` for each target; returns the Artifacts.

    `precisions` maps a platform to the precisions to write (default: the platform's default per
    tower). `on_step(label, index, total)` is called before each conversion (progress.py). `checkpoint`
    (where `model` came from) and `eval_data` (the evaluation suite's `describe()`) are recorded in
    OUT/export.json for the parity checker. `verify`:
    each artifact is run on its runtime against the eager tower right after conversion
    (`verify_against_eager`), and a drifting one fails the export. `manifest`: write OUT/manifest.json
    (and the tokenizer files) listing every artifact in OUT, without parity figures. `workers`:
    conversions run in that many worker processes at once (each platform and tower is one job; 1:
    all in this process). A failing job stops the others, whose files may then be half written:
    the pipeline uses workers > 1 only inside its staging folder (folder.writing)."""
    from converters import platform_module

    from .models.adapter import as_adapter

    model = as_adapter(model)
    out_dir = Path(out_dir)
    plats = resolve_targets(targets)
    for t in towers:
        if t not in TOWERS:
            raise ConfigError(f"unknown tower {t!r}; choose from {TOWERS}")
    inputs = inputs or prepare_inputs(model, calibration_dir, towers=towers)
    plan = []
    for plat in plats:
        mod = platform_module(plat)
        for tower in towers:
            precs = (precisions or {}).get(plat) or DEFAULTS.get(plat) or [default_precision(mod, tower)]
            for p in precs:
                if p not in mod.PRECISIONS:
                    raise ConfigError(f"{plat} has no precision {p!r}; choose from {', '.join(mod.PRECISIONS)}")
            plan.append((plat, mod, tower, list(precs)))
    _write_record(out_dir, model, checkpoint, inputs, eval_data)
    tick = Steps(on_step, len(plan))
    jobs = [(plat, tower, precs, inputs.example[tower], inputs.calibration[tower], out_dir / plat, verify)
            for plat, _, tower, precs in plan]
    workers = max(1, min(int(workers), len(jobs)))
    results = _convert_parallel(model, jobs, workers, tick) if workers > 1 else None
    if results is None:
        results = []
        for job in jobs:
            tick(_job_label(job))
            results.append(_convert_job(model, *job))
    artifacts = [a for arts in results for a in arts]
    if manifest:  # OUT is an export folder at every step: the parity checker and bench read it
        from .manifest import write_folder_manifest

        write_folder_manifest(out_dir, model, Path(checkpoint) if checkpoint else None)
    return artifacts



def _job_label(job) -> str:
    plat, tower, precs = job[:3]
    return f"{plat} {tower} {', '.join(precs)}"


def _convert_job(model, plat: str, tower: str, precs: list[str], example: torch.Tensor,
                 calibration: list[torch.Tensor], out_dir: Path, verify: bool) -> list:
    """Convert one tower for one platform at each precision (checked against eager when `verify`)."""
    from converters import platform_module

    mod = platform_module(plat)
    label = _job_label((plat, tower, precs))
    t0 = time.perf_counter()
    configs = [mod.CONFIG(precision=p) for p in precs]
    if len(configs) > 1 and hasattr(mod, "convert_many"):  # one shared front end (TFLite: one onnx2tf run)
        arts = mod.convert_many(model, tower, example, configs, out_dir, calibration=calibration)
    else:
        arts = [mod.convert(model, tower, example, c, out_dir, calibration=calibration) for c in configs]
    for art in arts:
        art.extra.setdefault("convert_s", round((time.perf_counter() - t0) / len(arts), 2))
        if verify:
            verify_against_eager(model, art, calibration[:VERIFY_SAMPLES])
    log.info("%s -> %s (%.1f s)", label, [str(a.path) for a in arts], time.perf_counter() - t0)
    return arts


# Conversions are single-threaded Python for the most part (graph passes), so on a machine with
# several cores the platforms and towers convert side by side. Each worker process holds its
# backends (~1 GB for a small model; a real-size tower takes a few GB), hence a small cap.
MAX_WORKERS = 3


def default_workers(n_jobs: int) -> int:
    import os

    return max(1, min(MAX_WORKERS, os.cpu_count() or 1, n_jobs))


class _RecordList(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        record.msg, record.args = record.getMessage(), None  # picklable: the message, formatted
        record.exc_info = record.exc_text = None
        self.records.append(record)


def _worker_init(levels: dict[str, int], filters: list) -> None:
    import signal
    import warnings

    from .models._open_clip import ensure_torchvision

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it terminates the workers
    torch.set_num_threads(1)
    warnings.filters[:] = filters
    logging.getLogger().handlers[:] = []
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    ensure_torchvision()  # open_clip / timm models unpickle only with torchvision importable


class _ModelNotPortable(Exception):
    """A worker process could not rebuild the model from its pickle (a class it cannot import)."""


_WORKER_MODEL: dict = {}


def _worker_job(blob: bytes, job) -> tuple[list, list]:
    """One conversion job in a worker process: (artifacts, the log records it made, for the parent)."""
    import pickle

    key = hash(blob)
    if _WORKER_MODEL.get("key") != key:
        try:
            _WORKER_MODEL.update(key=key, model=pickle.loads(blob))
        except Exception as e:  # noqa: BLE001 - the parent converts in its own process instead
            raise _ModelNotPortable(f"{type(e).__name__}: {e}") from None
    handler = _RecordList()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        return _convert_job(_WORKER_MODEL["model"], *job), handler.records
    finally:
        root.removeHandler(handler)


def _convert_parallel(model, jobs: list, workers: int, tick) -> list[list] | None:
    """Run the conversion jobs in `workers` spawned processes; results in job order. The first
    failure (or Ctrl-C / SIGTERM here) terminates every worker and is raised here. None when the
    workers cannot rebuild the model (the caller converts in its own process)."""
    import multiprocessing as mp
    import pickle
    import warnings
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from .errors import ConversionError

    from ._signals import raise_if_stopped

    try:
        blob = pickle.dumps(model)
    except Exception as e:  # noqa: BLE001 - a user's adapter that cannot cross processes
        log.info("converting in one process: the model cannot be sent to worker processes (%s)", e)
        return None
    levels = {name: logging.getLogger(name).getEffectiveLevel()
              for name in ("mobile_sdk", "converters", *logging.root.manager.loggerDict)
              if name == "mobile_sdk" or name == "converters" or "." not in name}
    levels[""] = logging.getLogger().level
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(levels, list(warnings.filters)))
    finished = False
    try:
        # the image towers (the longer jobs) of every platform first, then the text towers
        order = sorted(range(len(jobs)), key=lambda i: TOWERS.index(jobs[i][1]) if jobs[i][1] in TOWERS else 0)
        futures = {pool.submit(_worker_job, blob, jobs[i]): i for i in order}
        results: dict[int, list] = {}
        pending = set(futures)
        while pending:
            raise_if_stopped()
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: futures[f]):
                try:
                    arts, records = fut.result()  # a job's exception is raised here, with its own type
                except _ModelNotPortable as e:
                    log.info("converting in one process: a worker process cannot rebuild the model (%s)", e)
                    return None
                except BrokenProcessPool as e:
                    raise ConversionError(f"{_job_label(jobs[futures[fut]])}: the conversion worker process died "
                                          f"({e}); nothing was kept. Out of memory? Run with --workers 1 to convert "
                                          f"in one process") from e
                for record in records:
                    logging.getLogger(record.name).handle(record)
                tick(_job_label(jobs[futures[fut]]) + ": converted")
                results[futures[fut]] = arts
        finished = True
        return [results[i] for i in range(len(jobs))]
    finally:
        if not finished:  # a failure, Ctrl-C or SIGTERM: stop the other jobs now
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

def _write_record(out_dir: Path, adapter, checkpoint, inputs: ExportInputs, eval_data: dict | None = None) -> None:
    """`OUT/export.json`: what the artifacts were made from (the model source and its weights), so
    `mobile-sdk parity OUT` can load the reference model and the calibration data again."""
    import json

    from .data.calibration import sha256
    from .folder import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(checkpoint).resolve() if checkpoint else (Path(adapter.weights) if adapter.weights else None)
    model = adapter.name if adapter.family != "builtin" else None
    record = {"model": model, "checkpoint": str(src) if src else None,
              "checkpoint_sha256": sha256(src) if src and src.is_file() else None,
              "calibration": inputs.source, "calibration_n": len(next(iter(inputs.calibration.values()), [])),
              "eval_data": eval_data}
    atomic_write_text(out_dir / "export.json", json.dumps(record, indent=2) + "\n")


# Samples each artifact is checked on right after conversion (the parity step checks many more).
VERIFY_SAMPLES = 8
# An fp32 artifact must give the eager tower's embeddings: below this cosine it is a wrong conversion.
FP32_MIN_COSINE = 0.9999


def verify_against_eager(adapter, artifact, inputs: list[torch.Tensor]) -> dict:
    """Run a just-written artifact on its runtime over `inputs` (batch-1 raw inputs) and compare it
    with the eager tower. Any NaN / Inf, or an fp32 artifact under cosine 0.9999 on any input, is a
    ConversionError that names the first diverging layer (the platform's localization), and the
    artifact's files are removed. Other precisions get their figures recorded; the parity step
    judges them against their bars. -> {"cosine_min", "cosine_mean", "max_abs"} (also in the
    artifact's `extra["eager_check"]`)."""
    import json

    from converters import platform_module

    from .errors import ConversionError
    from .parity.localize import compare_layers, reference_intermediates
    from .parity.metrics import row_cosines

    mod = platform_module(artifact.platform)
    tower = adapter.tower(artifact.tower)
    runner = mod.load(artifact.path)
    if getattr(runner, "skip_reason", None):
        return {}
    x = torch.cat(inputs)
    with torch.no_grad():
        ref = tower(x).numpy()
    got = np.concatenate([runner(x[i:i + 1].numpy()) for i in range(len(x))])
    cos = row_cosines(ref, got)
    finite = bool(np.isfinite(got).all())
    figures = {"samples": len(x), "cosine_min": float(np.nanmin(cos)) if finite else None,
               "cosine_mean": float(np.nanmean(cos)) if finite else None,
               "max_abs": float(np.nanmax(np.abs(got - ref))) if finite else None}
    artifact.extra["eager_check"] = figures
    meta = Path(artifact.path).with_suffix(".json")
    bad = (not finite) or (artifact.precision == "fp32" and figures["cosine_min"] < FP32_MIN_COSINE)
    if not bad:
        if meta.is_file():
            d = json.loads(meta.read_text())
            d.setdefault("extra", {})["eager_check"] = figures
            meta.write_text(json.dumps(d, indent=2) + "\n")
        return figures
    where = ""
    fn = getattr(mod, "intermediates", None)
    if fn is not None:
        try:
            art = fn(adapter, artifact.tower, artifact.precision, x[:4], inputs, artifact.path)
            art.pop("replica_max_abs_diff", None)
            curve = compare_layers(reference_intermediates(tower, x[:4]), art, 60.0 if artifact.precision == "fp32"
                                   else 15.0)
            if curve["first_divergent_layer"]:
                where = f"; the first diverging layer is {curve['first_divergent_layer']}"
        except Exception as e:  # localization is a hint; the failure itself stands
            log.info("localizing the drift of %s failed: %s", artifact.path, e)
    _remove_artifact(artifact)
    what = "NaN/Inf outputs" if not finite else f"cosine {figures['cosine_min']:.6f} < {FP32_MIN_COSINE} against eager"
    raise ConversionError(f"{artifact.platform} {artifact.tower} {artifact.precision}: the converted artifact gives "
                          f"{what} on real inputs{where}. It was not kept. This is a conversion bug for this "
                          f"architecture: run with -vv and report the layer, or try another precision / platform")


def _remove_artifact(artifact) -> None:
    import shutil

    path = Path(artifact.path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    path.with_suffix(".json").unlink(missing_ok=True)
    twin = artifact.extra.get("debug_twin")
    if twin:
        (path.parent / twin["file"]).unlink(missing_ok=True)
