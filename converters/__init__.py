"""Per-platform converters behind one registry and one contract (see `converters.base`).

A backend is one module plus its registration here: `register_backend(name, suffix, module)`.
The module exposes `PLATFORM`, `PRECISIONS` (each maps to a parity tolerance family by name:
fp32, fp16, int8*, int8_dynamic, palN), `DEFAULT_PRECISION` (one value or one per tower), `CONFIG`
(a frozen config dataclass with a `precision` field), `convert(model, tower, example, config,
out_dir, calibration=None) -> Artifact` (model: a `mobile_sdk.models.DualEncoder`), `load(path) ->
runner`, and optionally `convert_many` (several precisions from one front end) and `intermediates`
(per-layer outputs for localization). It imports its backend package only inside itself, so
importing `converters` stays cheap; `platform_module` imports a backend on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import Artifact, Converter, TensorSpec


@dataclass(frozen=True)
class Backend:
    name: str  # the platform name used on the CLI, in file paths and in the manifest
    suffix: str  # the artifact file (or package folder) suffix
    module: str  # the converter module, imported on first use

    def load_module(self):
        return importlib.import_module(self.module)


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, suffix: str, module: str) -> Backend:
    backend = _BACKENDS[name] = Backend(name, suffix, module)
    global PLATFORMS, SUFFIXES
    PLATFORMS = tuple(_BACKENDS)
    SUFFIXES = {b.name: b.suffix for b in _BACKENDS.values()}
    return backend


PLATFORMS: tuple[str, ...] = ()
SUFFIXES: dict[str, str] = {}
register_backend("executorch", ".pte", "converters.executorch")
register_backend("tflite", ".tflite", "converters.tflite")
register_backend("coreml", ".mlpackage", "converters.coreml")


def backends() -> dict[str, Backend]:
    return dict(_BACKENDS)


def platform_module(name: str):
    """The converter module of a platform (imported on first use)."""
    from mobile_sdk.errors import ConfigError

    if name not in _BACKENDS:
        raise ConfigError(f"unknown target {name!r}; choose one of {', '.join(_BACKENDS)} or 'all'")
    return _BACKENDS[name].load_module()


__all__ = ["Artifact", "Backend", "Converter", "PLATFORMS", "SUFFIXES", "TensorSpec", "backends", "platform_module",
           "register_backend"]
