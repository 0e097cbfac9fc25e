"""Quantization-aware fine-tuning (QAT) of a tower for full-integer LiteRT.

In a full-integer `.tflite` (converters/tflite.py) EVERY tensor is int8 with one scale per tensor:
the residual stream, each step of the LayerNorm arithmetic (mean, squared deviations, variance,
rsqrt), the attention scores, and the L2 normalization at the end. The shipped student's text tower
carries outlier channels in its residual stream (|x| up to ~16 where most channels stay under 1.5),
so one int8 step there is a large part of a typical channel, and the LayerNorm's squared deviations
of most channels round to zero. Post-training calibration cannot fix that: the model has to stop
relying on the outliers.

`finetune` trains a copy of the tower so that BOTH its float forward and a simulated full-integer
forward (`forward_int8`: per-tensor asymmetric int8 fake quantization after every op, where the
converter's int8 graph quantizes, with the batch's min/max as the range, straight-through
gradients) reproduce the original tower's embeddings (loss: 1 - cosine to the original's, each
term). The float model stays the reference the parity checker compares against; the fine-tune only
moves it to a nearby function that int8 represents well. The other tower is left untouched, so the
pair keeps working together (its embeddings are the targets).

Superseded for the shipped student: converters/tflite.py now exports text towers with their
residual stream rotated (`converters.rewrites.rotate_residual`, exact in float), which spreads the
outliers over the whole width and lifts the full-integer text cosine from 0.993 to 0.9996 with no
training. `forward_int8` simulates the graph WITHOUT that rotation, i.e. what
`TFLiteConfig(residual_rotation=False)` exports; the tool stays, experimental, for that route.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mobile_sdk.errors import ConfigError
from mobile_sdk.models.clip import CLIP, L2_EPS, TextEncoder

log = logging.getLogger(__name__)

TOWERS = ("text",)
SOFTMAX_SCALE, SOFTMAX_ZERO_POINT = 1.0 / 256.0, -128  # LiteRT's fixed int8 softmax output


@dataclass(frozen=True)
class QATConfig:
    tower: str = "text"
    steps: int = 1200
    batch_size: int = 256
    lr: float = 1e-4
    seed: int = 0
    captions: int = 50_000  # training captions drawn from the train split (world.random_caption)
    # Images whose eager embeddings probe the text embeddings: the loss also matches the scores
    # (text . image) of the float and the int8 forward to the original's, so the error is pushed
    # out of the directions that decide zero-shot and retrieval (0: cosine terms only).
    probe_images: int = 2048
    score_weight: float = 100.0
    log_every: int = 100

    def __post_init__(self):
        if self.tower not in TOWERS:
            raise ConfigError(f"quantization-aware fine-tuning supports the {' / '.join(TOWERS)} tower, "
                              f"got {self.tower!r}")
        if self.steps < 1 or self.batch_size < 2 or self.lr <= 0 or self.captions < self.batch_size:
            raise ConfigError(f"bad QAT config: {self}")


def fake_int8(x: torch.Tensor) -> torch.Tensor:
    """Per-tensor asymmetric int8 fake quantization with the tensor's own min/max (0 included, as
    the converter's ranges), straight-through gradient."""
    lo = torch.clamp(x.detach().min(), max=0.0)
    hi = torch.clamp(x.detach().max(), min=0.0)
    scale = torch.clamp((hi - lo) / 255.0, min=1e-8)
    zero_point = torch.clamp(torch.round(-128.0 - lo / scale), -128, 127).to(torch.int32)
    return torch.fake_quantize_per_tensor_affine(x, scale.float(), zero_point, -128, 127)


def _softmax(x: torch.Tensor, q) -> torch.Tensor:
    """Softmax; LiteRT's int8 softmax output has a fixed scale and zero point."""
    p = x.softmax(dim=-1)
    if q is fake_int8:
        return torch.fake_quantize_per_tensor_affine(p, SOFTMAX_SCALE, SOFTMAX_ZERO_POINT, -128, 127)
    return q(p)


def _layer_norm(ln, x: torch.Tensor, q) -> torch.Tensor:  # noqa: D401
    """LayerNorm as the int8 graph computes it (TensorFlow's decomposition, one int8 tensor per op):
    mean, squared difference, variance, + eps, rsqrt, gamma * rsqrt, x * that, beta - mean * that."""
    mean = q(x.mean(-1, keepdim=True))
    var = q(q((x - mean) ** 2).mean(-1, keepdim=True))
    g = q(q(torch.rsqrt(q(var + ln.eps))) * ln.weight)
    return q(q(x * g) + q(ln.bias - q(mean * g)))


def _attention(a, x: torch.Tensor, q) -> torch.Tensor:
    b, t, _ = x.shape
    qq = q(a._split(q(a.q(x))) * (a.head_dim ** -0.5))
    k, v = a._split(q(a.k(x))), a._split(q(a.v(x)))
    p = _softmax(q(torch.bmm(qq, k.transpose(1, 2))), q)
    return q(a.out(a._merge(q(torch.bmm(p, v)), b, t)))


