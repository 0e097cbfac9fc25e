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
import importlib.util
from dataclasses import dataclass

from .base import Artifact, Converter, TensorSpec


@dataclass(frozen=True)
class Backend:
    name: str  # the platform name used on the CLI, in file paths and in the manifest
    suffix: str  # the artifact file (or package folder) suffix
    module: str  # the converter module, imported on first use
    requires: tuple[str, ...] = ()  # the importable packages the backend needs
    extra: str = ""  # the pip extra that installs them: pip install "mobile-sdk[EXTRA]"

    def missing(self) -> list[str]:
        """The packages of `requires` that are not installed (found without importing them)."""
        return [p for p in self.requires if importlib.util.find_spec(p) is None]

    def install_hint(self) -> str:
        return f'pip install "mobile-sdk[{self.extra}]"' if self.extra else f"pip install {' '.join(self.requires)}"

    def require(self) -> None:
        """Raise BackendMissing naming the missing packages and the install command."""
        from mobile_sdk.errors import BackendMissing

        gone = self.missing()
        if gone:
            raise BackendMissing(f"the {self.name} path needs {', '.join(gone)}, "
                                 f"{'which is' if len(gone) == 1 else 'which are'} not installed; install with: "
                              f"{self.install_hint()}  (torch stays pinned: add 'torch==2.13.0' to the same pip call)")

    def load_module(self):
        self.require()
        return importlib.import_module(self.module)


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, suffix: str, module: str, requires: tuple[str, ...] = (), extra: str = "") -> Backend:
    backend = _BACKENDS[name] = Backend(name, suffix, module, tuple(requires), extra)
    global PLATFORMS, SUFFIXES
    PLATFORMS = tuple(_BACKENDS)
    SUFFIXES = {b.name: b.suffix for b in _BACKENDS.values()}
    return backend


PLATFORMS: tuple[str, ...] = ()
SUFFIXES: dict[str, str] = {}
register_backend("executorch", ".pte", "converters.executorch", ("executorch",), "executorch")
register_backend("tflite", ".tflite", "converters.tflite", ("tensorflow", "tf_keras", "onnx2tf", "ai_edge_litert"),
                 "tflite")
register_backend("coreml", ".mlpackage", "converters.coreml", ("coremltools",), "coreml")


def backends() -> dict[str, Backend]:
    return dict(_BACKENDS)


def installed_platforms() -> tuple[str, ...]:
    """The registered platforms whose backend packages are installed."""
    return tuple(name for name, b in _BACKENDS.items() if not b.missing())


def platform_module(name: str):
    """The converter module of a platform (imported on first use)."""
    from mobile_sdk.errors import ConfigError

    if name not in _BACKENDS:
        raise ConfigError(f"unknown target {name!r}; choose one of {', '.join(_BACKENDS)} or 'all'")
    return _BACKENDS[name].load_module()


__all__ = ["Artifact", "Backend", "Converter", "PLATFORMS", "SUFFIXES", "TensorSpec", "backends", "platform_module",
           "register_backend"]
