"""CLIP training on the procedural world: symmetric InfoNCE (+ optional hard-negative captions,
as NegCLIP does), AdamW, linear warm-up then cosine decay. Resumable, deterministic data order.

Runs unchanged under `torchrun` (DistributedDataParallel: gloo on CPU, nccl on CUDA): rank r of
W takes the samples [step*B*W + r*B, step*B*W + (r+1)*B) of the train split at each step, and only
rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint, load_state_dict_strict, read_metadata, save_checkpoint
from .compress.losses import DistillConfig, distill_loss
from .data.splits import WorldDataset
from .errors import CheckpointError, ConfigError
from .models import create_model, model_config
from .tokenizer import Tokenizer

log = logging.getLogger(__name__)

MODEL_FILE, STATE_FILE, LOG_FILE = "model.safetensors", "train_state.pt", "train_log.jsonl"
POSITIVES = ("pair", "truth")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "teacher"  # registered model name
    steps: int = 2000  # optimizer steps
    batch_size: int = 128  # per process (global batch = batch_size * world size)
    lr: float = 5e-4  # peak learning rate
    min_lr_ratio: float = 0.02  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = -1  # -1: 5% of steps
    weight_decay: float = 0.1  # on matrices only (not biases, norms, embeddings, logit scale)
    grad_clip: float = 1.0
    hard_negatives: int = 3  # hard-negative captions per image added to the text side (0: none)
    caption_focus: float = 0.0  # share of captions without colour (world.random_caption)
    pairs: float = 0.0  # probability that a batch slot pair is a scene and its one-fact-changed twin
    positives: str = "pair"  # "pair": only a sample's own caption is its positive (plain CLIP);
    # "truth": every caption in the batch that is true of an image is a positive (multi-positive InfoNCE)
    image_size: int = 64
    seed: int = 0  # model init; the data stream is the train split of world seed `data_seed`
    data_seed: int = 0
    train_samples: int = 0  # 0: the endless train stream; N: cycle over its first N samples
    workers: int = 2  # data-loader processes per rank
    eval_every: int = 500  # steps between validation evals (0: never)
    eval_n: int = 200  # samples per task in validation evals
    save_every: int = 500  # steps between checkpoints
    device: str = "cpu"  # "cpu", "cuda", "cuda:N" or "auto"
    amp: bool = True  # bf16 autocast on CUDA
    init: str = ""  # start from this checkpoint (its architecture, e.g. a pruned one) instead of `model`
    teacher: str = ""  # distill from this checkpoint (loss: `distill`); empty: plain CLIP training
    distill: DistillConfig = DistillConfig()
    name: str = ""  # name stored in the checkpoint (default: `model`)

    def __post_init__(self):
        if isinstance(self.distill, dict):
            object.__setattr__(self, "distill", DistillConfig(**self.distill))
        if not self.init and not is_source(self.model):
            model_config(self.model)  # raises ConfigError on an unknown name
        if self.train_samples < 0:
            raise ConfigError(f"train_samples must be >= 0, got {self.train_samples}")
        for name in ("steps", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.pairs <= 1.0:
            raise ConfigError(f"pairs must be in [0, 1], got {self.pairs}")
        if self.positives not in POSITIVES:
            raise ConfigError(f"positives must be one of {POSITIVES}, got {self.positives!r}")
        if self.pairs > 0 and self.batch_size % 2:
            raise ConfigError(f"batch_size must be even when pairs > 0 (twins share a batch), got {self.batch_size}")

    @property
    def warmup(self) -> int:
        return max(1, self.steps // 20) if self.warmup_steps < 0 else self.warmup_steps

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def is_source(model: str) -> bool:
    """True for a model source of another family (`open_clip:CONFIG.json`, `open_clip:ARCH`), which
    trains from scratch in that family's own classes, instead of a registered built-in name."""
    return ":" in model


