"""A numpy interpreter of the MIL program inside a saved Core ML `.mlpackage` (runs on Linux).

Core ML cannot predict off macOS, so this module is how the SDK checks a Core ML artifact where
it is built: it reloads the saved package (the very bytes an app ships), walks the `main`
function's ops in program order and computes each with numpy.

    prog = MilProgram("image_pal4.mlpackage")          # fp16=None: follow the program's dtypes
    emb = prog(pixels)                                 # the (only) output, float32
    values = prog.run(pixels, keep_all=True)           # every op output by name (localization)

- Reloading: `ct.models.MLModel(path, skip_model_load=True)` + coremltools' milproto loader with the
  package's weights folder; weights come back as numpy arrays.
- Compression ops (`constexpr_lut_to_dense` from palettization, `constexpr_blockwise_shift_scale`,
  `constexpr_sparse_to_dense`, `constexpr_affine_dequantize`, `constexpr_cast`) are decoded to dense
  weights once, at load time, with numpy.
- Every other op type has a numpy kernel that honours the op's attributes (matmul transposes,
  slice masks and strides, conv padding / strides / dilations / groups, gelu mode, ...). An op type
  without a kernel, or a nested block (control flow), is refused at load time with an
  InterpreterUnsupported error (a ConversionError) that names it; so is an attribute value
  without a kernel (at run time); nothing is guessed.
- Precision: `fp16=None` stores every op output in the dtype the program declares (an fp16 program
  is rounded to float16 after every op, an fp32 program stays float32); `fp16=True` rounds every
  float input, constant and op output to float16 whatever the program says (emulates fp16
  compute); `fp16=False` keeps everything float32 (the weights keep whatever rounding the file
  stores). Each op computes in float32 from its (possibly float16) inputs, so fp16 emulation is
  "fp16 storage between ops, fp32 arithmetic inside one", which is how Core ML's fp16 GPU / ANE
  kernels accumulate.

coremltools is imported inside `load_program` / `MilProgram` only. On fp32 programs of the shipped
towers the interpreter matches eager PyTorch to cosine > 0.9999999 per row (measured minimum over
32 test-split inputs per tower; tests/converters/test_coreml.py asserts >= 0.99999); kernels and
tiny converted programs are checked op by op in tests/converters/test_mil.py.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mobile_sdk.errors import ConversionError, DataError

class InterpreterUnsupported(ConversionError):
    """The program uses something the interpreter does not implement (an op type, an op
    attribute value, or a program feature such as flexible input shapes). `feature` names it in
    a few words (e.g. "op prelu", "conv 3-D"); the message says where."""

    def __init__(self, message: str, feature: str):
        self.feature = feature
        super().__init__(message)

    def __reduce__(self):
        return type(self), (str(self), self.feature)


def _unsupported(op, what: str, feature: str, op_type: str | None = None) -> InterpreterUnsupported:
    """The error for an op attribute value without a kernel: `what` in the message, `feature`."""
    name = f"op {op.name!r} ({op_type or op.op_type}): " if op is not None else ""
    return InterpreterUnsupported(f"{name}{what} is not implemented by the interpreter", feature)


# MIL dtype strings (cast's `dtype` attribute, builtin_to_string) -> numpy.
_NP_DTYPES = {
    "fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
    "bool": np.bool_,
}


# ---------------------------------------------------------------------------------------------
# Helpers shared by the kernels
# ---------------------------------------------------------------------------------------------

def _f32(x):
    """Float arrays (float16 included) as float32 for arithmetic; other arrays unchanged."""
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype.kind == "f" and x.dtype != np.float32 else x


def _axes(axes, rank: int) -> tuple[int, ...] | None:
    if axes is None:
        return None
    return tuple(int(a) % rank if rank else 0 for a in np.atleast_1d(axes))


def _flag(v, default=False) -> bool:
    return default if v is None else bool(np.asarray(v).item())


def _int(v, default=None):
    return default if v is None else int(np.asarray(v).item())


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(x.astype(np.float64)).astype(np.float32)


def _spatial_pads(pad_type: str, pad, in_sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim for MIL's pad_type valid / custom / same / same_lower."""
    n = len(in_sizes)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        pad = [0] * (2 * n) if pad is None else [int(p) for p in np.asarray(pad).ravel()]
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        out = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
            eff = (k - 1) * d + 1
            total = max((math.ceil(size / s) - 1) * s + eff - size, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if pad_type == "same" else (big, small))
        return out
    raise _unsupported(None, f"MIL pad_type {pad_type!r}", f"pad_type {pad_type}")


