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


def layer_points(tower: torch.nn.Module) -> dict[str, str]:
    """The comparable layers of a tower, in forward order (without `embedding`): label -> module
    path inside the tower. An adapter's tower names its own (`intermediate_points`, as open_clip's
    `forward_intermediates` names what a tool may tap); the built-in towers' labels are their paths."""
    points = getattr(tower, "intermediate_points", None)
    if points is not None:
        return dict(points)
    names = dict(tower.named_children())
    if "blocks" not in names:
        return {}
    out = [n for n in ("ln_pre",) if n in names]
    out += [f"blocks.{i}" for i in range(len(tower.blocks))]
    out += [n for n in ("ln_post", "ln_final") if n in names]
    return {n: n for n in out}


def layer_paths(tower: torch.nn.Module) -> list[str]:
    """The labels of `layer_points`, in forward order."""
    return list(layer_points(tower))


def in_module_stack(node, points: dict[str, str]) -> list[str]:
    """The labels of `points` whose module an FX node of an exported tower was traced inside."""
    stack = {v[0] for v in (node.meta.get("nn_module_stack") or {}).values()}
    return [label for label, path in points.items() if path in stack]


def _first(o):
    return o[0] if isinstance(o, (tuple, list)) else o


@torch.no_grad()
def reference_intermediates(tower: torch.nn.Module, inputs: torch.Tensor) -> dict[str, np.ndarray]:
    """Eager outputs of each layer of `layer_points` (forward hooks), plus `embedding`."""
    points = layer_points(tower)
    modules = dict(tower.named_modules())
    got: dict[str, list[np.ndarray]] = {p: [] for p in points}
    hooks = [modules[path].register_forward_hook(
        lambda m, a, o, p=p: got[p].append(_first(o).detach().float().numpy().copy())) for p, path in points.items()]
    try:
        emb = [tower(inputs[i:i + 1]).numpy() for i in range(len(inputs))]
    finally:
        for h in hooks:
            h.remove()
    out = {p: np.concatenate(v) for p, v in got.items()}
    out["embedding"] = np.concatenate(emb)
    return out


def is_stream(layer: str) -> bool:
    """Whether a layer of `layer_points` is the residual stream (read only by LayerNorms): the
    built-in towers' `ln_pre` and every tower's `blocks.i`."""
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
