"""Calibrated mixed-bit palettization, on the torch side, before Core ML conversion.

coremltools' own palettizer (`pal2` ... `pal8`) clusters every weight by itself, at one bit width,
rounding each value to its nearest palette entry. On the shipped student that costs too much at 4
bits (pal4: 97.2% zero-shot agreement, under the 98% bar) and 6 bits is the smallest that passes.
Three facts measured on that student make a smaller passing artifact possible:

- Weights differ by orders of magnitude in how much their rounding moves the embedding: at 3 bits
  the second 3x3 stem conv alone (9k weights) drops the image cosine to 0.963, while the 262k-weight
  readout projection costs 0.999. One bit width for all wastes bits on the tolerant weights and
  starves the sensitive ones.
- The token-embedding table is read one row per token, so its rounding is not averaged away.
- Rounding to the nearest palette entry ignores the data; rounding column by column while the
  columns not yet rounded absorb the error (GPTQ: Frantar et al., 2022, with the layer's input
  second moments from calibration data) keeps each layer's output close for the same palette.

`palettize_mixed(module, inputs, mean_bits)` therefore, on the calibration inputs:
1. collects each Linear / Conv2d layer's input second-moment matrix H = E[x x^T];
2. for every weight coremltools would palettize (float, >= 2 dims, >= `MIN_SIZE` elements) and every
   bit width in `LEVELS`: a k-means palette of the weight's values (weighted by diag(H) per input
   column where H exists), fp16-exact, then GPTQ rounding onto it (plain nearest rounding for
   weights without H: embedding tables, position embeddings, grouped convs);
3. measures each candidate's sensitivity: the relative squared error of the tower's output on the
   calibration inputs with only that weight rounded;
4. allocates bit widths greedily by error saved per bit spent, from 3 bits everywhere up to a mean
   of `mean_bits` bits per palettized weight;
5. writes the chosen rounded weights into `module` (in place), and measures the rounded tower's
   cosine with eager on the same inputs (`cosine_mean` / `cosine_min` in the plan); under
   `WARN_COSINE` a warning names the weight that costs the most at its planned bits and the mean
   that would lift it one level. That happens when one weight is most of the tower (a 49408-token
   table on a narrow text tower: at a mean of 3.5 bits it cannot leave 3 bits), before the
   conversion and the parity check that would refuse the artifact.

Each rounded weight then holds at most 2^nbits distinct fp16 values, so coremltools' palettizer,
given them as the palette (`coreml.unique_lut`), stores exactly those values: the Core ML package computes what the
rounded torch module computes (up to fp16 arithmetic), and the converter's verify step measures the
whole package against the original eager tower as for every precision.

Cost: len(LEVELS) GPTQ passes per weight and len(LEVELS) forward passes of the tower over
`SENSITIVITY_N` inputs per weight: ~1 minute for both towers of the shipped student on 2 cores, and
it grows with (number of weights) x (tower forward time), so a real-size tower takes many minutes.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from mobile_sdk.errors import ConversionError, DataError

log = logging.getLogger(__name__)

LEVELS = (3, 4, 6, 8)  # bit widths coremltools' palettizer stores (of 1, 2, 3, 4, 6, 8) used here
MIN_SIZE = 2048  # coremltools' default weight_threshold: smaller constants are not palettized
SENSITIVITY_N = 128  # calibration inputs the sensitivity of each candidate is measured on
DAMP = 0.01  # GPTQ damping, as a fraction of the mean diagonal of H
WARN_COSINE = 0.99  # the rounded tower's cosine with eager under which the plan is warned about
_BATCH = 64


def palettizable(module: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The weights coremltools palettizes: float parameters of >= 2 dims and >= MIN_SIZE elements."""
    return {n: p for n, p in module.named_parameters()
            if p.is_floating_point() and p.dim() >= 2 and p.numel() >= MIN_SIZE}


def _layer_input(mod: torch.nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The input of `mod` as rows matching its weight's columns (weight.reshape(out, -1)), or None
    for a layer GPTQ does not cover here (grouped / dilated convs)."""
    if isinstance(mod, torch.nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(mod, torch.nn.Conv2d) and mod.groups == 1 and isinstance(mod.padding, tuple):
        cols = F.unfold(x, mod.kernel_size, dilation=mod.dilation, padding=mod.padding, stride=mod.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return None


def input_moments(module: torch.nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Weight name -> E[x x^T] (float64) of the input of the Linear / Conv2d layer owning it."""
    sums: dict[str, list] = {}

    def hook(name):
        def f(mod, args, out):
            x = _layer_input(mod, args[0].detach().double())
            if x is None:
                return
            s = sums.setdefault(name, [0, 0])
            s[0] = s[0] + x.T @ x
            s[1] += x.shape[0]
        return f

    handles = [m.register_forward_hook(hook(f"{n}.weight" if n else "weight"))
               for n, m in module.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), _BATCH):
                module(inputs[i:i + _BATCH])
    finally:
        for h in handles:
            h.remove()
    return {name: s / n for name, (s, n) in sums.items()}