def _windows(x: np.ndarray, kernel, strides, dilations) -> np.ndarray:
    """(N, C, H, W) padded -> read-only view (N, C, Ho, Wo, kh, kw) of the sliding windows."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    v = np.lib.stride_tricks.sliding_window_view(x, (eh, ew), axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]


# ---------------------------------------------------------------------------------------------
# Kernels: fn(a: dict of resolved inputs (defaults filled in), op) -> array or tuple of arrays
# ---------------------------------------------------------------------------------------------

KERNELS: dict[str, Callable[[dict, Any], Any]] = {}


def _kernel(*names):
    def deco(fn):
        for n in names:
            KERNELS[n] = fn
        return fn
    return deco


def _binary(fn):
    return lambda a, op: fn(_f32(a["x"]), _f32(a["y"]))


for _name, _fn in {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
    "floor_div": lambda x, y: np.floor_divide(x, y), "mod": np.mod, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}.items():
    KERNELS[_name] = _binary(_fn)


def _unary(fn):
    return lambda a, op: fn(_f32(a["x"]))


for _name, _fn in {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "round": np.round, "sign": np.sign,
    "sqrt": np.sqrt, "exp": np.exp, "exp2": np.exp2, "square": np.square, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh,
    "cosh": np.cosh, "tanh": np.tanh, "atanh": np.arctanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "erf": _erf, "logical_not": np.logical_not, "identity": lambda x: x.copy(),
    "relu": lambda x: np.maximum(x, 0).astype(x.dtype),
    "relu6": lambda x: np.clip(x, 0, 6).astype(x.dtype),
    "sigmoid": lambda x: (1.0 / (1.0 + np.exp(-x))).astype(np.float32),
    "silu": lambda x: (x / (1.0 + np.exp(-x))).astype(np.float32),
    "softplus": lambda x: np.logaddexp(0, x).astype(np.float32),
    "softsign": lambda x: x / (1 + np.abs(x)),
}.items():
    KERNELS[_name] = _unary(_fn)


@_kernel("rsqrt")
def _rsqrt(a, op):  # y = 1 / sqrt(x + epsilon)
    return 1.0 / np.sqrt(_f32(a["x"]) + np.float32(1e-12 if a.get("epsilon") is None else a["epsilon"]))


@_kernel("inverse")
def _inverse(a, op):  # y = 1 / (x + epsilon)
    return 1.0 / (_f32(a["x"]) + np.float32(1e-4 if a.get("epsilon") is None else a["epsilon"]))


@_kernel("log")
def _log(a, op):  # y = log(x + epsilon)
    return np.log(_f32(a["x"]) + np.float32(1e-45 if a.get("epsilon") is None else a["epsilon"]))


@_kernel("clip")
def _clip(a, op):
    return np.minimum(np.maximum(_f32(a["x"]), np.float32(a["alpha"])), np.float32(a["beta"]))


@_kernel("threshold")
def _threshold(a, op):
    return np.maximum(_f32(a["x"]), np.float32(a["alpha"]))


@_kernel("leaky_relu")
def _leaky_relu(a, op):
    x, alpha = _f32(a["x"]), np.float32(0.01 if a.get("alpha") is None else a["alpha"])
    return np.where(x >= 0, x, alpha * x)


@_kernel("prelu")
def _prelu(a, op):  # alpha has one value per channel (axis 1)
    x = _f32(a["x"])
    alpha = _f32(a["alpha"]).reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x >= 0, x, alpha * x)


@_kernel("elu")
def _elu(a, op):
    x, alpha = _f32(a["x"]), np.float32(1.0 if a.get("alpha") is None else a["alpha"])
    return np.where(x > 0, x, alpha * (np.exp(x) - 1))


@_kernel("sigmoid_hard")
def _sigmoid_hard(a, op):
    alpha = np.float32(0.2 if a.get("alpha") is None else a["alpha"])
    beta = np.float32(0.5 if a.get("beta") is None else a["beta"])
    return np.clip(alpha * _f32(a["x"]) + beta, 0, 1)


@_kernel("gelu")
def _gelu(a, op):
    x, mode = _f32(a["x"]), a.get("mode") or "EXACT"
    if mode == "EXACT":
        return x * np.float32(0.5) * (np.float32(1.0) + _erf(x * np.float32(math.sqrt(0.5))))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(np.float32(math.sqrt(2 / math.pi)) * (x + np.float32(0.044715) * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-np.float32(1.702) * x))
    raise _unsupported(op, f"mode {mode!r}", f"gelu mode {mode}", "gelu")


@_kernel("softmax")
def _softmax(a, op):
    x, axis = _f32(a["x"]), _int(a.get("axis"), -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@_kernel("linear")
def _linear(a, op):
    y = np.matmul(_f32(a["x"]), _f32(a["weight"]).T)
    return y if a.get("bias") is None else y + _f32(a["bias"])


@_kernel("matmul")
def _matmul(a, op):
    x, y = _f32(a["x"]), _f32(a["y"])
    if _flag(a.get("transpose_x")) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if _flag(a.get("transpose_y")) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


@_kernel("einsum")
def _einsum(a, op):
    return np.einsum(a["equation"], *[_f32(v) for v in a["values"]])


@_kernel("conv")
def _conv(a, op):
    x, w = _f32(a["x"]), _f32(a["weight"])
    nsp = x.ndim - 2
    strides = [int(s) for s in (a.get("strides") if a.get("strides") is not None else [1] * nsp)]
    dil = [int(d) for d in (a.get("dilations") if a.get("dilations") is not None else [1] * nsp)]
    groups = _int(a.get("groups"), 1)
    pads = _spatial_pads(a.get("pad_type") or "valid", a.get("pad"), x.shape[2:], w.shape[2:], strides, dil)
    if nsp == 1:  # (N, C, L) as (N, C, 1, L)
        x, w = x[:, :, None], w[:, :, None]
        strides, dil, pads = [1] + strides, [1] + dil, [(0, 0)] + pads
    elif nsp != 2:
        raise _unsupported(op, f"{nsp}-D convolution", f"conv {nsp}-D", "conv")
    x = np.pad(x, [(0, 0), (0, 0)] + pads)
    n, cin = x.shape[:2]
    cout, cin_g, kh, kw = w.shape
    if cin != cin_g * groups:
        raise ConversionError(f"op {op.name!r} (conv): {cin} input channels do not match weight {w.shape} x {groups} groups")
    win = _windows(x, (kh, kw), strides, dil)  # (N, C, Ho, Wo, kh, kw)
    ho, wo = win.shape[2:4]
    outs = []
    cout_g = cout // groups
    for g in range(groups):
        patches = win[:, g * cin_g:(g + 1) * cin_g].transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, cin_g * kh * kw)
        wg = w[g * cout_g:(g + 1) * cout_g].reshape(cout_g, -1)
        outs.append(patches @ wg.T)  # (N, Ho, Wo, cout_g)
    y = np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2)
    if a.get("bias") is not None:
        y = y + _f32(a["bias"]).reshape(1, -1, 1, 1)
    return y[:, :, 0] if nsp == 1 else y


def _spatial_windows(x: np.ndarray, kernel, strides) -> np.ndarray:
    """(N, C, *D) -> read-only view (N, C, *D_out, *kernel) of the strided windows, any rank."""
    nsp = len(kernel)
    v = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=tuple(range(2, 2 + nsp)))
    return v[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)]


def _pool(a, op, reduce: str):
    x = _f32(a["x"])
    nsp = x.ndim - 2
    kernel = [int(k) for k in a["kernel_sizes"]]
    strides = [int(s) for s in (a.get("strides") if a.get("strides") is not None else [1] * nsp)]
    pads = _spatial_pads(a.get("pad_type") or "valid", a.get("pad"), x.shape[2:], kernel, strides, [1] * nsp)
    extra = [0] * nsp  # ceil_mode: cells after the right padding that only complete the last window
    if _flag(a.get("ceil_mode")):
        for i, (size, k, st, (lo, hi)) in enumerate(zip(x.shape[2:], kernel, strides, pads)):
            out = -(-(size + lo + hi - k) // st) + 1
            if lo + hi > 0 and (out - 1) * st >= size + lo:  # the last window would start in the padding
                out -= 1
            extra[i] = max(0, (out - 1) * st + k - (size + lo + hi))
    fill = -np.inf if reduce == "max" else 0.0
    widths = [(0, 0), (0, 0)] + [(lo, hi + e) for (lo, hi), e in zip(pads, extra)]
    win = _spatial_windows(np.pad(x, widths, constant_values=fill), kernel, strides)
    red = tuple(range(-nsp, 0))
    if reduce == "max":
        return win.max(axis=red)
    if reduce == "l2":
        return np.sqrt(np.square(win).sum(axis=red))
    # avg: divide by the window's cells inside the input (exclude_padding_from_average) or inside
    # input + padding; the ceil_mode cells never count.
    inside = np.zeros((1, 1) + tuple(sz + lo + hi + e for sz, (lo, hi), e in zip(x.shape[2:], pads, extra)), np.float32)
    if _flag(a.get("exclude_padding_from_average")):
        inside[(0, 0) + tuple(slice(lo, lo + sz) for sz, (lo, _) in zip(x.shape[2:], pads))] = 1
    else:
        inside[(0, 0) + tuple(slice(0, sz + lo + hi) for sz, (lo, hi) in zip(x.shape[2:], pads))] = 1
    return win.sum(axis=red) / _spatial_windows(inside, kernel, strides).sum(axis=red)


KERNELS["max_pool"] = lambda a, op: _pool(a, op, "max")
KERNELS["avg_pool"] = lambda a, op: _pool(a, op, "avg")
KERNELS["l2_pool"] = lambda a, op: _pool(a, op, "l2")


@_kernel("conv_transpose")
def _conv_transpose(a, op):
    """The gradient of conv: every input cell adds weight x value into a (stride-spread) output
    window; the full output is then cropped by the padding / pad_type / output_shape."""
    x, w = _f32(a["x"]), _f32(a["weight"])  # w: (C_in, C_out / groups, *K)
    nsp = x.ndim - 2
    din, kern = x.shape[2:], w.shape[2:]
    strides = [int(v) for v in (a.get("strides") if a.get("strides") is not None else [1] * nsp)]
    dil = [int(v) for v in (a.get("dilations") if a.get("dilations") is not None else [1] * nsp)]
    groups = _int(a.get("groups"), 1)
    n, cin = x.shape[:2]
    cin_g, cout_g = cin // groups, w.shape[1]
    full = [(d - 1) * st + (k - 1) * dl + 1 for d, st, k, dl in zip(din, strides, kern, dil)]
    y = np.zeros((n, groups, cout_g, *full), np.float32)
    xg = x.reshape(n, groups, cin_g, *din)
    wg = w.reshape(groups, cin_g, cout_g, *kern)
    for pos in np.ndindex(*kern):
        contrib = np.einsum("ngc...,gco->ngo...", xg, wg[(slice(None), slice(None), slice(None)) + pos])
        y[(slice(None),) * 3 + tuple(slice(p * dl, p * dl + (d - 1) * st + 1, st)
                                     for p, dl, d, st in zip(pos, dil, din, strides))] += contrib
    y = y.reshape(n, groups * cout_g, *full)
    pad_type = a.get("pad_type") or "valid"
    pad = [0] * (2 * nsp) if a.get("pad") is None else [int(v) for v in np.asarray(a["pad"]).ravel()]
    target = None if a.get("output_shape") is None else [int(v) for v in np.asarray(a["output_shape"]).ravel()][2:]
    index, widths = [slice(None), slice(None)], [(0, 0), (0, 0)]
    for i in range(nsp):
        if pad_type == "same":
            size = target[i] if target else din[i] * strides[i]
            lo = max(full[i] - size, 0) // 2
        elif pad_type == "custom":
            lo, size = pad[2 * i], target[i] if target else full[i] - pad[2 * i] - pad[2 * i + 1]
        elif pad_type == "valid":
            lo, size = 0, target[i] if target else full[i]
        else:
            raise _unsupported(op, f"pad_type {pad_type!r}", f"conv_transpose pad_type {pad_type}")
        index.append(slice(lo, lo + size))
        widths.append((0, max(0, lo + size - full[i])))  # output_shape past the full output: zeros
    y = np.pad(y, widths)[tuple(index)]
    if a.get("bias") is not None:
        y = y + _f32(a["bias"]).reshape((1, -1) + (1,) * nsp)
    return y


@_kernel("layer_norm")
def _layer_norm(a, op):
    x = _f32(a["x"])
    axes = _axes(a.get("axes"), x.ndim) or tuple(range(x.ndim))
    eps = np.float32(1e-5 if a.get("epsilon") is None else a["epsilon"])
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    # gamma / beta have the shape x.shape[axes] (the normalized axes, in order, whichever they
    # are): put them back on those axes, with 1 on the others, before they broadcast.
    shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if a.get("gamma") is not None:
        y = y * _f32(a["gamma"]).reshape(shape)
    if a.get("beta") is not None:
        y = y + _f32(a["beta"]).reshape(shape)
    return y


@_kernel("batch_norm")
def _batch_norm(a, op):
    x = _f32(a["x"])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    eps = np.float32(1e-5 if a.get("epsilon") is None else a["epsilon"])
    y = (x - _f32(a["mean"]).reshape(shape)) / np.sqrt(_f32(a["variance"]).reshape(shape) + eps)
    if a.get("gamma") is not None:
        y = y * _f32(a["gamma"]).reshape(shape)
    if a.get("beta") is not None:
        y = y + _f32(a["beta"]).reshape(shape)
    return y


@_kernel("instance_norm")
def _instance_norm(a, op):
    x = _f32(a["x"])
    axes = tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    eps = np.float32(1e-5 if a.get("epsilon") is None else a["epsilon"])
    mean = x.mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(np.square(x - mean).mean(axis=axes, keepdims=True) + eps)
    if a.get("gamma") is not None:
        y = y * _f32(a["gamma"]).reshape(shape)
    if a.get("beta") is not None:
        y = y + _f32(a["beta"]).reshape(shape)
    return y


@_kernel("l2_norm")
def _l2_norm(a, op):  # x / sqrt(sum(x^2) + eps) over the last 3 dims (leading dims are batch)
    x = _f32(a["x"])
    axes = tuple(range(max(0, x.ndim - 3), x.ndim))
    eps = np.float32(1e-6 if a.get("epsilon") is None else a["epsilon"])
    return x / np.sqrt(np.square(x).sum(axis=axes, keepdims=True) + eps)


def _reduce(fn):
    def k(a, op):
        x = _f32(a["x"])
        axes = _axes(a.get("axes"), x.ndim)
        return fn(x, axes, _flag(a.get("keep_dims")))
    return k


for _name, _fn in {
    "reduce_sum": lambda x, ax, kd: x.sum(axis=ax, keepdims=kd),
    "reduce_mean": lambda x, ax, kd: x.mean(axis=ax, keepdims=kd),
    "reduce_max": lambda x, ax, kd: x.max(axis=ax, keepdims=kd),
    "reduce_min": lambda x, ax, kd: x.min(axis=ax, keepdims=kd),
    "reduce_prod": lambda x, ax, kd: x.prod(axis=ax, keepdims=kd),
    "reduce_sum_square": lambda x, ax, kd: np.square(x).sum(axis=ax, keepdims=kd),
    "reduce_l1_norm": lambda x, ax, kd: np.abs(x).sum(axis=ax, keepdims=kd),
    "reduce_l2_norm": lambda x, ax, kd: np.sqrt(np.square(x).sum(axis=ax, keepdims=kd)),
    "reduce_log_sum": lambda x, ax, kd: np.log(x.sum(axis=ax, keepdims=kd)),
    "reduce_log_sum_exp": lambda x, ax, kd: np.log(np.exp(x).sum(axis=ax, keepdims=kd)),
}.items():
    KERNELS[_name] = _reduce(_fn)


def _arg_reduce(fn):
    def k(a, op):
        x = _f32(a["x"])
        axis = _int(a.get("axis"), -1) % x.ndim
        y = fn(x, axis=axis).astype(np.int32)
        return np.expand_dims(y, axis) if _flag(a.get("keep_dims")) else y
    return k


KERNELS["reduce_argmax"] = _arg_reduce(np.argmax)
KERNELS["reduce_argmin"] = _arg_reduce(np.argmin)


@_kernel("reshape")
def _reshape(a, op):
    x, shape = a["x"], [int(s) for s in np.asarray(a["shape"]).ravel()]
    # iOS17 rule: each 0 copies the input dim aligned from the right (1 if out of range).
    for i, s in enumerate(shape):
        if s == 0:
            j = x.ndim - (len(shape) - i)
            shape[i] = x.shape[j] if 0 <= j < x.ndim else 1
    return np.reshape(x, shape)


@_kernel("transpose")
def _transpose(a, op):
    return np.transpose(a["x"], [int(p) for p in a["perm"]])


@_kernel("concat")
def _concat(a, op):
    values, axis = [np.asarray(v) for v in a["values"]], _int(a["axis"])
    if _flag(a.get("interleave")):
        axis %= values[0].ndim
        stacked = np.stack(values, axis=axis + 1)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)


@_kernel("stack")
def _stack(a, op):
    return np.stack([np.asarray(v) for v in a["values"]], axis=_int(a["axis"]))


@_kernel("split")
def _split(a, op):
    x, axis = a["x"], _int(a["axis"])
    if a.get("split_sizes") is not None:
        cuts = np.cumsum([int(s) for s in a["split_sizes"]])[:-1]
        return tuple(np.split(x, cuts, axis=axis))
    return tuple(np.split(x, _int(a["num_splits"]), axis=axis))


@_kernel("squeeze")
def _squeeze(a, op):
    x = a["x"]
    axes = _axes(a.get("axes"), x.ndim)
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=axes)


@_kernel("expand_dims")
def _expand_dims(a, op):
    x = a["x"]
    out_rank = x.ndim + len(np.atleast_1d(a["axes"]))
    return np.expand_dims(x, tuple(sorted(int(ax) % out_rank for ax in np.atleast_1d(a["axes"]))))


def _slice_index(a, r: int) -> tuple:
    """The numpy index of slice_by_index / slice_update's begin / end / stride / masks."""
    begin, end = np.asarray(a["begin"]).ravel(), np.asarray(a["end"]).ravel()
    stride = np.ones(r, int) if a.get("stride") is None else np.asarray(a["stride"]).ravel()
    bmask = np.zeros(r, bool) if a.get("begin_mask") is None else np.asarray(a["begin_mask"]).ravel()
    emask = np.zeros(r, bool) if a.get("end_mask") is None else np.asarray(a["end_mask"]).ravel()
    smask = np.zeros(r, bool) if a.get("squeeze_mask") is None else np.asarray(a["squeeze_mask"]).ravel()
    index = []
    for i in range(r):
        if smask[i]:
            index.append(int(begin[i]))
        else:
            index.append(slice(None if bmask[i] else int(begin[i]), None if emask[i] else int(end[i]), int(stride[i])))
    return tuple(index)


