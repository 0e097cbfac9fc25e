"""Per-platform converters behind one contract (see `converters.base`).

Each platform module (`executorch`, `tflite`, `coreml`) exposes `PLATFORM`, `PRECISIONS`,
`DEFAULT_PRECISION` (one value or one per tower), `CONFIG` (a frozen config dataclass with a
`precision` field), `convert(model, tower,
example, config, out_dir, calibration=None) -> Artifact` and `load(path) -> runner`. It imports its
backend package only inside itself, so importing `converters` stays cheap; `platform_module`
imports a platform on demand.
"""

from __future__ import annotations

import importlib

from .base import Artifact, Converter, TensorSpec

PLATFORMS = ("executorch", "tflite", "coreml")
# The artifact file suffix of each platform.
SUFFIXES = {"executorch": ".pte", "tflite": ".tflite", "coreml": ".mlpackage"}


def platform_module(name: str):
    """The converter module of a platform (imported on first use)."""
    from mobile_sdk.errors import ConfigError

    if name not in PLATFORMS:
        raise ConfigError(f"unknown target {name!r}; choose one of {', '.join(PLATFORMS)} or 'all'")
    return importlib.import_module(f"converters.{name}")


__all__ = ["Artifact", "Converter", "PLATFORMS", "SUFFIXES", "TensorSpec", "platform_module"]