def normalized_source(model: str) -> str:
    """open_clip:CONFIG.json with the config's absolute path (what a checkpoint records), so a
    resume or `pack` from another folder finds the same model."""
    prefix, _, arch = model.partition(":")
    return f"{prefix}:{Path(arch).resolve()}" if arch.endswith(".json") else model


def _source_model(cfg: "TrainConfig"):
    """(trainable open_clip model, its tokenizer) for `cfg.model` = open_clip:ARCH or CONFIG.json."""
    prefix, _, arch = cfg.model.partition(":")
    if prefix != "open_clip":
        raise ConfigError(f"train --model {cfg.model}: training from scratch works for the built-in models and "
                          f"open_clip:ARCH / open_clip:CONFIG.json (see `mobile-sdk models`)")
    from .models._open_clip import OpenClipTrainNet, create_open_clip, load_strict, read_state_dict

    raw, name = create_open_clip(arch)
    size = raw.visual.preprocess_cfg["size"]
    size = size if isinstance(size, int) else size[0]
    if size != cfg.image_size:
        raise ConfigError(f"open_clip {name} takes {size} px images; pass --image-size {size} (the world renders "
                          f"at any size)")
    if cfg.init:
        load_strict(raw, read_state_dict(cfg.init), cfg.init, f"open_clip {name}")
    net = OpenClipTrainNet(raw, name)
    return net, net.adapter(cfg.model).tokenizer


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here; use --device cpu")
    return dev


class _Batches(torch.utils.data.Sampler):
    """Index lists for steps [start, steps) of one rank: a pure function of the step."""

    def __init__(self, start: int, steps: int, batch: int, rank: int, world: int, modulo: int = 0):
        self.start, self.steps, self.batch, self.rank, self.world = start, steps, batch, rank, world
        self.modulo = modulo

    def __iter__(self):
        for step in range(self.start, self.steps):
            base = (step * self.world + self.rank) * self.batch
            idx = range(base, base + self.batch)
            yield [i % self.modulo for i in idx] if self.modulo else list(idx)

    def __len__(self):
        return self.steps - self.start


class _Collate:
    """-> (images, token ids, truth, teacher ids) where truth is None, or, for items that carry their scene's
    true captions (`WorldDataset(truth=True)`), the bool table truth[i, j] = text j is true of
    image i over all texts of the batch (captions, then hard negatives)."""

    def __init__(self, tokenizer, teacher_tokenizer=None):
        self.tok, self.teacher_tok = tokenizer, teacher_tokenizer

    def __call__(self, items):
        images = torch.from_numpy(np.stack([it[0] for it in items])).permute(0, 3, 1, 2).contiguous()
        texts = [it[1] for it in items] + [neg for it in items if len(it) > 2 for neg in it[2]]
        truth = None
        if all(len(it) == 4 for it in items):
            truth = torch.tensor([[t in it[3] for t in texts] for it in items])
        teacher_ids = None if self.teacher_tok is None else torch.from_numpy(self.teacher_tok(texts))
        return images, torch.from_numpy(self.tok(texts)), truth, teacher_ids


def clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor,
              truth: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE. `txt` may hold extra rows after the first len(img): hard negatives,
    used as extra candidates for image->text only.

    `truth` (bool, (n, len(txt))): which texts are true of which image. Each direction's target is
    then uniform over all true partners (multi-positive InfoNCE, as in UniCL / SupCon) instead of
    only the sample's own partner: a short caption like "a circle" is true of many images in a
    batch, and plain InfoNCE would push it away from all of them but one."""
    n = img.shape[0]
    logits_i2t = scale * img @ txt.T  # (n, n + extra)
    logits_t2i = scale * txt[:n] @ img.T  # (n, n)
    if truth is None:
        labels = torch.arange(n, device=img.device)
        return 0.5 * (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels))
    t = truth.to(img.device, torch.float32)
    if not bool(t.diagonal().all()):
        raise ValueError("truth table: a caption is not true of its own image")
    t_i2t = t / t.sum(1, keepdim=True)
    t_t2i = t[:, :n].T / t[:, :n].T.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits_i2t, t_i2t) + F.cross_entropy(logits_t2i, t_t2i))


def _param_groups(model: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "pos" not in name and "tok" not in name and "cls" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train and return the path of the final checkpoint (OUT/model.safetensors)."""
    return fit(cfg, out_dir, resume, progress)[1]


