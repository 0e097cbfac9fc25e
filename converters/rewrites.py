"""Export-time rewrites: deep copies of a tower that compute the same function in a form a backend
handles better. The model itself stays plain, and tests check every rewrite against the original
module numerically.

`for_xnnpack(tower)`: module swaps that compute the same function with ops the ExecuTorch XNNPACK
delegate takes.

What XNNPACK (ExecuTorch 1.5.1) leaves on portable kernels in these towers, and the swap:
- `native_layer_norm` -> `MatmulLayerNorm`: mean and variance as a linear with a 1/C row.
- the `sum` of the L2 norm -> the sum of squares as a matmul with a ones column (built-in towers)
  or each row's product with itself (`_L2NormMM`).
- `expand` of the class token to the batch -> `cls + 0 * x[:, :1]` (slice, mul, add); towers
  that read out their tokens (`pool="tokens"`) have no class token.
- a patchify `Conv2d` (kernel == stride, no padding) -> `PatchLinear`: the patches cut out by
  reshape / permute and one Linear. XNNPACK's convolution in this ExecuTorch wheel runs at half the
  speed of its GEMM (the built-in student's 4x4 patch conv: 0.18 ms as a conv, measured against
  0.07 ms in ONNX Runtime), and as a Linear the layer also takes the int8-dynamic and 4-bit recipes,
  which quantize Linear layers only (ViT towers' patch embeddings are their largest conv).
  A pointwise conv (1x1, stride 1: FastViT's MLPs) stays a conv unless `pointwise_linear` (the
  4-bit recipe, Linears only): XNNPACK runs it as a GEMM in its own NHWC layout, while as a Linear
  it needs a transpose on each side (MobileCLIP2-S0's image tower: 10 ms of transposes against
  ONNX Runtime's 0.8); int8_dynamic quantizes it as a conv.
- three q / k / v Linears on one input -> `FusedQKV`, one Linear and three column slices: in the
  int8-dynamic and 4-bit recipes the three split the delegate after them, one island per layer.
- timm attention (MobileCLIP's FastViT) -> its explicit form (`fused_attn = False`): SDPA's
  decomposition (a safe softmax: any / eq / where) stays on portable kernels.
- a stride-1 depthwise conv of more than 25 taps (FastViT's 7x7) -> `BandedDepthwise`, row bands of
  at most 25 taps summed: XNNPACK's depthwise kernels stop at 25 taps and a 7x7 one ran on its
  general convolution at 18x ONNX Runtime's time (MobileCLIP2-S0 image tower: 2.45x faster as bands).
  LiteRT's XNNPACK has the same limit: `band_depthwise` applies this swap alone for its export.
The remaining ops XNNPACK leaves out are rewritten on the edge graph by
`converters.executorch.xnnpack_pass`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mobile_sdk.models.clip import L2_EPS, ImageEncoder, TextEncoder
from mobile_sdk.models.clip import Attention as BuiltinAttention


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


def _swap(root: nn.Module, kind, make) -> int:
    """Replace every submodule under `root` that is of type `kind` (or for which `kind(module)` is
    true, when `kind` is a predicate) by `make(module)`; -> how many."""
    match = kind if not isinstance(kind, type) else (lambda m: isinstance(m, kind))
    n = 0
    for mod in list(root.modules()):
        for child_name, child in list(mod.named_children()):
            if match(child):
                setattr(mod, child_name, make(child))
                n += 1
    return n


class _L2NormMM(nn.Module):
    """L2Norm with the sum of squares as each row's dot product with itself, a (1, C) @ (C, 1) bmm
    (XNNPACK takes it; a ones column made at run time would be a portable `full` and `mm`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, 1, x.shape[-1])
        ss = torch.bmm(rows, rows.transpose(1, 2)).reshape(*x.shape[:-1], 1)
        return x * torch.rsqrt(ss + L2_EPS)