@_kernel("slice_by_index")
def _slice_by_index(a, op):
    x = a["x"]
    return np.asarray(x[_slice_index(a, x.ndim)])


@_kernel("slice_update")
def _slice_update(a, op):
    y = np.array(a["x"], copy=True)
    index = _slice_index(a, y.ndim)
    y[index] = np.reshape(a["update"], np.shape(y[index]))
    return y


@_kernel("slice_by_size")
def _slice_by_size(a, op):
    x = a["x"]
    begin, size = np.asarray(a["begin"]).ravel(), np.asarray(a["size"]).ravel()
    index = tuple(slice(int(b), None if int(s) == -1 else int(b) + int(s)) for b, s in zip(begin, size))
    return x[index]


@_kernel("tile")
def _tile(a, op):
    return np.tile(a["x"], [int(r) for r in a["reps"]])


@_kernel("pad")
def _pad(a, op):
    x, pad = a["x"], [int(p) for p in np.asarray(a["pad"]).ravel()]
    n = len(pad) // 2
    widths = [(0, 0)] * (x.ndim - n) + [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    mode = a.get("mode") or "constant"
    if mode == "constant":
        return np.pad(x, widths, constant_values=0 if a.get("constant_val") is None else a["constant_val"])
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    if mode == "replicate":
        return np.pad(x, widths, mode="edge")
    raise _unsupported(op, f"mode {mode!r}", f"pad mode {mode}", "pad")


def _gather_batched(x, idx, axis, batch_dims):
    if batch_dims == 0:
        return np.take(x, idx, axis=axis)
    return np.stack([_gather_batched(x[i], idx[i], axis - 1, batch_dims - 1) for i in range(x.shape[0])])


@_kernel("gather")
def _gather(a, op):
    x, idx = a["x"], np.asarray(a["indices"]).astype(np.int64)
    axis = _int(a.get("axis"), 0) % x.ndim
    batch_dims = _int(a.get("batch_dims"), 0)
    if (idx >= x.shape[axis]).any() or (idx < -x.shape[axis]).any():
        raise DataError(f"op {op.name!r} (gather): index out of range [{-x.shape[axis]}, {x.shape[axis]}) "
                        f"(min {idx.min()}, max {idx.max()})")
    return _gather_batched(x, idx, axis, batch_dims)


@_kernel("gather_along_axis")
def _gather_along_axis(a, op):
    x = a["x"]
    return np.take_along_axis(x, np.asarray(a["indices"]).astype(np.int64), axis=_int(a.get("axis"), 0))


@_kernel("gather_nd")
def _gather_nd(a, op):
    x, idx = a["x"], np.asarray(a["indices"]).astype(np.int64)
    batch_dims = _int(a.get("batch_dims"), 0)

    def nd(x, idx, b):
        if b:
            return np.stack([nd(x[i], idx[i], b - 1) for i in range(x.shape[0])])
        return x[tuple(np.moveaxis(idx, -1, 0))]

    return nd(x, idx, batch_dims)


@_kernel("select")
def _select(a, op):
    return np.where(np.asarray(a["cond"]).astype(bool), a["a"], a["b"])


@_kernel("cast")
def _cast(a, op):
    dtype = a["dtype"]
    if dtype not in _NP_DTYPES:
        raise _unsupported(op, f"dtype {dtype!r}", f"cast to {dtype}", "cast")
    x = np.asarray(a["x"])
    if np.dtype(_NP_DTYPES[dtype]).kind in "iu" and x.dtype.kind == "f":
        x = np.trunc(x)
    return x.astype(_NP_DTYPES[dtype])


@_kernel("shape")
def _shape(a, op):
    return np.asarray(np.shape(a["x"]), np.int32)


@_kernel("fill")
def _fill(a, op):
    return np.full([int(s) for s in np.asarray(a["shape"]).ravel()], 0.0 if a.get("value") is None else a["value"])


@_kernel("range_1d")
def _range_1d(a, op):
    return np.arange(a["start"], a["end"], a["step"])


@_kernel("cumsum")
def _cumsum(a, op):
    x, axis = _f32(a["x"]), _int(a.get("axis"), 0)
    if _flag(a.get("reverse")):
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis)
    if _flag(a.get("exclusive")):
        y = y - x
    return np.flip(y, axis) if _flag(a.get("reverse")) else y


