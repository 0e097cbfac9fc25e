"""Output-level parity metrics between a reference and an artifact's outputs (rows = samples)."""

from __future__ import annotations

import numpy as np


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio, 10 log10(sum ref^2 / sum (ref - out)^2), in dB.
    inf when identical; -inf... never: a non-finite `out` gives nan (callers flag it)."""
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape}, artifact {out.shape}")
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref ** 2))
    if not np.isfinite(noise):
        return float("nan")
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-300) / noise)


def row_cosines(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    ref, out = ref.reshape(len(ref), -1), out.reshape(len(out), -1)
    denom = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    return np.sum(ref * out, axis=1) / np.maximum(denom, 1e-300)


def output_metrics(ref: np.ndarray, out: np.ndarray) -> dict:
    """cosine mean/min per row, max abs error, SQNR, and the count of non-finite outputs."""
    if ref.shape != out.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape}, artifact {out.shape}")
    nonfinite = int(np.size(out) - np.isfinite(out).sum())
    if nonfinite:
        return {"n": int(len(ref)), "nonfinite": nonfinite, "cosine_mean": float("nan"), "cosine_min": float("nan"),
                "max_abs_err": float("nan"), "sqnr_db": float("nan")}
    cos = row_cosines(ref, out)
    return {"n": int(len(ref)), "nonfinite": 0, "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
            "max_abs_err": float(np.max(np.abs(np.asarray(ref, np.float64) - out))), "sqnr_db": sqnr_db(ref, out)}