class PatchLinear(nn.Module):
    """A patchify Conv2d (kernel == stride, no padding, no dilation, one group) as reshape /
    permute + Linear over each patch's (C, kh, kw) values: the same function, NCHW in and out."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.k = tuple(conv.kernel_size)
        self.out_channels = conv.out_channels
        w = conv.weight.detach()
        self.linear = _linear(w.reshape(w.shape[0], -1), None if conv.bias is None else conv.bias.detach())

    @property
    def weight(self) -> torch.Tensor:  # towers read the patch conv's weight dtype (Hugging Face CLIP)
        return self.linear.weight

    @staticmethod
    def applies(m: nn.Module) -> bool:
        return (type(m) is nn.Conv2d and tuple(m.kernel_size) == tuple(m.stride) and m.groups == 1
                and tuple(m.dilation) == (1, 1) and m.padding in ((0, 0), 0, "valid")
                and m.padding_mode == "zeros")

    @staticmethod
    def applies_patchify(m: nn.Module) -> bool:
        """A patchify conv that is not pointwise (1x1, stride 1)."""
        return PatchLinear.applies(m) and tuple(m.kernel_size) != (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        kh, kw = self.k
        ho, wo = h // kh, w // kw
        if (ho * kh, wo * kw) != (h, w):  # a strided conv drops the remainder rows / columns
            x = x[:, :, :ho * kh, :wo * kw]
        patches = x.reshape(b, c, ho, kh, wo, kw).permute(0, 2, 4, 1, 3, 5).reshape(b, ho * wo, c * kh * kw)
        return self.linear(patches).transpose(1, 2).reshape(b, self.out_channels, ho, wo)


def _fused_qkv(q: nn.Linear, k: nn.Linear, v: nn.Linear) -> nn.Linear:
    """One Linear computing [q(x), k(x), v(x)] (bias zero where a projection has none)."""
    bias = [lin.bias.detach() if lin.bias is not None else torch.zeros(lin.out_features) for lin in (q, k, v)]
    has_bias = any(lin.bias is not None for lin in (q, k, v))
    return _linear(torch.cat([q.weight.detach(), k.weight.detach(), v.weight.detach()]),
                   torch.cat(bias) if has_bias else None)


class FusedQKV(nn.Module):
    """Self-attention's three input projections as one Linear and three column slices. In
    XNNPACK's int8-dynamic and 4-bit recipes, three Linears reading one input each quantize it
    again and split the delegate after them (one extra XNNPACK island per layer); one Linear of 3x
    the width quantizes it once, in one GEMM."""

    def __init__(self, q: nn.Linear, k: nn.Linear, v: nn.Linear):
        super().__init__()
        self.sizes = (q.out_features, k.out_features, v.out_features)
        self.qkv = _fused_qkv(q, k, v)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = self.qkv(x)
        a, b, _ = self.sizes
        return y[..., :a], y[..., a:a + b], y[..., a + b:]


class _FusedBuiltinAttention(BuiltinAttention):
    """The built-in towers' `Attention` with `FusedQKV` in place of q / k / v (same function)."""

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.proj_in(x)


def _fuse_attention(m: nn.Module) -> nn.Module:
    """A shallow copy of an attention module with one `FusedQKV` named `proj_in` for its q / k / v.
    The built-in towers' `Attention` (always self-attention) drops its three Linears;
    `ExplicitAttention` keeps them for cross-attention (SigLIP's attention-pooling head asks with a
    learned probe), and a lowered program holds only the weights it uses."""
    fused = copy.copy(m)
    fused._modules = dict(m._modules)
    if not isinstance(m, ExplicitAttention):
        for name in ("q", "k", "v"):
            del fused._modules[name]
        fused.__class__ = _FusedBuiltinAttention
    fused.proj_in = FusedQKV(m.q, m.k, m.v)
    return fused