# -- ops found refused by coremltools' op tests: activations, tensor re-arrangements, scatters

@_kernel("clamped_relu")
def _clamped_relu(a, op):  # x >= 0: min(beta, x); else min(beta, alpha * x)
    x = _f32(a["x"])
    return np.minimum(np.float32(a["beta"]), np.where(x >= 0, x, np.float32(a["alpha"]) * x))


@_kernel("scaled_tanh")
def _scaled_tanh(a, op):
    return np.float32(a["alpha"]) * np.tanh(np.float32(a["beta"]) * _f32(a["x"]))


@_kernel("softplus_parametric")
def _softplus_parametric(a, op):  # alpha_c * log(1 + exp(beta_c * x)), per channel (axis 1)
    x = _f32(a["x"])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return _f32(a["alpha"]).reshape(shape) * np.logaddexp(0, _f32(a["beta"]).reshape(shape) * x)


@_kernel("thresholded_relu")
def _thresholded_relu(a, op):
    x = _f32(a["x"])
    return np.where(x >= np.float32(1.0 if a.get("alpha") is None else a["alpha"]), x, 0).astype(np.float32)


@_kernel("linear_activation")
def _linear_activation(a, op):
    return np.float32(a["alpha"]) * _f32(a["x"]) + np.float32(0.0 if a.get("beta") is None else a["beta"])


