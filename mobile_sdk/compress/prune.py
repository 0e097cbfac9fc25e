"""Structured pruning of the CLIP towers: attention heads, MLP hidden channels and whole blocks.

The result is a smaller *dense* model: a new `CLIPConfig` with per-block head counts and MLP widths
(`TowerConfig.heads` / `.mlp_dim` take one value per block) and the surviving weights sliced into
it, so it saves, loads, exports and converts like any other checkpoint. Nothing is masked.

Importance is first-order Taylor (Molchanov et al. 2019): |sum over a unit's parameters of
weight * gradient| of the loss, accumulated over calibration batches. A head owns its rows of q, k
and v and its columns of the output projection; an MLP channel owns its row of fc and its column of
proj; a block owns all of its parameters.

Why not torch-pruning: these towers already expose every prunable width as a config field, so the
pruned model must end as such a config; slicing ~40 lines of known structure is exact and cannot
drift, whereas torch-pruning would have to trace the separate q/k/v + reshape attention and its
output would still need translating back into a config.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..models.clip import CLIP, Attention, Block

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneConfig:
    heads: float = 0.5  # fraction of attention heads removed in every block (at least 1 kept)
    mlp: float = 0.625  # fraction of MLP hidden channels removed in every block
    vision_layers: int = 0  # whole blocks dropped from the image tower (least important first)
    text_layers: int = 0  # whole blocks dropped from the text tower

    def __post_init__(self):
        for name in ("heads", "mlp"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"prune {name} must be in [0, 1), got {getattr(self, name)}")
        if self.vision_layers < 0 or self.text_layers < 0:
            raise ConfigError("layers to drop must be >= 0")


def _taylor(params: Iterable[torch.Tensor]) -> float:
    return float(sum((p.detach() * p.grad).sum() for p in params if p.grad is not None).abs())


def _head_scores(attn: Attention) -> torch.Tensor:
    h, d = attn.heads, attn.head_dim
    score = torch.zeros(h)
    for lin in (attn.q, attn.k, attn.v):
        wg = (lin.weight.detach() * lin.weight.grad).view(h, d, -1).sum((1, 2))
        wg = wg + (lin.bias.detach() * lin.bias.grad).view(h, d).sum(1)
        score += wg
    score += (attn.out.weight.detach() * attn.out.weight.grad).view(-1, h, d).sum((0, 2))
    return score


def _channel_scores(block: Block) -> torch.Tensor:
    fc, proj = block.mlp.fc, block.mlp.proj
    return ((fc.weight.detach() * fc.weight.grad).sum(1) + fc.bias.detach() * fc.bias.grad
            + (proj.weight.detach() * proj.weight.grad).sum(0))


def importance(model: CLIP, batches: Iterable, loss_fn: Callable[[CLIP, object], torch.Tensor]) -> dict:
    """Taylor scores per tower: {"vision"|"text": {"heads": [T(h)], "mlp": [T(m)], "blocks": [float]}}.

    Each batch's loss is differentiated separately and scores are |per-batch sums| accumulated, so
    units whose effect cancels out within a batch still count as important across batches.
    """
    model.train()
    towers = {"vision": model.visual, "text": model.text}
    acc = {t: {"heads": [torch.zeros(b.attn.heads) for b in m.blocks],
               "mlp": [torch.zeros(b.mlp.fc.out_features) for b in m.blocks],
               "blocks": [0.0] * len(m.blocks)} for t, m in towers.items()}
    n = 0
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        for t, m in towers.items():
            for i, b in enumerate(m.blocks):
                acc[t]["heads"][i] += _head_scores(b.attn).abs()
                acc[t]["mlp"][i] += _channel_scores(b).abs()
                acc[t]["blocks"][i] += _taylor(b.parameters())
        n += 1
    model.zero_grad(set_to_none=True)
    model.eval()
    if n == 0:
        raise ConfigError("importance needs at least one batch of data")
    return acc


def _keep(scores: torch.Tensor, drop_fraction: float) -> torch.Tensor:
    n = scores.numel()
    keep = max(1, n - int(round(n * drop_fraction)))
    return scores.topk(keep).indices.sort().values


def _slice_linear(lin: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    w = lin.weight.detach()
    b = lin.bias.detach() if lin.bias is not None else None
    if rows is not None:
        w, b = w[rows], (b[rows] if b is not None else None)
    if cols is not None:
        w = w[:, cols]
    new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    new.weight.data.copy_(w)
    if b is not None:
        new.bias.data.copy_(b)
    return new


def _prune_tower(tower: nn.Module, scores: dict, cfg: PruneConfig, drop_layers: int):
    """-> (kept block indices, heads per kept block, mlp per kept block, pruned blocks)."""
    depth = len(tower.blocks)
    if drop_layers >= depth:
        raise ConfigError(f"cannot drop {drop_layers} of {depth} blocks; keep at least one")
    order = sorted(range(depth), key=lambda i: scores["blocks"][i])
    kept = sorted(set(range(depth)) - set(order[:drop_layers]))
    heads, mlps, blocks = [], [], []
    for i in kept:
        blk = tower.blocks[i]
        a = blk.attn
        hk = _keep(scores["heads"][i], cfg.heads)
        rows = (hk[:, None] * a.head_dim + torch.arange(a.head_dim)[None, :]).flatten()
        mk = _keep(scores["mlp"][i], cfg.mlp)
        width = blk.ln1.normalized_shape[0]
        new = Block(width, len(hk), a.head_dim, len(mk))
        new.ln1.load_state_dict(blk.ln1.state_dict())
        new.ln2.load_state_dict(blk.ln2.state_dict())
        new.attn.q, new.attn.k, new.attn.v = (_slice_linear(x, rows=rows) for x in (a.q, a.k, a.v))
        new.attn.out = _slice_linear(a.out, cols=rows)
        new.mlp.fc = _slice_linear(blk.mlp.fc, rows=mk)
        new.mlp.proj = _slice_linear(blk.mlp.proj, cols=mk)
        heads.append(len(hk))
        mlps.append(len(mk))
        blocks.append(new)
    return heads, mlps, blocks


def prune(model: CLIP, scores: dict, cfg: PruneConfig) -> CLIP:
    """A new, smaller dense CLIP: `model`'s least important heads, channels and blocks removed."""
    new_cfgs = {}
    new_blocks = {}
    for tower_name, tower, drop in (("vision", model.visual, cfg.vision_layers), ("text", model.text, cfg.text_layers)):
        heads, mlps, blocks = _prune_tower(tower, scores[tower_name], cfg, drop)
        old = getattr(model.cfg, tower_name)
        new_cfgs[tower_name] = dataclasses.replace(old, depth=len(blocks), heads=tuple(heads), mlp_dim=tuple(mlps))
        new_blocks[tower_name] = blocks
    pruned_cfg = dataclasses.replace(model.cfg, vision=new_cfgs["vision"], text=new_cfgs["text"])
    pruned = CLIP(pruned_cfg)
    # Everything outside the blocks is unchanged: copy it, then put the sliced blocks in.
    own = {k: v for k, v in model.state_dict().items() if ".blocks." not in k}
    missing, unexpected = pruned.load_state_dict(own, strict=False)
    assert not unexpected and all(".blocks." in k for k in missing), (missing, unexpected)
    pruned.visual.blocks = nn.ModuleList(new_blocks["vision"])
    pruned.text.blocks = nn.ModuleList(new_blocks["text"])
    return pruned.eval()


