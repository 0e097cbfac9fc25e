"""Export-time rewrites for XNNPACK: explicit module swaps that compute the same function with ops
the delegate takes. The model itself stays plain; `for_xnnpack(tower)` returns a rewritten deep
copy, and tests check every swap against the original module numerically.

What XNNPACK (ExecuTorch 1.5.1) leaves on portable kernels in these towers, and the swap:
- `native_layer_norm` -> `MatmulLayerNorm`: mean and variance as a linear with a 1/C row.
- the `sum` of the L2 norm -> the sum of squares as a matmul with a ones column.
- `expand` of the class token to the batch -> `cls + 0 * x[:, :1]` (slice, mul, add); towers
  that read out their tokens (`pool="tokens"`) have no class token.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from mobile_sdk.models.clip import L2_EPS, ImageEncoder, TextEncoder


class MatmulLayerNorm(nn.Module):
    """LayerNorm over the last dim, with the two means written as (x @ 1/C)."""

    def __init__(self, ln: nn.LayerNorm):
        super().__init__()
        (c,) = ln.normalized_shape
        self.weight, self.bias, self.eps = ln.weight, ln.bias, ln.eps
        # (1, C) weight of a bias-free linear: a 3-D `x @ (C, 1)` matmul exports as a broadcast
        # bmm whose expand_copy XNNPACK leaves on portable kernels; linear exports as a plain mm.
        self.register_buffer("avg", torch.full((1, c), 1.0 / c), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - F.linear(x, self.avg)
        return d * torch.rsqrt(F.linear(d * d, self.avg) + self.eps) * self.weight + self.bias


def _l2_normalize_mm(x: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt((x * x) @ ones + L2_EPS)


class _ImageForExport(ImageEncoder):
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels * self.pixel_scale + self.pixel_shift
        x = self.patch(self.stem(x)).flatten(2).transpose(1, 2)
        if self.cfg.pool == "cls":
            cls = self.cls + 0.0 * x[:, :1]  # the batch comes from x: no expand
            x = torch.cat([cls, x], dim=1)
        x = self.ln_pre(x + self.pos)
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_post(self.readout(x)).flatten(1)
        return _l2_normalize_mm(self.proj(x), self.ones)


class _TextForExport(TextEncoder):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_final(self.readout(x)).flatten(1)
        return _l2_normalize_mm(self.proj(x), self.ones)


def for_xnnpack(tower: nn.Module) -> nn.Module:
    """A rewritten deep copy of an ImageEncoder or TextEncoder (same weights, same function)."""
    if isinstance(tower, ImageEncoder):
        cls = _ImageForExport
    elif isinstance(tower, TextEncoder):
        cls = _TextForExport
    else:
        raise TypeError(f"no XNNPACK rewrite for {type(tower).__name__}")
    out = copy.deepcopy(tower)
    out.__class__ = cls
    for name, mod in list(out.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, nn.LayerNorm):
                setattr(mod, child_name, MatmulLayerNorm(child))
    out.register_buffer("ones", torch.ones(out.proj.out_features, 1), persistent=False)
    return out.eval()