@_kernel("local_response_norm")
def _local_response_norm(a, op):  # over channels (axis 1): x / (k + alpha / size * sum x^2)^beta
    x, size = _f32(a["x"]), _int(a["size"])
    alpha = np.float32(1e-4 if a.get("alpha") is None else a["alpha"])
    beta = np.float32(0.75 if a.get("beta") is None else a["beta"])
    kk = np.float32(1.0 if a.get("k") is None else a["k"])
    sq = np.pad(np.square(x), [(0, 0), (size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    c = x.shape[1]
    acc = sum(sq[:, i:i + c] for i in range(size))
    return x / np.power(kk + alpha / np.float32(size) * acc, beta)


@_kernel("reshape_like")
def _reshape_like(a, op):
    shape = []
    for ref, b, e, m in zip(a["ref_tensors"], a["begins"], a["ends"], a["end_masks"]):
        dims = np.shape(ref)
        shape += list(dims[int(b):] if _flag(m) else dims[int(b):int(e)])
    return np.reshape(a["x"], shape)


@_kernel("flatten2d")
def _flatten2d(a, op):
    x = a["x"]
    axis = _int(a.get("axis"), 1)
    axis = axis + x.ndim if axis < 0 else axis  # in [0, rank]: (3,) with axis -1 -> (1, 3), 1 -> (3, 1)
    return np.reshape(x, (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))))


@_kernel("reverse")
def _reverse(a, op):
    x = a["x"]
    axes = _axes(a.get("axes"), x.ndim)
    return np.flip(x, axis=axes)


@_kernel("reverse_sequence")
def _reverse_sequence(a, op):
    x = np.array(a["x"], copy=True)
    seq, batch = _int(a.get("seq_axis"), 0) % x.ndim, _int(a.get("batch_axis"), 0) % x.ndim
    src = np.asarray(a["x"])
    for b, n in enumerate(np.asarray(a["lengths"]).ravel()):
        n = int(n)
        idx = [slice(None)] * x.ndim
        idx[batch], idx[seq] = b, slice(0, n)
        sub = src[tuple(idx)]
        x[tuple(idx)] = np.flip(sub, axis=seq - (1 if batch < seq else 0))
    return x


def _sorted_indices(x, axis, ascending):
    # stable: equal values keep their order (the lower index first), both directions
    return np.argsort(x if ascending else -x, axis=axis, kind="stable")


@_kernel("topk")
def _topk(a, op):
    x = a["x"]
    axis, kk = _int(a.get("axis"), -1) % x.ndim, _int(a.get("k"), 1)
    idx = _sorted_indices(_f32(x), axis, _flag(a.get("ascending")))
    idx = np.take(idx, np.arange(min(kk, x.shape[axis])), axis=axis)
    values = np.take_along_axis(x, idx, axis=axis)
    return values if not _flag(a.get("return_indices"), True) else (values, idx.astype(np.int32))


@_kernel("argsort")
def _argsort(a, op):
    x = a["x"]
    return _sorted_indices(_f32(x), _int(a.get("axis"), -1) % x.ndim, _flag(a.get("ascending"))).astype(np.int32)


@_kernel("band_part")
def _band_part(a, op):
    x = a["x"]
    lower, upper = _int(a.get("lower"), -1), _int(a.get("upper"), -1)
    m, n = x.shape[-2:]
    d = np.arange(m)[:, None] - np.arange(n)[None, :]  # i - j
    keep = ((lower < 0) | (d <= lower)) & ((upper < 0) | (-d <= upper))
    return np.where(keep, x, np.zeros((), x.dtype))


@_kernel("one_hot")
def _one_hot(a, op):
    idx = np.asarray(a["indices"]).astype(np.int64)
    depth = _int(a["one_hot_vector_size"])
    on = 1 if a.get("on_value") is None else a["on_value"]
    off = 0 if a.get("off_value") is None else a["off_value"]
    axis = _int(a.get("axis"), -1) % (idx.ndim + 1)
    hot = np.expand_dims(idx, axis) == np.arange(depth).reshape([-1 if i == axis else 1 for i in range(idx.ndim + 1)])
    return np.where(hot, on, off)


@_kernel("fill_like")
def _fill_like(a, op):
    return np.full(np.shape(a["ref_tensor"]), 0.0 if a.get("value") is None else a["value"])


@_kernel("non_zero")
def _non_zero(a, op):
    return np.argwhere(np.asarray(a["x"]) != 0).astype(np.int32)


@_kernel("pixel_shuffle")
def _pixel_shuffle(a, op):  # (N, C r^2, H, W) -> (N, C, H r, W r), as torch.nn.PixelShuffle
    x, r = a["x"], _int(a["upscale_factor"])
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


@_kernel("pixel_unshuffle")
def _pixel_unshuffle(a, op):
    x, r = a["x"], _int(a["downscale_factor"])
    n, c, h, w = x.shape
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)


