"""Model sources: one entry point, `load_adapter(spec, weights)`, for every way a model comes in.

    student | teacher | tiny        a built-in model (shipped weights, or --weights / a checkpoint)
    path/to/checkpoint.safetensors  a built-in-family checkpoint written by `mobile-sdk train`
    open_clip:ARCH                  an open_clip architecture, with --weights FILE (its state dict)
    hf:DIR                          a local Hugging Face CLIPModel / SiglipModel folder
    module:function                 your own: `function(weights)` returns a DualEncoder

A family registers itself with `@register_source("prefix")`; its loader takes the part after the
prefix and the weights path. No source downloads anything: weights are always a file or folder.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from .adapter import DualEncoder

Loader = Callable[[str, "str | Path | None"], DualEncoder]
_SOURCES: dict[str, tuple[Loader, str]] = {}


def register_source(prefix: str, help: str = "") -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        _SOURCES[prefix] = (fn, help or (fn.__doc__ or "").strip().splitlines()[0])
        return fn
    return deco


def list_sources() -> dict[str, str]:
    """{prefix: one-line description} of the registered source families."""
    _load_families()
    return {k: v[1] for k, v in sorted(_SOURCES.items())}


def _load_families() -> None:
    # Each family module registers itself on import; their heavy imports (open_clip, transformers)
    # happen only inside their loaders.
    from . import _hf, _open_clip  # noqa: F401


def load_adapter(spec: str | DualEncoder, weights: str | Path | None = None) -> DualEncoder:
    """A DualEncoder from a source spec (see the module docstring)."""
    if isinstance(spec, DualEncoder):
        return spec
    spec = str(spec)
    _load_families()
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in _SOURCES:
        if not rest:
            raise ConfigError(f"model {spec!r}: name what comes after '{prefix}:' "
                              f"(e.g. {prefix}:{_EXAMPLES.get(prefix, 'NAME')})")
        return _SOURCES[prefix][0](rest, weights)
    if sep and not Path(spec).exists() and "/" not in prefix and prefix.replace(".", "").replace("_", "").isalnum() \
            and len(prefix) > 1:
        return _custom(prefix, rest, weights)
    return _builtin(spec, weights)


_EXAMPLES = {"open_clip": "ViT-B-32", "hf": "path/to/clip-folder"}

# Models of a real architecture shipped with the SDK (config + weights in mobile_sdk/assets/): the
# open_clip CLIP class trained on the built-in world (docs/vit_bpe_world.md), loadable by name.
SHIPPED_OPEN_CLIP = {"vit-bpe-world": ("vit-bpe-world.json", "vit-bpe-world.safetensors")}


def shipped_open_clip(name: str) -> DualEncoder:
    """A shipped open_clip model by name, as `open_clip:CONFIG.json --weights FILE` loads it."""
    assets = Path(__file__).resolve().parent.parent / "assets"
    cfg, weights = (assets / f for f in SHIPPED_OPEN_CLIP[name])
    if not weights.is_file():
        raise ConfigError(f"model {name!r}: its weights {weights} are missing from this installation; reinstall "
                          f"mobile-sdk")
    return load_adapter(f"open_clip:{cfg}", weights)


def _builtin(spec: str, weights) -> DualEncoder:
    from ..checkpoint import load_checkpoint, shipped_checkpoint
    from .builtin import builtin_adapter
    from .registry import list_models

    path = Path(weights) if weights else None
    name = spec
    if path is None:
        if spec.endswith(".safetensors") or Path(spec).exists():
            path, name = Path(spec), Path(spec).stem
        elif spec in ("student", "teacher"):
            path = shipped_checkpoint(spec)
        elif spec in SHIPPED_OPEN_CLIP:
            return shipped_open_clip(spec)
        elif spec in list_models():
            raise ConfigError(f"model {spec!r} has no shipped weights; pass --weights CHECKPOINT "
                              f"(train one with `mobile-sdk train --model {spec}`)")
        else:
            raise ConfigError(f"unknown model {spec!r}; choose a built-in model ({', '.join(list_models())}), a "
                              f"checkpoint file, or a source: {', '.join(p + ':...' for p in list_sources())}, "
                              f"module:function")
    model, meta = load_checkpoint(path)
    adapter = builtin_adapter(model, name=meta.get("name") or name, weights=str(path.resolve()))
    adapter.meta = meta
    return adapter


def _custom(module: str, function: str, weights) -> DualEncoder:
    """`module:function` -> function(weights) (or function() when no weights are given)."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"model {module}:{function}: cannot import module {module!r} ({e}); is it on PYTHONPATH "
                          f"or installed?") from e
    fn = getattr(mod, function, None)
    if not callable(fn):
        raise ConfigError(f"model {module}:{function}: {module!r} has no function {function!r}")
    adapter = fn(weights) if weights is not None else fn()
    if not isinstance(adapter, DualEncoder):
        raise ConfigError(f"model {module}:{function} returned {type(adapter).__name__}, not a "
                          f"mobile_sdk.models.DualEncoder; build one from your towers (README, 'Your own model')")
    adapter.name = adapter.name or f"{module}:{function}"
    if adapter.family == "builtin":
        adapter.family = "custom"
    return adapter


def load_reference(record: dict | None = None, model=None, weights=None, checkpoint=None) -> DualEncoder:
    """The reference model of an export folder: `model` (an adapter or a source spec, with
    `weights`) when given, else `checkpoint` (a built-in checkpoint), else what the folder's
    export.json recorded, else the shipped model."""
    from ..checkpoint import default_checkpoint

    record = record or {}
    if model is not None:
        return load_adapter(model, weights)
    if checkpoint is not None:
        return load_adapter(str(checkpoint))
    if record.get("model"):
        return load_adapter(record["model"], weights or record.get("checkpoint"))
    return load_adapter(str(record.get("checkpoint") or default_checkpoint()))


__all__ = ["list_sources", "load_adapter", "load_reference", "register_source"]