class BandedDepthwise(nn.Module):
    """A stride-1 depthwise Conv2d of more than 25 taps (FastViT's 7x7) as row bands of at most 25
    taps each (7x7: 3x7 + 3x7 + 1x7), their outputs cropped and summed: the same function. XNNPACK
    (ExecuTorch 1.5.1) has depthwise kernels up to 25 taps; a 7x7 one falls back to its general
    convolution (IGEMM), which ran MobileCLIP2-S0's image tower at 159 ms of depthwise time against
    ONNX Runtime's 9 ms (benchmarks/fastvit_profile.py)."""

    MAX_TAPS = 25

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        kh, kw = conv.kernel_size
        rows = self.MAX_TAPS // kw
        self.kh, self.ph = kh, conv.padding[0]
        self.starts = list(range(0, kh, rows))
        w = conv.weight.detach()
        self.bands = nn.ModuleList()
        for r0 in self.starts:
            k = min(rows, kh - r0)
            band = nn.Conv2d(conv.in_channels, conv.out_channels, (k, kw), padding=conv.padding, groups=conv.groups,
                             bias=conv.bias is not None and r0 == 0)
            band.weight.data = w[:, :, r0:r0 + k].clone()
            if band.bias is not None:
                band.bias.data = conv.bias.detach().clone()
            self.bands.append(band)

    @classmethod
    def applies(cls, m: nn.Module) -> bool:
        return (type(m) is nn.Conv2d and m.groups > 1 and m.groups == m.in_channels == m.out_channels
                and tuple(m.stride) == (1, 1) and tuple(m.dilation) == (1, 1) and isinstance(m.padding, tuple)
                and m.padding_mode == "zeros" and m.kernel_size[0] * m.kernel_size[1] > cls.MAX_TAPS
                and m.kernel_size[1] <= cls.MAX_TAPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2] + 2 * self.ph - self.kh + 1  # the full kernel's output rows
        out = None
        for r0, band in zip(self.starts, self.bands):  # band output row r0 + y holds rows r0.. of output y
            part = band(x)[:, :, r0:r0 + h]
            out = part if out is None else out + part
        return out


def for_xnnpack(tower: nn.Module, patch_linear: bool = True, pointwise_linear: bool = True) -> nn.Module:
    """A rewritten deep copy of a tower (same weights, same function) in ops the XNNPACK delegate
    takes: the built-in towers' readout and L2 norm, every LayerNorm as `MatmulLayerNorm`, every
    patchify conv as `PatchLinear` (unless `patch_linear` is False; 1x1 stride-1 convs only with
    `pointwise_linear`), every large depthwise conv as
    `BandedDepthwise`, and for any other tower `export_form`'s swaps first (attention, masks)."""
    from mobile_sdk.models.adapter import L2Norm

    if isinstance(tower, (ImageEncoder, TextEncoder)):
        out = copy.deepcopy(tower)
        out.__class__ = _ImageForExport if isinstance(tower, ImageEncoder) else _TextForExport
        out.register_buffer("ones", torch.ones(out.proj.out_features, 1), persistent=False)
    else:
        out = export_form(tower, copy_always=True)
        _swap(out, L2Norm, lambda m: _L2NormMM())
    for m in out.modules():  # timm attention (MobileCLIP's FastViT): its explicit form, not SDPA, whose
        if getattr(m, "fused_attn", None) is True:  # decomposition (a safe softmax) XNNPACK leaves out
            m.fused_attn = False
    _swap(out, nn.LayerNorm, MatmulLayerNorm)
    _swap(out, lambda m: type(m) in (BuiltinAttention, ExplicitAttention, HfExplicitAttention), _fuse_attention)
    if patch_linear:
        _swap(out, PatchLinear.applies if pointwise_linear else PatchLinear.applies_patchify, PatchLinear)
    _swap(out, BandedDepthwise.applies, BandedDepthwise)
    return out.eval()