@_kernel("depth_to_space")
def _depth_to_space(a, op):  # TF / ONNX DCR order
    x, b = a["x"], _int(a["block_size"])
    n, c, h, w = x.shape
    return x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // (b * b), h * b, w * b)


@_kernel("space_to_depth")
def _space_to_depth(a, op):
    x, b = a["x"], _int(a["block_size"])
    n, c, h, w = x.shape
    return x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, h // b, w // b)


@_kernel("sliding_windows")
def _sliding_windows(a, op):  # windows of `size` along axis, every `stride`: axis -> (n_windows, size)
    x = a["x"]
    axis, size, stride = _int(a["axis"]) % x.ndim, _int(a["size"]), _int(a.get("stride"), 1)
    v = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)  # (..., n, ..., size)
    v = np.take(v, np.arange(0, v.shape[axis], stride), axis=axis)
    return np.ascontiguousarray(np.moveaxis(v, -1, axis + 1))


_SCATTER = {"update": None, "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
            "max": np.maximum, "min": np.minimum}


def _scatter_into(op, data, index, updates, mode):
    out = np.array(data, copy=True)
    fn = _SCATTER.get(mode or "update", False)
    if fn is False:
        raise _unsupported(op, f"mode {mode!r}", f"{op.op_type} mode {mode}")
    if fn is None:
        out[index] = updates  # repeated indices: the last update wins
    else:
        fn.at(out, index, np.asarray(updates).astype(out.dtype))
    return out


def _wrap(idx, n, op=None):
    idx = np.asarray(idx).astype(np.int64)
    if idx.size and ((idx >= n).any() or (idx < -n).any()):
        raise DataError(f"op {getattr(op, 'name', '?')!r} ({getattr(op, 'op_type', '?')}): index out of range "
                        f"[{-n}, {n}) (min {idx.min()}, max {idx.max()})")
    return np.where(idx < 0, idx + n, idx)


@_kernel("scatter")
def _scatter(a, op):
    data = np.asarray(a["data"])
    axis = _int(a.get("axis"), 0) % data.ndim
    idx = _wrap(a["indices"], data.shape[axis], op)
    return _scatter_into(op, data, (slice(None),) * axis + (idx,), a["updates"], a.get("mode"))


@_kernel("scatter_along_axis")
def _scatter_along_axis(a, op):
    data, updates = np.asarray(a["data"]), np.asarray(a["updates"])
    axis = _int(a.get("axis"), 0) % data.ndim
    grid = list(np.indices(updates.shape, sparse=True))
    grid[axis] = _wrap(a["indices"], data.shape[axis], op)
    return _scatter_into(op, data, tuple(grid), updates, a.get("mode"))


@_kernel("scatter_nd")
def _scatter_nd(a, op):
    data = np.asarray(a["data"])
    idx = np.asarray(a["indices"]).astype(np.int64)
    k = idx.shape[-1]
    idx = np.stack([_wrap(idx[..., i], data.shape[i], op) for i in range(k)])
    return _scatter_into(op, data, tuple(idx), a["updates"], a.get("mode"))


@_kernel("scaled_dot_product_attention")
def _sdpa(a, op):
    q, k, v = _f32(a["query"]), _f32(a["key"]), _f32(a["value"])
    s = np.matmul(q, np.swapaxes(k, -1, -2)) / np.float32(math.sqrt(q.shape[-1]))
    mask = a.get("attn_mask")
    if mask is not None:
        mask = np.asarray(mask)
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + _f32(mask)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return np.matmul(e / e.sum(axis=-1, keepdims=True), v)


# ---------------------------------------------------------------------------------------------
# Constexpr (compression) ops: decoded to dense weights at load time
# ---------------------------------------------------------------------------------------------