def kmeans_palette(values: np.ndarray, nbits: int, weights: np.ndarray | None = None, iters: int = 100) -> np.ndarray:
    """Sorted, distinct, fp16-exact palette of at most 2^nbits entries: weighted 1-D k-means
    (Lloyd's iterations from the weighted quantiles)."""
    v = np.asarray(values, np.float64).ravel()
    w = np.ones_like(v) if weights is None else np.asarray(weights, np.float64).ravel()
    order = np.argsort(v)
    vs, ws = v[order], w[order] + 1e-12
    cdf = np.cumsum(ws)
    cdf /= cdf[-1]
    c = np.unique(np.interp((np.arange(2 ** nbits) + 0.5) / 2 ** nbits, cdf, vs))
    for _ in range(iters):
        mids = (c[1:] + c[:-1]) / 2
        a = np.searchsorted(mids, vs)
        den = np.bincount(a, ws, len(c))
        new = np.where(den > 0, np.bincount(a, ws * vs, len(c)) / np.maximum(den, 1e-300), c)
        if np.allclose(new, c, rtol=0, atol=1e-12):
            break
        c = np.unique(new)
    return np.unique(c.astype(np.float16).astype(np.float64))


def _nearest(w: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    idx = torch.searchsorted((palette[1:] + palette[:-1]) / 2, w.contiguous())
    return palette[idx]


def gptq_round(weight: torch.Tensor, h: torch.Tensor, palette: np.ndarray, damp: float = DAMP) -> torch.Tensor:
    """`weight` (out, in) rounded onto `palette` column by column, in order of decreasing input
    energy, each column's rounding error spread over the columns not yet rounded through the
    inverse of H (GPTQ); minimizes E||(W - Q) x||^2 for inputs with second moments H."""
    W = weight.detach().double().clone()
    H = h.double().clone()
    cols = W.shape[1]
    dead = torch.diag(H) <= 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = torch.argsort(torch.diag(H), descending=True)
    W, H = W[:, perm], H[perm][:, perm]
    H += damp * torch.mean(torch.diag(H)) * torch.eye(cols, dtype=H.dtype)
    try:
        U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    except RuntimeError:  # not positive definite even damped: plain rounding
        return _nearest(weight.detach().double(), torch.from_numpy(palette))
    P = torch.from_numpy(palette)
    Q = torch.empty_like(W)
    for i in range(cols):
        q = _nearest(W[:, i], P)
        Q[:, i] = q
        if i + 1 < cols:
            W[:, i + 1:] -= ((W[:, i] - q) / U[i, i])[:, None] * U[i, i + 1:][None, :]
    out = torch.empty_like(Q)
    out[:, perm] = Q
    if dead.any():  # inputs that are always zero: their weights change nothing; rounded as they are
        out[:, dead] = _nearest(weight.detach().double()[:, dead], P)
    return out


def round_weight(weight: torch.Tensor, nbits: int, h: torch.Tensor | None) -> torch.Tensor:
    """`weight` with at most 2^nbits distinct fp16-exact values: GPTQ onto a diag(H)-weighted
    k-means palette when H (its layer's input moments) is known, else nearest rounding onto a
    k-means palette."""
    W = weight.detach().double().reshape(weight.shape[0], -1)
    if h is None:
        q = _nearest(W, torch.from_numpy(kmeans_palette(W.numpy(), nbits)))
    else:
        col_w = np.broadcast_to(torch.diag(h).clamp_min(0).numpy()[None, :], W.shape)
        q = gptq_round(W, h, kmeans_palette(W.numpy(), nbits, col_w))
    return q.reshape(weight.shape).to(weight.dtype)


def allocate(sizes: dict[str, int], errors: dict[str, dict[int, float]], mean_bits: float,
             levels=LEVELS) -> dict[str, int]:
    """Bit width per weight: all start at the lowest level; repeatedly raise the weight whose next
    level saves the most error per bit spent, while the total stays <= mean_bits per weight."""
    bits = {k: levels[0] for k in sizes}
    budget = mean_bits * sum(sizes.values()) - levels[0] * sum(sizes.values())
    while True:
        best = None
        for k, n in sizes.items():
            i = levels.index(bits[k])
            if i + 1 == len(levels):
                continue
            cost = n * (levels[i + 1] - bits[k])
            if cost > budget:
                continue
            gain = (errors[k][bits[k]] - errors[k][levels[i + 1]]) / cost
            if best is None or gain > best[0]:
                best = (gain, k, levels[i + 1], cost)
        if best is None:
            return bits
        _, k, b, cost = best
        bits[k], budget = b, budget - cost


def _rel_error(module: torch.nn.Module, x: torch.Tensor, ref: torch.Tensor) -> float:
    with torch.no_grad():
        out = torch.cat([module(x[i:i + _BATCH]) for i in range(0, len(x), _BATCH)]).double()
    return float(((out - ref) ** 2).sum() / (ref ** 2).sum().clamp_min(1e-300))


def palettize_mixed(module: torch.nn.Module, inputs, mean_bits: float = 3.5, levels=LEVELS,
                    on_step=None) -> dict:
    """Round `module`'s palettizable weights in place (see the module docstring); returns the plan:
    {"nbits": {weight: bits}, "mean_bits": achieved, "sensitivity": {weight: {bits: rel. error}},
    "seconds": ...}. `inputs`: calibration inputs of the tower, a batch tensor or a list of batch-1
    tensors (at least 8)."""
    t0 = time.perf_counter()
    if not levels[0] <= mean_bits <= levels[-1]:
        raise ConversionError(f"mean_bits must be between {levels[0]} and {levels[-1]}, got {mean_bits}")
    x = torch.cat(list(inputs)) if isinstance(inputs, (list, tuple)) else torch.as_tensor(inputs)
    if len(x) < 8:
        raise DataError(f"calibrated palettization needs calibration inputs (at least 8, ideally "
                        f"hundreds) to measure each weight on; got {len(x)}. Pass the export's calibration data")
    weights = palettizable(module)
    if not weights:
        raise ConversionError(f"no weight of at least {MIN_SIZE} elements to palettize")
    module.eval()
    moments = input_moments(module, x)
    xs = x[:SENSITIVITY_N]
    with torch.no_grad():
        ref = torch.cat([module(xs[i:i + _BATCH]) for i in range(0, len(xs), _BATCH)]).double()
    rounded: dict[str, dict[int, torch.Tensor]] = {}
    errors: dict[str, dict[int, float]] = {}
    for i, (name, p) in enumerate(weights.items()):
        h = moments.get(name)
        original = p.data.clone()
        rounded[name], errors[name] = {}, {}
        for b in levels:
            q = round_weight(original, b, h)
            rounded[name][b] = q
            p.data.copy_(q)
            errors[name][b] = _rel_error(module, xs, ref)
        p.data.copy_(original)
        if on_step:
            on_step(f"{name} ({i + 1}/{len(weights)})")
    sizes = {n: p.numel() for n, p in weights.items()}
    plan = allocate(sizes, errors, mean_bits, levels)
    for name, b in plan.items():
        weights[name].data.copy_(rounded[name][b])
    achieved = sum(sizes[n] * b for n, b in plan.items()) / sum(sizes.values())
    with torch.no_grad():  # the whole plan at once, on the same inputs
        out = torch.cat([module(xs[i:i + _BATCH]) for i in range(0, len(xs), _BATCH)]).double()
    cos = F.cosine_similarity(out.flatten(1), ref.flatten(1), dim=1)
    if cos.mean() < WARN_COSINE:
        _warn_weak_plan(float(cos.mean()), plan, sizes, errors, levels)
    seconds = time.perf_counter() - t0
    log.info("calibrated palettization: %d weights, mean %.2f bits (target %.2f), %s, cosine %.5f, %.1f s", len(plan),
             achieved, mean_bits, {b: sum(v == b for v in plan.values()) for b in levels}, cos.mean(), seconds)
    return {"nbits": plan, "mean_bits": round(achieved, 4), "target_mean_bits": mean_bits,
            "cosine_mean": round(float(cos.mean()), 6), "cosine_min": round(float(cos.min()), 6),
            "sensitivity": {n: {str(b): e for b, e in errs.items()} for n, errs in errors.items()},
            "calibration_n": len(x), "sensitivity_n": len(xs), "seconds": round(seconds, 1)}


def _warn_weak_plan(cosine: float, plan: dict[str, int], sizes: dict[str, int],
                    errors: dict[str, dict[int, float]], levels) -> None:
    """The rounded tower drifts from eager: name the weight that costs the most at its planned
    bits and the mean that would give it the next level."""
    total = sum(sizes.values())
    worst = max(plan, key=lambda n: errors[n][plan[n]])
    b = plan[worst]
    fix = ""
    if b != levels[-1]:
        nxt = levels[levels.index(b) + 1]
        need = sum(sizes[n] * v for n, v in plan.items()) / total + sizes[worst] * (nxt - b) / total
        fix = f"; a mean of {need:.2f} bits would give it {nxt}"
    log.warning("calibrated palettization keeps only cosine %.4f with the eager tower on the calibration data: "
                "%s (%.0f%% of the palettized weights) costs the most at %d bits%s. Parity will likely refuse it: "
                "raise mean_bits or use pal4 / pal6", cosine, worst, 100 * sizes[worst] / total, b, fix)
