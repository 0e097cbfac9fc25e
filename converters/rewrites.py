"""Export-time rewrites: deep copies of a tower that compute the same function in a form a backend
handles better. The model itself stays plain, and tests check every rewrite against the original
module numerically.

`for_xnnpack(tower)`: module swaps that compute the same function with ops the ExecuTorch XNNPACK
delegate takes.

What XNNPACK (ExecuTorch 1.5.1) leaves on portable kernels in these towers, and the swap:
- `native_layer_norm` -> `MatmulLayerNorm`: mean and variance as a linear with a 1/C row.
- the `sum` of the L2 norm -> the sum of squares as a matmul with a ones column.
- `expand` of the class token to the batch -> `cls + 0 * x[:, :1]` (slice, mul, add); towers
  that read out their tokens (`pool="tokens"`) have no class token.
"""

from __future__ import annotations

import copy
import math

import numpy as np
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


# --------------------------------------------------------------------------- residual rotation
def spreading_rotation(n: int) -> torch.Tensor:
    """(n, n) float64 orthogonal Q with Q @ 1 = 1 whose rows spread every channel over all of them
    (entries ~1/sqrt(n)): M^T diag(s) M, with M a Sylvester-Hadamard matrix for the power-of-2 part
    of n Kronecker an orthonormal DCT-II for the odd part (M maps 1/sqrt(n) to e0), and fixed
    pseudo-random signs s with s0 = +1 (so 1 is kept), the randomized Hadamard of QuaRot."""
    if n < 1:
        raise ValueError(f"rotation size must be positive, got {n}")
    k = n & -n  # largest power of 2 dividing n
    m = n // k
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < k:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    i = torch.arange(m, dtype=torch.float64)
    dct = torch.cos(math.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * m)) * math.sqrt(2.0 / m)
    dct[0] /= math.sqrt(2.0)
    rot = torch.kron(h / math.sqrt(k), dct)
    signs = torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(0)).double() * 2 - 1
    signs[0] = 1.0
    return rot.T @ (signs[:, None] * rot)


def _norm_into(linear: nn.Linear, ln: nn.LayerNorm, q: torch.Tensor) -> None:
    """`linear` read `ln(x)` (of one token, or of several flattened: one weight block per token);
    make it read the affine-free LayerNorm of the rotated stream x @ q. A linear without a bias
    gains one (the folded LayerNorm bias)."""
    w = linear.weight.double()
    blocks = w.view(w.shape[0], -1, q.shape[0])
    bias = (blocks @ ln.bias.double()).sum(1)
    if linear.bias is not None:
        bias = bias + linear.bias.double()
    linear.weight.data = (blocks * ln.weight.double() @ q).reshape(w.shape).float()
    linear.bias = nn.Parameter(bias.float())


def _write_rotated(linear: nn.Linear, centre: torch.Tensor, q: torch.Tensor) -> None:
    """`linear` wrote into the stream; make it write its per-token centred output, rotated by q."""
    w, b = linear.weight.double(), linear.bias.double()
    linear.weight.data = (q.T @ centre @ w).float()
    linear.bias.data = (b @ centre @ q).float()


def rotate_residual(tower: TextEncoder) -> TextEncoder:
    """A deep copy of a text tower whose residual stream is centred per token and rotated by
    `spreading_rotation(width)` (QuaRot / SliceGPT's computational invariance), for int8.

    The trained text towers carry a few outlier channels in their residual stream (the shipped
    student: channel 18 up to |16| where the median channel peaks at 1.4). One int8 scale per
    tensor then leaves the other channels a few steps, and TF's int8 LayerNorm squares their
    deviations to zero. Rotated, every channel holds a mix of all of them, so the outliers are
    spread over the whole width: full-integer text cosine 0.9931 -> 0.9996 on the shipped student.

    Exact in float, because every reader of the stream is a LayerNorm:
    - a LayerNorm ignores a per-token constant, so every write into the stream (token and position
      embeddings, attention and MLP output projections) is centred (C = I - 11^T/n), and
    - LayerNorm without its affine commutes with an orthogonal q that keeps the ones direction
      (q 1 = 1), so each LayerNorm loses its weight and bias, folded into the linear layers that
      read it (q/k/v, the MLP input, the projection, which gains a bias), and stays a LayerNorm op.
    """
    if not isinstance(tower, TextEncoder):
        raise TypeError(f"residual rotation is for text towers, got {type(tower).__name__}")
    out = copy.deepcopy(tower).eval()
    n = out.cfg.width
    q = spreading_rotation(n)
    centre = torch.eye(n, dtype=torch.float64) - 1.0 / n
    out.tok.weight.data = (out.tok.weight.double() @ centre @ q).float()
    out.pos.data = (out.pos.double() @ centre @ q).float()

    def plain(ln: nn.LayerNorm) -> nn.LayerNorm:
        return nn.LayerNorm(n, eps=ln.eps, elementwise_affine=False)

    for blk in out.blocks:
        for linear in (blk.attn.q, blk.attn.k, blk.attn.v):
            _norm_into(linear, blk.ln1, q)
        _norm_into(blk.mlp.fc, blk.ln2, q)
        _write_rotated(blk.attn.out, centre, q)
        _write_rotated(blk.mlp.proj, centre, q)
        blk.ln1, blk.ln2 = plain(blk.ln1), plain(blk.ln2)
    _norm_into(out.proj, out.ln_final, q)  # the projection reads the flattened normed tokens
    out.ln_final = plain(out.ln_final)
    return out.eval()


def unrotate_stream(x: np.ndarray, width: int) -> np.ndarray:
    """The residual stream of `rotate_residual`'s tower, back in the original basis (centred)."""
    return (np.asarray(x, np.float64) @ spreading_rotation(width).numpy().T).astype(np.float32)