def _lut_to_dense(indices: np.ndarray, lut: np.ndarray, vector_axis=None) -> np.ndarray:
    """iOS18 constexpr_lut_to_dense: lut has shape indices-blocks + (NUM_PALETTES, VECTOR_SIZE);
    block b of the indices reads palette lut[b]."""
    indices = np.asarray(indices).astype(np.int64)
    lut = np.asarray(lut)
    k = indices.ndim
    if lut.ndim == 1:  # iOS16 form: one palette for the whole tensor
        return lut[indices]
    vec = lut.shape[-1]
    if vec > 1:
        vector_axis = int(vector_axis) % k
        indices = np.swapaxes(indices, -1, vector_axis)
        lut = np.swapaxes(lut, k - 1, vector_axis)  # the block dims follow the indices' axes
    # Expand the per-block palettes to one palette per index element, then pick.
    reps = [indices.shape[i] // lut.shape[i] for i in range(k)]
    full = lut
    for i, r in enumerate(reps):
        if r > 1:
            full = np.repeat(full, r, axis=i)
    picked = np.take_along_axis(full, indices[..., None, None], axis=k)[..., 0, :]  # (..., vec)
    out = picked.reshape(indices.shape[:-1] + (indices.shape[-1] * vec,))
    return np.swapaxes(out, -1, vector_axis) if vec > 1 else out


def _constexpr(op, a: dict) -> np.ndarray:
    t = op.op_type
    if t == "constexpr_lut_to_dense":
        if "shape" in a and a.get("shape") is not None:  # iOS16: packed uint8 indices + shape
            return op.materialized_val_inference()
        return _lut_to_dense(a["indices"], a["lut"], a.get("vector_axis"))
    if t == "constexpr_blockwise_shift_scale":
        data, scale = np.asarray(a["data"]), np.asarray(a["scale"])
        offset = None if a.get("offset") is None else np.asarray(a["offset"])
        out = data.astype(np.float32)
        for i in range(data.ndim):
            r = data.shape[i] // scale.shape[i]
            if r > 1:
                scale = np.repeat(scale, r, axis=i)
                offset = None if offset is None else np.repeat(offset, r, axis=i)
        if offset is not None:
            out = out - offset.astype(np.float32)
        return (out * scale.astype(np.float32)).astype(scale.dtype)
    if t == "constexpr_affine_dequantize":
        q, zp, scale = np.asarray(a["quantized_data"]), np.asarray(a["zero_point"]), np.asarray(a["scale"])
        axis = _int(a["axis"]) % q.ndim
        shape = [1] * q.ndim
        shape[axis] = -1
        zp = zp.reshape(shape) if zp.ndim else zp
        scale = scale.reshape(shape) if scale.ndim else scale
        return ((q.astype(np.float32) - zp.astype(np.float32)) * scale.astype(np.float32)).astype(scale.dtype)
    if t == "constexpr_sparse_to_dense":
        if a.get("shape") is not None:  # iOS16 form: packed bitmask + shape
            return op.materialized_val_inference()
        mask = np.asarray(a["mask"])
        out = np.zeros(mask.shape, np.asarray(a["nonzero_data"]).dtype)
        out[mask != 0] = a["nonzero_data"]
        return out
    if t == "constexpr_cast":
        return np.asarray(a["source_val"]).astype(_NP_DTYPES[a["output_dtype"]])
    # Any other compile-time op of coremltools (e.g. constexpr_lut_to_sparse): a constant that
    # coremltools itself can decode.
    return op.materialized_val_inference()


# ---------------------------------------------------------------------------------------------
# The program
# ---------------------------------------------------------------------------------------------

class _Const:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _get(env: dict, ref):
    return ref.value if isinstance(ref, _Const) else env[ref]


@dataclass(frozen=True)
class OpInfo:
    name: str  # the op's name in the program
    op_type: str
    outputs: tuple[str, ...]  # names of its output values (the keys of run(keep_all=True))


def _np_dtype(var) -> np.dtype | None:
    from coremltools.converters.mil.mil import types

    try:
        dt = var.dtype
        s = types.builtin_to_string(dt)
    except Exception:
        return None
    return np.dtype(_NP_DTYPES[s]) if s in _NP_DTYPES else None


def _blas_limiter(threads: int | None):
    """A context factory that caps BLAS threads while the program runs. Batch-1 matmuls this small
    gain nothing from threads, and on a busy machine OpenBLAS's spinning threads made a run 5-10x
    slower (measured: image tower 48 ms with 1 thread vs 210-800 ms with 2 on 2 busy cores)."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return contextlib.nullcontext
    controller = ThreadpoolController()
    return lambda: controller.limit(limits=threads, user_api="blas")


def load_program(path: str | Path):
    """The MIL Program of a saved `.mlpackage` (weights read from the package), and its spec."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    path = Path(path)
    if not path.exists():
        raise ConversionError(f"Core ML package not found: {path}")
    try:
        m = ct.models.MLModel(str(path), skip_model_load=True)
        spec = m.get_spec()
        if spec.WhichOneof("Type") != "mlProgram":
            raise ConversionError(f"{path} holds a {spec.WhichOneof('Type')!r} model, not an ML Program")
        prog = load(spec, spec.specificationVersion, file_weights_dir=m.weights_dir)
    except ConversionError:
        raise
    except NotImplementedError as e:  # coremltools' own loader, e.g. variadic (flexible-rank) shapes
        raise InterpreterUnsupported(f"cannot load {path}: coremltools' MIL loader does not implement "
                                     f"this program ({e})", f"loading: {e}") from e
    except Exception as e:
        raise ConversionError(f"cannot load {path} as a Core ML ML Program ({type(e).__name__}: {e}); "
                              f"is it an .mlpackage written by coremltools and intact?") from e
    return prog, spec


class MilProgram:
    """The `main` function of a saved ML Program, run with numpy (see the module docstring)."""

    def __init__(self, path: str | Path, fp16: bool | None = None, threads: int | None = 1):
        self.path, self.fp16 = Path(path), fp16
        self._limit = _blas_limiter(threads)
        prog, self.spec = load_program(self.path)
        if "main" not in prog.functions:
            raise ConversionError(f"{self.path}: the ML Program has no 'main' function "
                                  f"(functions: {sorted(prog.functions)})")
        fn = prog.functions["main"]
        self.inputs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for name, var in fn.inputs.items():
            if any(not isinstance(s, (int, np.integer)) for s in var.shape):
                raise InterpreterUnsupported(
                    f"{self.path}: input {name!r} has a flexible shape {tuple(str(s) for s in var.shape)} "
                    f"(ct.RangeDim / EnumeratedShapes); the interpreter runs fixed input shapes only: "
                    f"convert with fixed shapes to check the program", "flexible input shapes")
            shape = tuple(int(s) for s in var.shape)
            self.inputs[name] = (shape, _np_dtype(var))
        self.outputs = [v.name for v in fn.outputs]
        self.op_types = Counter(op.op_type for op in fn.operations)
        nested = sorted({op.op_type for op in fn.operations if getattr(op, "blocks", None)})
        missing = sorted({t for t in self.op_types if t != "const" and not t.startswith("constexpr_")
                          and t not in KERNELS} | set(nested))
        if missing:
            raise InterpreterUnsupported(
                f"{self.path}: the MIL interpreter does not implement op type(s) {', '.join(missing)} "
                f"(counts: {', '.join(f'{t} x{self.op_types[t]}' for t in missing)})",
                "op " + ", ".join(missing))
        self.consts: dict[str, np.ndarray] = {}
        self._known = set(self.inputs)
        self.palettized: dict[str, int] = {}  # weight (constexpr_lut_to_dense output) -> nbits
        self._encoded: set[str] = set()  # constants read by constexpr ops (LUTs, indices, scales)
        self.ops: list[OpInfo] = []
        self._steps: list[tuple[Any, Callable, dict, list[tuple[str, np.dtype | None]]]] = []
        for op in fn.operations:
            out_names = tuple(v.name for v in op.outputs)
            if op.op_type == "const" or op.op_type.startswith("constexpr_"):
                try:
                    val = op.outputs[0].val if op.op_type == "const" else _constexpr(op, self._args(op))
                except ConversionError:
                    raise
                except Exception as e:
                    raise ConversionError(f"{self.path}: cannot decode {op.op_type} {op.name!r} "
                                          f"({type(e).__name__}: {e})") from e
                self.consts[out_names[0]] = self._store(val, _np_dtype(op.outputs[0]))
                self._known.add(out_names[0])
                if op.op_type == "constexpr_lut_to_dense":
                    lut = np.shape(self._args(op)["lut"])
                    self.palettized[out_names[0]] = int(round(math.log2(lut[-2] if len(lut) > 1 else lut[0])))
                if op.op_type != "const":
                    self.ops.append(OpInfo(op.name, op.op_type, out_names))
                    self._encoded.update(v.name for v in op.inputs.values() if hasattr(v, "name"))
                continue
            self.ops.append(OpInfo(op.name, op.op_type, out_names))
            refs = {k: [self._ref(x) for x in v] if isinstance(v, (list, tuple)) else self._ref(v)
                    for k, v in op.inputs.items()}
            self._known.update(out_names)
            self._steps.append((op, KERNELS[op.op_type], self._defaults(op), refs,
                                [(v.name, _np_dtype(v)) for v in op.outputs]))

    # -- helpers ------------------------------------------------------------------------------
    def _store(self, val, dtype: np.dtype | None):
        """A value as it is kept between ops: in the dtype the program declares for it (an int32
        op output is int32 whatever dtype the kernel computed in), floats under the precision
        policy: kept as float32 arrays, "fp16" values rounded to the float16 grid first (same
        numbers as a float16 array, without converting weights again at every use)."""
        if isinstance(val, str) or val is None:
            return val
        arr = np.asarray(val)
        if dtype is not None and dtype.kind in "iub":  # the declared integer / bool dtype, always
            # (float -> int truncates toward zero, as cast does: int32 real_div is 7 / 2 = 3)
            return arr if arr.dtype == dtype else arr.astype(dtype)
        if arr.dtype.kind == "f" or (dtype is not None and dtype.kind == "f"):
            half = self.fp16 is True or (self.fp16 is None and (arr.dtype == np.float16 if dtype is None
                                                                else dtype == np.float16))
            return arr.astype(np.float16).astype(np.float32) if half else arr.astype(np.float32, copy=False)
        return arr

    @staticmethod
    def _defaults(op) -> dict:
        try:
            d = dict(op.default_inputs().items())
        except Exception:
            d = {}
        return {k: (v.val if hasattr(v, "val") else v) for k, v in d.items()}

    def _ref(self, var):
        """How a step reads one input: the name of a constant, a program input or an earlier
        op's output (checked here, so a malformed program fails at load, not mid-run)."""
        if var.name not in self._known:
            if var.val is None:
                raise ConversionError(f"{self.path}: value {var.name!r} is used before it is defined")
            return _Const(self._store(var.val, _np_dtype(var)))  # an inline constant
        return var.name

    def _args(self, op) -> dict:
        a = self._defaults(op)
        for k, v in op.inputs.items():
            a[k] = [self.consts.get(x.name, x.val) for x in v] if isinstance(v, (list, tuple)) else \
                self.consts.get(v.name, v.val)
        return a

    def _check_inputs(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, (shape, dtype) in self.inputs.items():
            if name not in feeds:
                raise DataError(f"missing input {name!r}; the program takes {sorted(self.inputs)}")
            x = np.asarray(feeds[name])
            if tuple(x.shape) != shape:
                raise DataError(f"input {name}: expected shape {shape}, got {tuple(x.shape)}")
            if dtype is not None and x.dtype.kind != dtype.kind:
                raise DataError(f"input {name}: expected dtype {dtype}, got {x.dtype}")
            out[name] = self._store(x.astype(dtype) if dtype is not None else x, dtype)
        return out

    # -- running ------------------------------------------------------------------------------
    def run(self, inputs: np.ndarray | dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
        """Run the program. `inputs`: an array (single-input programs) or {name: array}. Returns
        {output name: array}, or with keep_all every op output (and the inputs) by value name, in
        program order."""
        if not isinstance(inputs, dict):
            if len(self.inputs) != 1:
                raise DataError(f"the program takes {len(self.inputs)} inputs {sorted(self.inputs)}; pass a dict")
            inputs = {next(iter(self.inputs)): inputs}
        env: dict[str, Any] = dict(self.consts)
        feeds = self._check_inputs(inputs)
        env.update(feeds)
        kept: dict[str, np.ndarray] = dict(feeds) if keep_all else {}
        with self._limit():
            self._run(env, kept, keep_all)
        if keep_all:
            return kept
        return {name: env[name] for name in self.outputs}

    def _run(self, env: dict, kept: dict, keep_all: bool) -> None:
        for op, kernel, defaults, refs, outs in self._steps:
            a = dict(defaults)
            for k, r in refs.items():
                a[k] = [_get(env, x) for x in r] if isinstance(r, list) else _get(env, r)
            try:
                with np.errstate(all="ignore"):  # inf / NaN are reported by the caller, not warned
                    res = kernel(a, op)
            except (ConversionError, DataError):
                raise
            except Exception as e:
                raise ConversionError(f"MIL interpreter: op {op.name!r} ({op.op_type}) failed: "
                                      f"{type(e).__name__}: {e}") from e
            res = res if isinstance(res, tuple) else (res,)
            for (name, dtype), val in zip(outs, res):
                env[name] = self._store(val, dtype)
                if keep_all:
                    kept[name] = env[name]

    def __call__(self, inputs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """The first output as float32 (what the app reads)."""
        return np.asarray(self.run(inputs)[self.outputs[0]], np.float32)

    def first_nonfinite(self, inputs) -> OpInfo | None:
        """The first op (in program order) whose output holds NaN or Inf on `inputs`, or None."""
        values = self.run(inputs, keep_all=True)
        for info in self.ops:
            for name in info.outputs:
                v = values.get(name, self.consts.get(name))
                if v is not None and np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all():
                    return info
        return None

    def weight_names(self) -> list[str]:
        """Float constants with more than one element that are stored dense (not palettized)."""
        return [n for n, v in self.consts.items()
                if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size > 1
                and n not in self.palettized and n not in self._encoded]
