"""Run every artifact of an export folder on its real runtime and compare it with the eager model.

For each artifact the folder's manifest lists (read through `folder.ExportFolder`):
- output metrics on real calibration inputs and on test-split inputs (`metrics.output_metrics`);
- task metrics for each platform + precision with both towers: the artifact pair scores the
  test-split tasks (zero-shot and retrieval) exactly like the eager model, giving top-1 agreement
  with the eager model's predictions and each task's accuracy change;
- pass / fail against `tolerances`, or skipped with the reason (runtime not available here);
- on failure (or on request) the per-layer SQNR curve and the first divergent layer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import BackendMissing, ConversionError, DataError, SdkError
from ..progress import Steps
from .localize import compare_layers, reference_intermediates
from .metrics import output_metrics
from .tolerances import ParityConfig, as_dict

log = logging.getLogger(__name__)

EXPORT_RECORD = "export.json"


@dataclass
class ArtifactResult:
    platform: str
    tower: str
    precision: str
    file: str
    bytes: int
    status: str = "pending"  # pass | fail | skipped
    reasons: list[str] = field(default_factory=list)
    tolerance: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)  # output metrics on calibration inputs
    test: dict = field(default_factory=dict)  # output metrics on test-split inputs
    tasks: dict = field(default_factory=dict)  # agreement + accuracy per task (shared by the pair)
    localization: dict | None = None
    seconds: float = 0.0


def find_artifacts(folder: Path) -> list[dict]:
    """The artifacts of the export folder `folder`, checked against its manifest
    (`folder.ExportFolder`): each one's sidecar metadata with `file`, its path."""
    from ..folder import ExportFolder

    return ExportFolder.open(folder).artifacts


def _tower(model, tower: str):
    from ..models.adapter import as_adapter
    return as_adapter(model).tower(tower)


def _data(model, cal_dir: Path, cfg: ParityConfig, suite):
    """Calibration and evaluation-suite inputs of both towers, in the model's raw input format."""
    from ..data.calibration import load_calibration
    from ..data.suites import sample_inputs
    from ..exporter import square_size

    size = square_size(model)
    tok = model.tokenizer
    cal = load_calibration(cal_dir, size, cfg.n_calibration)
    sets = suite.sets(size, cfg.n_test)
    test_imgs, test_caps = sample_inputs(sets, cfg.n_test)
    px = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().contiguous()  # noqa: E731
    data = {
        "image": {"calibration": px(cal.images), "test": px(test_imgs)},
        "text": {"calibration": torch.from_numpy(tok(cal.captions)) if cal.captions else None,
                 "test": torch.from_numpy(tok(test_caps))},
    }
    return data, sets, tok


def _run(runner, x: torch.Tensor) -> np.ndarray:
    return np.concatenate([runner(x[i:i + 1].numpy()) for i in range(len(x))])