def band_depthwise(tower: nn.Module) -> nn.Module:
    """The tower with every stride-1 depthwise conv of more than 25 taps as `BandedDepthwise` (a deep
    copy), or the tower itself when it has none. XNNPACK's depthwise kernels stop at 25 taps in
    LiteRT too: FastViT's 7x7 ones otherwise run on its general convolution."""
    if not any(BandedDepthwise.applies(m) for m in tower.modules()):
        return tower
    out = copy.deepcopy(tower)
    _swap(out, BandedDepthwise.applies, BandedDepthwise)
    return out


# --------------------------------------------------------------------------- any tower
# A masked attention logit is not -inf: int8 calibration gives a tensor holding -inf or -3.4e38 a
# scale of ~1e36 (attention collapses), -inf becomes NaN in Core ML's fp16, and the k-means
# palettizer takes an -inf buffer for a weight. Nor a fixed finite value: a -1e4 mask passes every
# float check yet gives int8 cosine 0.80, and a fixed -30 leaks wherever a row's kept logits are
# themselves below -13. The masked logit is *replaced* by (the row's smallest kept logit, or 0) -
# MASK_VALUE: at least 30 below every kept logit (exp(-30) ~ 1e-13, the same softmax as -inf's in
# float), and the int8 range of the logits grows by 30 at most.
MASK_VALUE = 30.0
MASKED = -1e4  # an additive mask entry at or below this hides its key