def fit(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True):
    """Like `train`, but return (this process's trained model, checkpoint path)."""
    import torch.distributed as dist

    out = Path(out_dir)
    rank, world, local_rank = _dist_env()
    device = resolve_device(cfg.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(cfg, out, resume, progress, rank, world, device)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def train_loader(cfg: TrainConfig, tokenizer: Tokenizer, start: int = 0, rank: int = 0, world: int = 1,
                 pin_memory: bool = False, teacher_tokenizer=None) -> torch.utils.data.DataLoader:
    """The batches (images, token ids, truth, teacher ids) of steps [start, cfg.steps) for one rank,
    as training draws them (scripts/loader_rate.py times this same loader). Teacher ids are None
    unless the teacher tokenizes differently from the model (`teacher_tokenizer`)."""
    ds = WorldDataset("train", cfg.image_size, cfg.data_seed, augment=True, hard_negatives=cfg.hard_negatives,
                      pairs=cfg.pairs, caption_focus=cfg.caption_focus, truth=cfg.positives == "truth")
    return torch.utils.data.DataLoader(
        ds, batch_sampler=_Batches(start, cfg.steps, cfg.batch_size, rank, world, cfg.train_samples), collate_fn=_Collate(tokenizer, teacher_tokenizer),
        num_workers=cfg.workers, persistent_workers=False, prefetch_factor=4 if cfg.workers else None,
        pin_memory=pin_memory)


def _train(cfg, out, resume, progress, rank, world, device) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(cfg.seed)
    lineage = None
    if is_source(cfg.model):
        model, tokenizer = _source_model(cfg)
        if cfg.init:
            lineage = {"path": cfg.init}
    else:
        tokenizer = Tokenizer.from_file()
        if cfg.init:
            model, init_meta = load_checkpoint(cfg.init)
            lineage = {"path": cfg.init, "name": init_meta.get("name", ""), "info": init_meta["info"]}
        else:
            model = create_model(cfg.model)
        if model.cfg.text.vocab_size != tokenizer.vocab_size:
            raise ConfigError(f"model vocab_size {model.cfg.text.vocab_size} != tokenizer {tokenizer.vocab_size}")
        if model.cfg.vision.image_size != cfg.image_size and cfg.init:
            raise ConfigError(f"--image-size {cfg.image_size} differs from {cfg.init}'s {model.cfg.vision.image_size}")
        if model.cfg.vision.image_size != cfg.image_size:
            model = create_model(dataclasses.replace(model.cfg, vision=dataclasses.replace(
                model.cfg.vision, image_size=cfg.image_size)))
    teacher = teacher_tok = None
    if cfg.teacher:
        teacher = load_checkpoint(cfg.teacher)[0].to(device).eval().requires_grad_(False)
        if teacher.cfg.vision.image_size != cfg.image_size:
            raise ConfigError(f"teacher {cfg.teacher} takes {teacher.cfg.vision.image_size} px images, not {cfg.image_size}")
        if is_source(cfg.model):  # the built-in teacher reads its own word-level ids
            teacher_tok = Tokenizer.from_file()
    net = _Trainable(model, teacher.cfg.embed_dim if teacher is not None else None).to(device).train()
    opt = torch.optim.AdamW(_param_groups(net, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    start = 0
    if resume and (out / STATE_FILE).is_file():
        start = _load_state(net, opt, out, cfg, device)
        log.info("resumed from step %d", start)
        if rank == 0:
            _truncate_log(out / LOG_FILE, start)
    elif resume:
        log.warning("--resume: no %s in %s, starting from scratch", STATE_FILE, out)
    ddp = net
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    loader = train_loader(cfg, tokenizer, start, rank, world, pin_memory=device.type == "cuda",
                          teacher_tokenizer=teacher_tok)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    amp = cfg.amp and device.type == "cuda"
    bar = _progress(progress and rank == 0, cfg.steps, start)
    t0, seen, loss_ema = time.time(), 0, None
    step = start
    for step, (images, ids, truth, teacher_ids) in enumerate(loader, start):
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(step)
        images, ids = images.to(device, non_blocking=True).float(), ids.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            img, txt, scale, p_img, p_txt = ddp(images, ids)
            if teacher is None:
                loss = clip_loss(img.float(), txt.float(), scale, truth)
            else:
                with torch.no_grad():
                    t_out = teacher(images, ids if teacher_ids is None else teacher_ids.to(device))
                loss, terms = distill_loss(cfg.distill, (img.float(), txt.float(), scale), t_out,
                                           projected=(p_img.float(), p_txt.float()), truth=truth)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100.0))
        seen += images.shape[0] * world
        loss_val = float(loss.detach())
        loss_ema = loss_val if loss_ema is None else 0.98 * loss_ema + 0.02 * loss_val
        done = step + 1
        if rank == 0:
            bar.update(done, loss_ema)
            record = {"step": done, "loss": round(loss_val, 5), "lr": cfg.lr_at(step),
                      "logit_scale": round(float(scale.detach()), 3), "samples_per_s": round(seen / (time.time() - t0), 1)}
            if teacher is not None:
                record["terms"] = {k: round(v, 5) for k, v in terms.items()}
            if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
                record["val"] = _validate(model, cfg, tokenizer, device)
                model.train()
            if done % 10 == 0 or "val" in record or done == cfg.steps:
                with open(out / LOG_FILE, "a") as f:
                    f.write(json.dumps(record) + "\n")
            if done % cfg.save_every == 0 or done == cfg.steps:
                _save(net, opt, out, cfg, done, world, lineage)
    bar.close()
    return model.eval(), out / MODEL_FILE


def _validate(model, cfg, tokenizer, device) -> dict:
    from .evaluate import evaluate_model
    from .data.tasks import summarize

    if is_source(cfg.model):  # evaluated as it exports: in the adapter contract
        model = model.adapter(cfg.model)
        model.image.to(device)
        model.text.to(device)
    res = evaluate_model(model, n=cfg.eval_n, split="val", device=device, tokenizer=tokenizer)
    res.update(summarize(res))
    log.info("val: %s", {k: round(v, 3) for k, v in res.items()})
    return {k: round(v, 4) for k, v in res.items()}


class _Trainable(torch.nn.Module):
    """The model plus, when distilling into a narrower embedding, the linear projectors of the
    feature loss (trained with it, saved in train_state.pt, not in the checkpoint). Projections
    happen in forward so DistributedDataParallel sees every parameter used."""

    def __init__(self, model, teacher_dim: int | None):
        super().__init__()
        self.model = model
        d = getattr(model, "embed_dim", None) or model.cfg.embed_dim
        if teacher_dim is not None and teacher_dim != d:
            self.proj_img = torch.nn.Linear(d, teacher_dim, bias=False)
            self.proj_txt = torch.nn.Linear(d, teacher_dim, bias=False)
        else:
            self.proj_img = self.proj_txt = None

    def forward(self, images, ids):
        img, txt, scale = self.model(images, ids)
        if self.proj_img is None:
            return img, txt, scale, img, txt
        return img, txt, scale, self.proj_img(img), self.proj_txt(txt)

    def extras(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("model.")}


def _save(net: _Trainable, opt, out: Path, cfg: TrainConfig, step: int, world: int, lineage=None) -> None:
    info = {"train_config": dataclasses.asdict(cfg), "step": step, "world_size": world}
    if lineage:
        info["init_from"] = lineage  # what this run started from, with that checkpoint's own info
    if is_source(cfg.model):
        _save_source(net.model.model, out / MODEL_FILE, normalized_source(cfg.model), info)
    else:
        save_checkpoint(net.model, out / MODEL_FILE, name=cfg.name or cfg.model, info=info)
    state = {"step": step, "optimizer": opt.state_dict(), "train_config": json.dumps(dataclasses.asdict(cfg)),
             "extras": net.extras()}
    tmp = out / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / STATE_FILE)


