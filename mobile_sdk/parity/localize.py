"""Divergence localization: per-layer SQNR of an artifact's intermediate outputs against the
eager reference, and the first layer that drops below the threshold.

Layers are named by their module path in the reference tower, in forward order: the image tower's
`ln_pre` (patch embedding + positions, normalized), each `blocks.i` (the residual stream after
block i) and `ln_post`; the text tower's `blocks.i` and `ln_final`; then `embedding` (the tower's
output). Each platform module provides `intermediates(model, tower, precision, inputs, calibration,
artifact_path) -> {layer: array (n, ...)}` with the same names, taken from its own runtime.

The residual stream (`ln_pre` and every `blocks.i`) is compared without its per-token mean: every
layer that reads the stream is a LayerNorm, which removes that mean, so it is not part of what the
stream computes, and an exporter may drop it (TFLite's text towers do: converters/rewrites.py,
`rotate_residual`).
"""

from __future__ import annotations

import numpy as np
import torch

from .metrics import sqnr_db


def layer_paths(tower: torch.nn.Module) -> list[str]:
    """Module paths of the comparable layers of a tower, in forward order (without `embedding`)."""
    names = dict(tower.named_children())
    out = [n for n in ("ln_pre",) if n in names]
    out += [f"blocks.{i}" for i in range(len(tower.blocks))]
    out += [n for n in ("ln_post", "ln_final") if n in names]
    return out


@torch.no_grad()
def reference_intermediates(tower: torch.nn.Module, inputs: torch.Tensor) -> dict[str, np.ndarray]:
    """Eager outputs of each layer of `layer_paths` (forward hooks), plus `embedding`."""
    paths = layer_paths(tower)
    modules = dict(tower.named_modules())
    got: dict[str, list[np.ndarray]] = {p: [] for p in paths}
    hooks = [modules[p].register_forward_hook(lambda m, a, o, p=p: got[p].append(o.detach().float().numpy().copy()))
             for p in paths]
    try:
        emb = [tower(inputs[i:i + 1]).numpy() for i in range(len(inputs))]
    finally:
        for h in hooks:
            h.remove()
    out = {p: np.concatenate(v) for p, v in got.items()}
    out["embedding"] = np.concatenate(emb)
    return out


def is_stream(layer: str) -> bool:
    """Whether a layer of `layer_paths` is the residual stream (read only by LayerNorms)."""
    return layer == "ln_pre" or layer.startswith("blocks.")


def _mean_free(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x - x.mean(axis=-1, keepdims=True)


def compare_layers(reference: dict[str, np.ndarray], artifact: dict[str, np.ndarray], threshold_db: float) -> dict:
    """SQNR per layer (in the reference's order; the residual stream per-token mean-free) and the
    first layer below `threshold_db`."""
    curve = []
    for name, ref in reference.items():
        if name not in artifact:
            continue
        art = np.asarray(artifact[name], np.float32).reshape(ref.shape) if np.size(artifact[name]) == ref.size \
            else None
        if art is None:
            curve.append({"layer": name, "sqnr_db": None, "note": f"shape {np.shape(artifact[name])} vs {ref.shape}"})
            continue
        if is_stream(name):
            ref, art = _mean_free(ref), _mean_free(art)
        curve.append({"layer": name, "sqnr_db": sqnr_db(ref, art)})
    first = next((c["layer"] for c in curve if c["sqnr_db"] is not None and not c["sqnr_db"] >= threshold_db), None)
    return {"threshold_db": threshold_db, "layers": curve, "first_divergent_layer": first}
