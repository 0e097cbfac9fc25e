"""`mobile-sdk compress`: teacher -> distilled student -> pruned + fine-tuned student, with a report.

Stages (each writes into its own folder under OUT and is skipped when its finished checkpoint is
already there, so an interrupted run continues where it stopped):

1. `distilled/`: the `student` architecture trained from scratch with the distillation loss.
2. `pruned_init.safetensors`: heads / MLP channels / blocks removed by Taylor importance measured
   on train batches with the same loss.
3. `pruned/`: the pruned model fine-tuned with distillation.
4. `OUT/student.safetensors`: the result (optionally with unstructured magnitude pruning), and
   `OUT/report.json` + the printed table: teacher, distilled, pruned.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, read_metadata, save_checkpoint
from ..errors import CheckpointError, ConfigError
from ..models.clip import count_parameters
from .losses import DistillConfig
from .prune import PruneConfig, importance, magnitude_prune, prune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompressConfig:
    student: str = "student"  # registered architecture distilled into
    distill_steps: int = 1500
    finetune_steps: int = 500
    batch_size: int = 128
    lr: float = 1e-3
    finetune_lr: float = 3e-4
    seed: int = 0
    workers: int = 1
    importance_batches: int = 8  # train batches the Taylor importance is accumulated over
    positives: str = "truth"  # the ground-truth clip term's positives (train.TrainConfig.positives)
    distill: DistillConfig = DistillConfig()
    prune: PruneConfig = PruneConfig()
    magnitude_sparsity: float = 0.0  # optional unstructured pruning of the final model (report only)
    eval_n: int = 500  # test samples per task in the report
    device: str = "cpu"

    def __post_init__(self):
        for name in ("distill_steps", "batch_size", "importance_batches", "eval_n"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.finetune_steps < 0:
            raise ConfigError(f"finetune_steps must be >= 0, got {self.finetune_steps}")
        if not 0.0 <= self.magnitude_sparsity < 1.0:
            raise ConfigError(f"magnitude_sparsity must be in [0, 1), got {self.magnitude_sparsity}")


def _finished(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        info = read_metadata(path)["info"]
    except CheckpointError:
        return False
    return info.get("step") is not None and info.get("step") == info.get("train_config", {}).get("steps")


def _train_stage(cfg: CompressConfig, out: Path, teacher: Path, steps: int, lr: float, init: str, name: str,
                 progress: bool) -> Path:
    from ..train import TrainConfig, train

    if _finished(out / "model.safetensors"):
        log.info("%s: finished checkpoint found, skipping", out)
        return out / "model.safetensors"
    tcfg = TrainConfig(model=cfg.student, steps=steps, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed,
                       workers=cfg.workers, eval_every=0, save_every=max(1, steps // 10), device=cfg.device,
                       init=init, teacher=str(teacher), distill=cfg.distill, name=name, positives=cfg.positives)
    return train(tcfg, out, resume=(out / "train_state.pt").is_file(), progress=progress)


def _importance_batches(cfg: CompressConfig, image_size: int):
    """Train-split batches far from those the distillation saw (a fixed offset into the stream)."""
    from ..data.splits import WorldDataset
    from ..tokenizer import Tokenizer
    from ..train import _Collate

    ds = WorldDataset("train", image_size, augment=True, hard_negatives=3)
    collate = _Collate(Tokenizer.from_file())
    base = 10**12
    for b in range(cfg.importance_batches):
        yield collate([ds[base + b * cfg.batch_size + i] for i in range(cfg.batch_size)])


def prune_checkpoint(student_path: Path, teacher_path: Path, cfg: CompressConfig, out: Path) -> Path:
    """Measure importance with the distillation loss, prune, save the (not yet fine-tuned) model."""
    from .losses import distill_loss

    student, meta = load_checkpoint(student_path)
    teacher, _ = load_checkpoint(teacher_path)
    teacher.requires_grad_(False)
    if student.cfg.embed_dim != teacher.cfg.embed_dim:  # importance without the feature term's projector
        cfg_d = dataclasses.replace(cfg.distill, feature_weight=0.0)
    else:
        cfg_d = cfg.distill

    def loss_fn(model, batch):
        images, ids = batch[:2]
        images = images.float()
        with torch.no_grad():
            t_out = teacher(images, ids)
        return distill_loss(cfg_d, model(images, ids), t_out)[0]

    scores = importance(student, _importance_batches(cfg, student.cfg.vision.image_size), loss_fn)
    pruned = prune(student, scores, cfg.prune)
    info = {"pruned_from": str(student_path), "prune_config": dataclasses.asdict(cfg.prune),
            "params_before": count_parameters(student), "params_after": count_parameters(pruned)}
    return save_checkpoint(pruned, out, name=f"{meta.get('name') or cfg.student}-pruned", info=info)


def eager_latency_ms(model: torch.nn.Module, repeats: int = 30) -> dict:
    """Median eager batch-1 latency per tower (ms), after warm-up, on this machine's CPU."""
    from ..tokenizer import Tokenizer

    image = torch.rand(1, 3, model.cfg.vision.image_size, model.cfg.vision.image_size) * 255
    ids = torch.from_numpy(Tokenizer.from_file()(["a small red circle left of a blue square"]))
    res = {}
    with torch.inference_mode():
        for tower, fn, x in (("image", model.encode_image, image), ("text", model.encode_text, ids)):
            for _ in range(5):
                fn(x)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn(x)
                times.append((time.perf_counter() - t0) * 1e3)
            res[tower] = sorted(times)[len(times) // 2]
    return res


def describe(path: Path, label: str, n: int, device: str = "cpu") -> dict:
    from ..report import evaluate_loaded

    model, meta = load_checkpoint(path)
    row = evaluate_loaded(model, meta, path, n=n, split="test", device=device)
    row["label"] = label
    row["latency_ms"] = eager_latency_ms(model.cpu())
    return row


def render_report(rows: list[dict], magnitude: dict | None = None) -> str:
    tasks = list(rows[0]["tasks"])
    head = ["model", "params", "fp32 MiB", "img ms", "txt ms"] + [t.replace("zeroshot_", "zs ").replace("retrieval_", "")
                                                          for t in tasks] + ["zs mean", "R@1 mean"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [r["label"], f"{r['params'] / 1e6:.2f}M", f"{r['fp32_bytes'] / 2**20:.1f}",
                 f"{r['latency_ms']['image']:.2f}", f"{r['latency_ms']['text']:.2f}"]
        cells += [f"{100 * r['tasks'][t]:.1f}" for t in tasks]
        cells += [f"{100 * r['summary']['zeroshot_mean']:.1f}", f"{100 * r['summary']['retrieval_mean']:.1f}"]
        lines.append(" | ".join(cells))
    t, last = rows[0], rows[-1]
    lines.append("")
    lines.append(f"{last['label']}: {last['params'] / t['params']:.3f}x the teacher's parameters, "
                 f"zero-shot mean {100 * (last['summary']['zeroshot_mean'] - t['summary']['zeroshot_mean']):+.1f} "
                 f"points vs the teacher (test split, n={t['n']} per task; latency: eager PyTorch, batch 1, "
                 f"this machine's CPU)")
    if magnitude:
        lines.append(f"magnitude pruning: {magnitude['zeroed']} of {magnitude['of']} block weights zeroed "
                     f"({100 * magnitude['sparsity']:.0f}%); {magnitude['note']}")
    return "\n".join(lines)


def compress(teacher_path: str | Path, out_dir: str | Path, cfg: CompressConfig = CompressConfig(),
             progress: bool = True) -> tuple[Path, dict]:
    """Run every stage; return (OUT/student.safetensors, report dict)."""
    teacher_path, out = Path(teacher_path), Path(out_dir)
    load_checkpoint(teacher_path)  # fail fast on a bad teacher, before any training
    out.mkdir(parents=True, exist_ok=True)
    log.info("stage 1/3: distilling %s into %s (%d steps)", teacher_path, cfg.student, cfg.distill_steps)
    distilled = _train_stage(cfg, out / "distilled", teacher_path, cfg.distill_steps, cfg.lr, "", cfg.student,
                             progress)
    log.info("stage 2/3: pruning %s", cfg.prune)
    pruned_init = out / "pruned_init.safetensors"
    if not pruned_init.is_file():
        prune_checkpoint(distilled, teacher_path, cfg, pruned_init)
    final = pruned_init
    if cfg.finetune_steps:
        log.info("stage 3/3: fine-tuning the pruned model with distillation (%d steps)", cfg.finetune_steps)
        final = _train_stage(cfg, out / "pruned", teacher_path, cfg.finetune_steps, cfg.finetune_lr,
                             str(pruned_init), f"{cfg.student}-pruned", progress)
    model, meta = load_checkpoint(final)
    magnitude = magnitude_prune(model, cfg.magnitude_sparsity) if cfg.magnitude_sparsity else None
    info = {**meta["info"], "compress_config": dataclasses.asdict(cfg), "teacher": str(teacher_path)}
    if magnitude:
        info["magnitude_pruning"] = magnitude
    student = save_checkpoint(model, out / "student.safetensors", name=meta.get("name", ""), info=info)
    rows = [describe(teacher_path, "teacher", cfg.eval_n, cfg.device),
            describe(distilled, "distilled", cfg.eval_n, cfg.device),
            describe(student, "pruned", cfg.eval_n, cfg.device)]
    report = {"rows": rows, "magnitude_pruning": magnitude, "table": render_report(rows, magnitude)}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return student, report