def check_folder(folder: str | Path, checkpoint: str | Path | None = None, cfg: ParityConfig | None = None,
                 on_step=None, model=None, weights=None, suite=None) -> dict:
    """Parity of every artifact under `folder`; returns the report dict (see `report.py`). The
    reference is `model` (an adapter, or a source spec with `weights`), else `checkpoint`, else the
    model the folder's export.json names. `suite`: the evaluation suite (a `data.suites.Suite` or an
    `--eval-data` value; default: the one export.json records, else the built-in world), on which
    task agreement is measured; `cfg.n_test` is its samples per task (world) or its cap per class /
    caption line (user data)."""
    from converters import platform_module

    from ..data.tasks import accuracy, predict
    from ..exporter import DEFAULT_CALIBRATION
    from ..folder import ExportFolder
    from ..models.sources import load_reference
    from ..evaluate import agreement, runner_encoders, torch_encoders

    cfg = cfg or ParityConfig()
    folder = Path(folder)
    export_folder = ExportFolder.open(folder)  # manifest, sidecars, files and export.json checked
    record = export_folder.record
    cal_dir = Path(record.get("calibration") or DEFAULT_CALIBRATION)
    metas = export_folder.artifacts
    if not metas:
        raise DataError(f"no artifacts in {folder} (its manifest lists none); run `mobile-sdk export` first")
    model = load_reference(record, model, weights, checkpoint)
    checkpoint = model.weights or model.name
    suite = _suite(suite, record)
    data, sets, tok = _data(model, cal_dir, cfg, suite)
    with torch.no_grad():
        refs = {t: {split: (model.tower(t)(x).numpy() if x is not None else None) for split, x in d.items()}
                for t, d in data.items()}
    ref_preds = predict(sets, *torch_encoders(model), tok)
    ref_acc = accuracy(sets, ref_preds)

    results: list[ArtifactResult] = []
    runners: dict[tuple[str, str, str], object] = {}
    families: dict[tuple[str, str], set] = {}
    for m in metas:
        families.setdefault((m["platform"], m["precision"]), set()).add(m["tower"])
    tick = Steps(on_step, len(metas) + sum(t == {"image", "text"} for t in families.values())
                 + (len(metas) if cfg.localize == "always" else 0))
    for meta in metas:
        t0 = time.perf_counter()
        f = Path(meta["file"])
        size = f.stat().st_size if f.is_file() else sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
        res = ArtifactResult(meta["platform"], meta["tower"], meta["precision"], str(f.relative_to(folder)), size)
        res.tolerance = as_dict(cfg.tolerance(res.platform, res.precision))
        tick(f"{res.platform} {res.tower} {res.precision}")
        try:
            mod = platform_module(res.platform)
            runner = mod.load(f)
        except (ImportError, BackendMissing) as e:
            res.status, res.reasons = "skipped", [f"runtime not available: {e}"]
            results.append(res)
            continue
        except SdkError as e:
            res.status, res.reasons = "fail", [f"cannot load: {e}"]
            results.append(res)
            continue
        if getattr(runner, "skip_reason", None):
            res.status, res.reasons = "skipped", [runner.skip_reason]
            results.append(res)
            continue
        runners[(res.platform, res.precision, res.tower)] = runner
        for split in ("calibration", "test"):
            x = data[res.tower][split]
            if x is None:
                continue
            try:
                out = _run(runner, x)
            except SdkError as e:
                res.reasons.append(f"{split}: {e}")
                continue
            getattr(res, split).update(output_metrics(refs[res.tower][split], out))
        res.seconds = round(time.perf_counter() - t0, 2)
        results.append(res)

    # Task metrics per platform + precision, both towers of the same artifact family together.
    pairs: dict[tuple[str, str], dict] = {}
    for (plat, prec, tower), runner in runners.items():
        pairs.setdefault((plat, prec), {})[tower] = runner
    task_results: dict[tuple[str, str], dict] = {}
    for (plat, prec), towers in pairs.items():
        if set(towers) != {"image", "text"}:
            continue
        tick(f"{plat} {prec}: tasks")
        try:
            preds = predict(sets, *runner_encoders(towers["image"], towers["text"]), tok)
        except SdkError as e:
            task_results[(plat, prec)] = {"error": str(e)}
            continue
        acc = accuracy(sets, preds)
        task_results[(plat, prec)] = {
            "agreement": agreement(ref_preds, preds),
            "accuracy": acc,
            "accuracy_delta": {t: acc[t] - ref_acc[t] for t in acc},
        }

    for res in results:
        if res.status == "skipped":
            continue
        res.tasks = task_results.get((res.platform, res.precision), {})
        _judge(res)
        want = cfg.localize == "always" or (cfg.localize == "on_failure" and res.status == "fail")
        if want and res.status != "skipped":
            tick(f"{res.platform} {res.tower} {res.precision}: layers")
            res.localization = _localize(model, res, folder, data, record, cfg)

    return {
        "schema": 1,
        "folder": str(folder),
        "checkpoint": str(checkpoint),
        "model": model.name,
        "calibration": str(cal_dir),
        "n_calibration": cfg.n_calibration,
        "n_test_per_task": cfg.n_test,
        "suite": suite.describe(),
        "reference_accuracy": ref_acc,
        "artifacts": [r.__dict__ for r in results],
        "passed": all(r.status != "fail" for r in results),
    }