def magnitude_prune(model: CLIP, sparsity: float) -> dict:
    """Unstructured: zero the `sparsity` fraction of smallest-magnitude weights of every block's
    Linear layers (one global threshold per tower), in place. Returns what was done.

    This does NOT make a dense artifact smaller or faster: the zeros are stored and multiplied like
    any other value. It pays off only with a sparse kernel or a compressed container (zip, Core ML
    sparse weights), which the report says.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"magnitude sparsity must be in [0, 1), got {sparsity}")
    zeroed = total = 0
    with torch.no_grad():
        for tower in (model.visual, model.text):
            weights = [m.weight for m in tower.blocks.modules() if isinstance(m, nn.Linear)]
            if not weights or sparsity == 0.0:
                continue
            flat = torch.cat([w.abs().flatten() for w in weights])
            k = int(sparsity * flat.numel())
            if k == 0:
                continue
            threshold = flat.kthvalue(k).values
            for w in weights:
                mask = w.abs() <= threshold
                zeroed += int(mask.sum())
                w[mask] = 0.0
            total += flat.numel()
    return {"sparsity": sparsity, "zeroed": zeroed, "of": total,
            "note": "unstructured zeros do not shrink dense artifacts or speed them up; "
                    "only a sparse runtime or a compressed file benefits"}