def _save_source(model: torch.nn.Module, path: Path, source: str, info: dict) -> None:
    """An open_clip state dict, exactly what `--model SOURCE --weights PATH` loads, written
    atomically; the source and training info go in the safetensors metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"source": source, "info": json.dumps(info)})
    os.replace(tmp, path)


def _source_step(path: Path, source: str) -> int:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as e:  # missing or corrupt
        raise CheckpointError(f"--resume: cannot read {path} ({type(e).__name__}: {e}); delete {STATE_FILE} "
                              f"beside it to start over") from e
    source = normalized_source(source)
    if normalized_source(meta.get("source", "")) != source:
        raise CheckpointError(f"--resume: {path} holds {meta.get('source') or 'another model'}, not {source}; "
                              f"resume with the --model it was trained with, or pass another --out")
    return int(json.loads(meta.get("info", "{}")).get("step", -1))


def _truncate_log(path: Path, step: int) -> None:
    """Drop log records after `step` (written by the interrupted run after its last checkpoint),
    so a resumed run's log has each step once."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def _load_state(net: _Trainable, opt, out: Path, cfg: TrainConfig, device) -> int:
    from safetensors.torch import load_file

    model = net.model
    if is_source(cfg.model):
        from .models._open_clip import load_strict, read_state_dict

        saved_step = _source_step(out / MODEL_FILE, cfg.model)
        load_strict(model.model, read_state_dict(out / MODEL_FILE), str(out / MODEL_FILE), cfg.model)
    else:
        start_over = f"delete {MODEL_FILE} and {STATE_FILE} in {out} to start over"
        meta = read_metadata(out / MODEL_FILE, fix=start_over)
        if meta["config"] != model.cfg:
            raise CheckpointError(f"--resume: {out / MODEL_FILE} holds another architecture than --model {cfg.model}; "
                                  f"resume with the --model it was trained with, or pass another --out")
        try:
            tensors = load_file(str(out / MODEL_FILE))
        except Exception as e:  # safetensors' own error types: a damaged or cut-short file
            raise CheckpointError(f"--resume: cannot read the tensors of {out / MODEL_FILE} ({e}): the file is damaged "
                                  f"or cut short; {start_over}") from e
        load_state_dict_strict(model, tensors, str(out / MODEL_FILE),
                               fix=f"the file was damaged or edited; {start_over}")
        saved_step = meta["info"].get("step")
    try:
        state = torch.load(out / STATE_FILE, map_location=device, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"--resume: cannot read {out / STATE_FILE}: {e}; delete it to start over") from e
    extras = state.get("extras", {})
    if set(extras) != set(net.extras()):
        raise CheckpointError(f"--resume: {out / STATE_FILE} was written by a different run (distillation "
                              f"projectors differ); delete it to start over")
    net.load_state_dict({**{f"model.{k}": v for k, v in model.state_dict().items()}, **extras})
    net.to(device)
    opt.load_state_dict(state["optimizer"])
    if state["step"] != saved_step:
        raise CheckpointError(f"--resume: {STATE_FILE} (step {state['step']}) and {MODEL_FILE} "
                              f"(step {saved_step}) disagree; delete both to start over")
    return int(state["step"])


class _progress:
    """A rich progress bar on rank 0 (to stderr), or nothing."""

    def __init__(self, enabled: bool, total: int, start: int):
        self.p = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(), transient=False)
            self.p.start()
            self.task = self.p.add_task("train", total=total, completed=start, loss="-")

    def update(self, done: int, loss: float) -> None:
        if self.p:
            self.p.update(self.task, completed=done, loss=f"{loss:.3f}")

    def close(self) -> None:
        if self.p:
            self.p.stop()