def _suite(suite, record: dict):
    """The evaluation suite: the one asked for, else the export's, else the built-in world."""
    from ..data.suites import CaptionSuite, FolderSuite, load_suite

    spec = record.get("eval_data") or {}
    if suite is None and spec.get("kind") == "folder":
        return FolderSuite(spec["path"], tuple(spec["templates"]))
    if suite is None and spec.get("kind") == "captions":
        return CaptionSuite(spec["path"])
    return load_suite(suite)


def _judge(res: ArtifactResult) -> None:
    tol = res.tolerance
    for split in ("calibration", "test"):
        m = getattr(res, split)
        if not m:
            continue
        if m["nonfinite"]:
            res.reasons.append(f"{split}: {m['nonfinite']} NaN/Inf outputs")
            continue
        if m["cosine_mean"] < tol["cosine_mean"]:
            res.reasons.append(f"{split}: cosine mean {m['cosine_mean']:.6f} < {tol['cosine_mean']}")
        if m["cosine_min"] < tol["cosine_min"]:
            res.reasons.append(f"{split}: cosine min {m['cosine_min']:.6f} < {tol['cosine_min']}")
    if "error" in res.tasks:
        res.reasons.append(f"tasks: {res.tasks['error']}")
    elif res.tasks:
        agree = res.tasks["agreement"]
        # the bar: zero-shot top-1 agreement; a caption-file suite has only retrieval, whose top-1
        # agreement takes its place
        kind = "zero-shot" if "zeroshot" in agree else "retrieval"
        val = agree.get("zeroshot", agree.get("retrieval"))
        if val is None:
            res.reasons.append("tasks: no task was scored, so the agreement bar cannot be checked")
        elif val < tol["agreement"]:
            res.reasons.append(f"tasks: {kind} top-1 agreement {val:.4f} < {tol['agreement']}")
    if not res.calibration and not res.test:
        res.reasons.append("no output could be computed")
    res.status = "fail" if res.reasons else "pass"


def _localize(model, res: ArtifactResult, folder: Path, data, record: dict, cfg: ParityConfig) -> dict:
    """Per-layer comparison; platforms that rebuild the artifact get the export's own calibration."""
    from converters import platform_module

    from ..exporter import DEFAULT_CALIBRATION_N, prepare_inputs

    mod = platform_module(res.platform)
    fn = getattr(mod, "intermediates", None)
    if fn is None:
        return {"status": "unavailable", "reason": f"{res.platform} does not expose intermediate outputs yet"}
    x = data[res.tower]["test"][:cfg.localize_samples]
    try:
        calib = prepare_inputs(model, record.get("calibration"), record.get("calibration_n", DEFAULT_CALIBRATION_N),
                               towers=(res.tower,)).calibration[res.tower]
        art = fn(model, res.tower, res.precision, x, calib, folder / res.file)
    except (SdkError, RuntimeError, ValueError) as e:
        return {"status": "error", "reason": f"{type(e).__name__}: {e}"}
    replica = art.pop("replica_max_abs_diff", None)
    ref = reference_intermediates(_tower(model, res.tower), x)
    out = compare_layers(ref, art, res.tolerance["layer_sqnr_db"])
    out["status"] = "ok"
    scored = [c for c in out["layers"] if c["sqnr_db"] is not None]
    if scored:
        out["weakest_layer"] = min(scored, key=lambda c: c["sqnr_db"])["layer"]
    if replica is not None:
        out["replica_max_abs_diff"] = float(replica)
        if float(replica) > 1e-3:
            # The per-layer values come from a fresh conversion of the reference; if that does not
            # reproduce the artifact, the artifact was not made from this checkpoint (or was altered).
            out["status"] = "replica_mismatch"
            out["reason"] = (f"the program the layer values were read from differs from the artifact by up to "
                             f"{float(replica):.3g}: the artifact was altered after export, or (when rebuilt from "
                             f"the checkpoint) not made from it with this recipe; the curve describes that program")
    return out


__all__ = ["ArtifactResult", "ConversionError", "check_folder", "find_artifacts"]