def _block(blk, x: torch.Tensor, q) -> torch.Tensor:
    x = q(x + _attention(blk.attn, _layer_norm(blk.ln1, x, q), q))
    h = q(blk.mlp.act(q(blk.mlp.fc(_layer_norm(blk.ln2, x, q)))))
    return q(x + q(blk.mlp.proj(h)))


def _l2_normalize(x: torch.Tensor, q) -> torch.Tensor:
    """`models.clip.l2_normalize` as the int8 graph computes it: x * x, SUM, SQRT, reciprocal, MUL."""
    s = q(q(x * x).sum(dim=-1, keepdim=True))
    return q(x * q(1.0 / q(torch.sqrt(s + L2_EPS))))


def forward_int8(tower: TextEncoder, ids: torch.Tensor, q=fake_int8) -> torch.Tensor:
    """The text tower's forward with int8 fake quantization where the full-integer graph has an
    int8 tensor (`q=lambda x: x` gives the float forward, op for op)."""
    if not isinstance(tower, TextEncoder):
        raise TypeError(f"forward_int8 takes a TextEncoder, got {type(tower).__name__}")
    x = q(q(tower.tok(ids)) + tower.pos)
    for blk in tower.blocks:
        x = _block(blk, x, q)
    z = _layer_norm(tower.ln_final, tower.readout(x), q).flatten(1)
    return _l2_normalize(q(tower.proj(z)), q)


def training_captions(n: int, seed: int = 0, context_length: int | None = None) -> torch.Tensor:
    """(n, T) int32 ids of random true captions of train-split scenes (the training text
    distribution: full captions and one-fact prompts like "a circle")."""
    from mobile_sdk.data.splits import scene_at
    from mobile_sdk.data.world import random_caption
    from mobile_sdk.tokenizer import CONTEXT_LENGTH, Tokenizer

    tok = Tokenizer.from_file(context_length=context_length or CONTEXT_LENGTH)
    texts = []
    for i in range(n):
        scene, rng = scene_at("train", i, seed, stream=(7,))
        texts.append(random_caption(scene, rng, focus=0.2))
    return torch.from_numpy(tok(texts))


@torch.no_grad()
def _probe_embeddings(model: CLIP, n: int, seed: int) -> torch.Tensor:
    """(n, D) eager image embeddings of train-split scenes (a stream of its own)."""
    from mobile_sdk.data.render import render
    from mobile_sdk.data.splits import scene_at

    size = model.cfg.vision.image_size
    pixels = np.stack([render(scene_at("train", i, seed, stream=(8,))[0], size) for i in range(n)])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float()
    return torch.cat([model.visual.eval()(x[i:i + 256]) for i in range(0, n, 256)])


def finetune(model: CLIP, cfg: QATConfig, progress=None) -> tuple[CLIP, dict]:
    """A copy of `model` whose `cfg.tower` is fine-tuned for full-integer int8 (module docstring).
    Returns (model, report): cosine of the float and the simulated-int8 forward to the original
    tower on held-out captions, before and after."""
    torch.manual_seed(cfg.seed)
    original = model.text.eval()
    student = copy.deepcopy(model).eval()
    tower = student.text
    ids = training_captions(cfg.captions + 2048, cfg.seed, model.cfg.text.context_length)
    train_ids, held_out = ids[:cfg.captions], ids[cfg.captions:]

    with torch.no_grad():
        ref = original(held_out)

    @torch.no_grad()
    def measure() -> dict:
        tower.eval()
        cos_f = F.cosine_similarity(tower(held_out), ref).numpy()
        cos_q = F.cosine_similarity(forward_int8(tower, held_out), ref).numpy()
        return {"float_cos_mean": float(cos_f.mean()), "float_cos_min": float(cos_f.min()),
                "int8_sim_cos_mean": float(cos_q.mean()), "int8_sim_cos_min": float(cos_q.min())}

    probes = _probe_embeddings(model, cfg.probe_images, cfg.seed) if cfg.probe_images else None

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = (1 - F.cosine_similarity(out, target)).mean()
        if probes is not None:
            loss = loss + cfg.score_weight * ((out - target) @ probes.T).pow(2).mean()
        return loss

    before = measure()
    opt = torch.optim.AdamW(tower.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, log_rows = time.perf_counter(), []
    for step in range(1, cfg.steps + 1):
        lr = cfg.lr * 0.5 * (1 + np.cos(np.pi * (step - 1) / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = train_ids[torch.randint(len(train_ids), (cfg.batch_size,), generator=gen)]
        with torch.no_grad():
            target = original(batch)
        tower.train()
        loss_f = loss_fn(tower(batch), target)
        loss_q = loss_fn(forward_int8(tower, batch), target)
        loss = loss_f + loss_q
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {"step": step, "loss_float": float(loss_f.detach()), "loss_int8_sim": float(loss_q.detach()), "lr": lr,
                   "seconds": round(time.perf_counter() - t0, 1)}
            log_rows.append(row)
            log.info("qat step %d: 1-cos float %.2e, int8 sim %.2e", step, row["loss_float"], row["loss_int8_sim"])
        if progress is not None:
            progress(step, cfg.steps, float(loss.detach()))
    student.eval()
    return student, {"tower": cfg.tower, "before": before, "after": measure(), "log": log_rows,
                     "config": cfg.__dict__, "seconds": round(time.perf_counter() - t0, 1)}