class ExplicitAttention(nn.Module):
    """Attention as CLIP towers use it, written as separate q / k / v linears and 3-D bmm over
    (B * heads, T, head_dim), as the built-in towers are: no fused in-proj chunk, no SDPA
    decomposition, so XNNPACK, onnx2tf and Core ML each take it whole. A static attention mask
    found in the tower (`export_form`) is applied by replacement (see MASK_VALUE). This class takes
    `nn.MultiheadAttention`'s call; `HfExplicitAttention` takes Hugging Face's."""

    def __init__(self, q: nn.Linear, k: nn.Linear, v: nn.Linear, out: nn.Linear, heads: int, scale: float,
                 mask: torch.Tensor | None = None, batch_first: bool = True):
        super().__init__()
        self.q, self.k, self.v, self.out = q, k, v, out
        self.heads, self.head_dim, self.scale, self.batch_first = heads, q.out_features // heads, scale, batch_first
        self.static_mask = mask is not None
        if mask is not None:
            keep = (mask > MASKED).float()
            self.register_buffer("keep", keep, persistent=False)
            self.register_buffer("drop", 1.0 - keep, persistent=False)

    @classmethod
    def from_mha(cls, mha: nn.MultiheadAttention, mask: torch.Tensor | None = None) -> "ExplicitAttention":
        e, h = mha.embed_dim, mha.num_heads
        if mha._qkv_same_embed_dim:
            ws = mha.in_proj_weight.detach().chunk(3)
        else:
            ws = tuple(w.detach() for w in (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight))
        bs = mha.in_proj_bias.detach().chunk(3) if mha.in_proj_bias is not None else (None,) * 3
        q, k, v = (_linear(w, b) for w, b in zip(ws, bs))
        out = _linear(mha.out_proj.weight.detach(), mha.out_proj.bias.detach() if mha.out_proj.bias is not None else None)
        return cls(q, k, v, out, h, (e // h) ** -0.5, mask, mha.batch_first)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape  # (B, T, H*D) -> (B*H, T, D)
        return x.reshape(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3).reshape(b * self.heads, t, self.head_dim)

    def attend(self, query, key, value, attn_mask=None) -> torch.Tensor:
        """(B, Tq, E), (B, Tk, E), (B, Tk, E) -> (B, Tq, E)."""
        b, t, _ = query.shape
        fused = self._modules.get("proj_in")  # for_xnnpack's one projection of q / k / v
        if fused is not None and query is key and key is value:
            q, k, v = fused(query)
        else:  # as written, and cross-attention
            q, k, v = self.q(query), self.k(key), self.v(value)
        q = self._split(q) * self.scale
        k, v = self._split(k), self._split(v)
        s = torch.bmm(q, k.transpose(1, 2))  # (B*H, Tq, Tk)
        if attn_mask is not None:
            if self.static_mask and tuple(attn_mask.shape[-2:]) == tuple(self.keep.shape):
                kept = s * self.keep
                low = kept.amin(dim=-1, keepdim=True) - MASK_VALUE
                s = kept + low * self.drop
            else:  # a mask computed at run time: keep it finite
                s = s + attn_mask.clamp(min=-MASK_VALUE).reshape(-1, *attn_mask.shape[-2:])
        y = torch.bmm(s.softmax(dim=-1), v)
        y = y.reshape(b, self.heads, t, self.head_dim).permute(0, 2, 1, 3).reshape(b, t, self.heads * self.head_dim)
        return self.out(y)

    def forward(self, query, key=None, value=None, key_padding_mask=None, need_weights=False, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if key_padding_mask is not None:
            raise NotImplementedError("ExplicitAttention: key_padding_mask is not supported (CLIP towers do not use it)")
        key = query if key is None else key
        value = key if value is None else value
        if not self.batch_first:  # (T, B, E) -> (B, T, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        y = self.attend(query, key, value, attn_mask)
        return (y if self.batch_first else y.transpose(0, 1)), None


class HfExplicitAttention(ExplicitAttention):
    """A Hugging Face self-attention module (q_proj / k_proj / v_proj / out_proj, as CLIP and SigLIP
    have) as `ExplicitAttention`, with Hugging Face's call: (hidden_states, attention_mask)."""

    @classmethod
    def from_hf(cls, m: nn.Module, mask: torch.Tensor | None = None) -> "HfExplicitAttention":
        return cls(m.q_proj, m.k_proj, m.v_proj, m.out_proj, int(m.num_heads), float(m.scale), mask)

    def forward(self, hidden_states, attention_mask=None, **kwargs):
        return self.attend(hidden_states, hidden_states, hidden_states, attention_mask), None


def _linear(w: torch.Tensor, b: torch.Tensor | None) -> nn.Linear:
    lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    lin.weight.data = w.clone()
    if b is not None:
        lin.bias.data = b.clone()
    return lin


def _is_hf_attention(m: nn.Module) -> bool:
    return all(isinstance(getattr(m, n, None), nn.Linear) for n in ("q_proj", "k_proj", "v_proj", "out_proj")) and \
        hasattr(m, "num_heads") and hasattr(m, "scale") and type(m).__name__.endswith("Attention")


def _mask_buffers(tower: nn.Module) -> dict[str, torch.Tensor]:
    """Float buffers of `tower` that are additive attention masks: square, with entries that hide
    (-inf, finfo.min, or <= -1e4) and entries that keep (0)."""
    out = {}
    for name, buf in tower.named_buffers():
        if buf.is_floating_point() and buf.dim() == 2 and buf.shape[0] == buf.shape[1] and buf.numel() > 1:
            hides = buf <= MASKED
            if hides.any() and (buf == 0).any() and bool(((buf == 0) | hides).all()):
                out[name] = buf
    return out


def export_form(tower: nn.Module, copy_always: bool = False) -> nn.Module:
    """The tower in a form every backend converts faithfully, keyed on what it contains:
    `nn.MultiheadAttention` and Hugging Face attention modules -> `ExplicitAttention`; additive
    attention masks (-inf or huge negative buffers) -> finite, applied by replacement (see MASK_VALUE). A tower holding none of
    these is returned as it is (the built-in towers), unless `copy_always`. Tests check every swap
    against the original numerically."""
    masks = _mask_buffers(tower)
    has_attn = any(isinstance(m, nn.MultiheadAttention) or _is_hf_attention(m) for m in tower.modules())
    if not masks and not has_attn:
        return copy.deepcopy(tower).eval() if copy_always else tower
    out = copy.deepcopy(tower).eval()
    mask = next(iter(masks.values())) if len(masks) == 1 else None
    _swap(out, nn.MultiheadAttention, lambda m: ExplicitAttention.from_mha(m, mask))
    _swap(out, _is_hf_attention, lambda m: HfExplicitAttention.from_hf(m, mask))
    for name in masks:
        owner, _, leaf = name.rpartition(".")
        mod = out.get_submodule(owner) if owner else out
        buf = getattr(mod, leaf)
        mod._buffers[leaf] = torch.where(buf <= MASKED, torch.full_like(buf, -MASK_VALUE), buf)
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
    if linear.bias is None:
        linear.bias = nn.Parameter(torch.zeros(linear.out_features))
    w, b = linear.weight.double(), linear.bias.double()
    linear.weight.data = (q.T @ centre @ w).float()
    linear.bias.data = (b @ centre @ q).float()


class NotRotatable(ValueError):
    """The tower is not a pre-norm transformer whose stream `rotate_residual` can rotate."""


def rotate_residual(tower: nn.Module) -> nn.Module:
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

    Any other pre-norm text tower (open_clip, Hugging Face CLIP / SigLIP, after `export_form`) is
    rotated the same way from the structure it contains (`_rotate_any`); a tower that does not
    have that structure raises NotRotatable.
    """
    if isinstance(tower, ImageEncoder):
        raise NotRotatable("residual rotation is for text towers, not the built-in image tower (rotating it changed "
                           "nothing measurable and costs one more FULLY_CONNECTED)")
    if not isinstance(tower, TextEncoder):
        return _rotate_any(tower)
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


_LN_PAIRS = (("ln_1", "ln_2"), ("ln1", "ln2"), ("layer_norm1", "layer_norm2"))


def _prenorm_blocks(root: nn.Module) -> list[dict]:
    """The pre-norm blocks of a tower (x = x + out(attn(ln1 x)); x = x + mlp_out(act(mlp_in(ln2 x)))):
    modules holding two LayerNorms by the usual names, an `ExplicitAttention` and an `mlp` child."""
    blocks = []
    for name, m in root.named_modules():
        for a, b in _LN_PAIRS:
            ln1, ln2 = getattr(m, a, None), getattr(m, b, None)
            if not (isinstance(ln1, nn.LayerNorm) and isinstance(ln2, nn.LayerNorm)):
                continue
            attn = next((c for c in m.children() if isinstance(c, ExplicitAttention)), None)
            mlp = getattr(m, "mlp", None)
            lins = [c for c in mlp.modules() if isinstance(c, nn.Linear)] if isinstance(mlp, nn.Module) else []
            if attn is None or len(lins) < 2:
                raise NotRotatable(f"block {name!r} is not attention + MLP around two LayerNorms")
            if not isinstance(getattr(m, "ln_attn", nn.Identity()), nn.Identity):
                raise NotRotatable(f"block {name!r} normalizes its attention output (ln_attn)")
            blocks.append({"module": m, "ln": (a, b), "attn": attn, "mlp_in": lins[0], "mlp_out": lins[-1]})
    return blocks


def _fold_layer_scale(m: nn.Module, attr: str, linear: nn.Linear) -> None:
    """LayerScale (x * gamma) after a linear that writes into the stream: folded into the linear."""
    ls = getattr(m, attr, None)
    if ls is None or isinstance(ls, nn.Identity):
        return
    gamma = getattr(ls, "gamma", None)
    if gamma is None:
        raise NotRotatable(f"{type(ls).__name__} is not a LayerScale")
    with torch.no_grad():
        linear.weight.mul_(gamma.detach()[:, None])
        if linear.bias is not None:
            linear.bias.mul_(gamma.detach())
    setattr(m, attr, nn.Identity())


def _rotate_any(tower: nn.Module) -> nn.Module:
    """`rotate_residual` for any pre-norm text tower, found by structure: token / position
    embeddings (the stream's first writes), pre-norm blocks, one final LayerNorm outside the blocks
    and one linear reading it (the projection, through any token selection, which is linear). The
    rotated copy is checked against the tower on random ids."""
    out = export_form(tower, copy_always=True)
    blocks = _prenorm_blocks(out)
    if not blocks:
        raise NotRotatable(f"{type(tower).__name__} has no pre-norm transformer blocks")
    n = blocks[0]["module"].get_submodule(blocks[0]["ln"][0]).normalized_shape[0]
    inside = {id(x) for b in blocks for x in b["module"].modules()}
    outside = [(name, m) for name, m in out.named_modules() if id(m) not in inside]
    norms = [(name, m) for name, m in outside if isinstance(m, nn.LayerNorm)]
    readers = [m for _, m in outside if isinstance(m, nn.Linear)]
    embeds = [m for _, m in outside if isinstance(m, nn.Embedding) and m.embedding_dim == n]
    params = [p for _, m in outside for pn, p in m.named_parameters(recurse=False)
              if not isinstance(m, (nn.Linear, nn.LayerNorm, nn.Embedding)) and p.shape[-1] == n]
    if len(norms) != 1 or len(readers) != 1 or not embeds or readers[0].in_features % n:
        raise NotRotatable(f"expected one final LayerNorm and one projection outside the blocks and a token "
                           f"embedding of width {n}; found {len(norms)} norms, {len(readers)} linears, "
                           f"{len(embeds)} embeddings")
    q = spreading_rotation(n)
    centre = torch.eye(n, dtype=torch.float64) - 1.0 / n
    with torch.no_grad():
        for e in embeds:
            e.weight.data = (e.weight.double() @ centre @ q).float()
        for p in params:
            p.data = (p.double() @ centre @ q).float()

    def plain(parent: nn.Module, attr: str) -> None:
        ln = getattr(parent, attr)
        setattr(parent, attr, nn.LayerNorm(n, eps=ln.eps, elementwise_affine=False))

    for b in blocks:
        m, (a1, a2), attn = b["module"], b["ln"], b["attn"]
        _fold_layer_scale(m, "ls_1", attn.out)
        _fold_layer_scale(m, "ls_2", b["mlp_out"])
        for linear in (attn.q, attn.k, attn.v):
            _norm_into(linear, getattr(m, a1), q)
        _norm_into(b["mlp_in"], getattr(m, a2), q)
        _write_rotated(attn.out, centre, q)
        _write_rotated(b["mlp_out"], centre, q)
        plain(m, a1)
        plain(m, a2)
    final_name, final = norms[0]
    _norm_into(readers[0], final, q)
    owner, _, attr = final_name.rpartition(".")
    plain(out.get_submodule(owner) if owner else out, attr)
    out.eval()
    vocab = embeds[0].num_embeddings
    length = next((p.shape[-2] for p in params), None) or next(
        (e.num_embeddings for e in embeds[1:]), None) or 16
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (4, int(length)), generator=gen, dtype=torch.int32)
    from mobile_sdk.models.adapter import EotReadout
    readout = next((m for m in tower.modules() if isinstance(m, EotReadout)), None)
    if readout is not None:  # every real text has an end-of-text token (the readout's row is zero without one)
        pos = torch.randint(1, int(length), (len(ids),), generator=gen)
        ids[torch.arange(len(ids)), pos] = int(readout.is_eot.weight.argmax())
    with torch.no_grad():
        gap = float((out(ids) - tower(ids)).abs().max())
    if not gap < 1e-4:
        raise NotRotatable(f"the rotated {type(tower).__name__} differs from the original by {gap:.3g}")
    return out


def unrotate_stream(x: np.ndarray, width: int) -> np.ndarray:
    """The residual stream of `rotate_residual`'s tower, back in the original basis (centred)."""
    return (np.asarray(x, np.float64) @ spreading_rotation(width).numpy().T).astype(np.float32)
