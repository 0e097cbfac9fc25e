"""The converter contract shared by every platform.

A converter turns one tower (`image` or `text`) into one artifact file:
    convert(model, example_inputs, config, out_dir) -> Artifact
and provides a runner that loads the artifact on its real runtime and maps the same raw inputs
(float32 pixels in [0, 255] NCHW, int32 ids) to outputs. It raises ConversionError naming the
failing op or step, and never leaves a half-written artifact: it writes into a temporary folder
and renames into place (`atomic_output`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "float32", "int32", "int8", ...
    layout: str = ""  # "NCHW", "NHWC", "NT" (batch, tokens), "NC" (batch, channels)
    scale: float | None = None  # quantization scale (int8 tensors)
    zero_point: int | None = None


@dataclass
class Artifact:
    platform: str  # "executorch" | "tflite" | "coreml"
    tower: str  # "image" | "text"
    precision: str  # "fp32", "fp16", "int8", "int8_dynamic", "pal4", ...
    path: Path
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    extra: dict[str, Any] = field(default_factory=dict)  # delegation report, op lists, ...

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = Path(self.path).name  # beside this metadata; an export folder can move
        return d


class Runner(Protocol):
    def __call__(self, inputs: np.ndarray) -> np.ndarray: ...


class Converter(Protocol):
    platform: str

    def convert(self, model, example_inputs: tuple, config: Any, out_dir: Path) -> Artifact: ...

    def load(self, artifact: Artifact) -> Runner: ...


@contextlib.contextmanager
def atomic_output(final: Path):
    """Yield a temp path beside `final`; on success rename it to `final` (replacing an earlier
    one), on error remove it, leaving any earlier `final` untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.")) / final.name
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            backup = final.with_name(f".{final.name}.old")
            os.replace(final, backup)
            os.replace(tmp, final)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def describe(model, tower: str, precision: str, example_shape: tuple[int, ...]) -> dict:
    """What an artifact says about itself, the same on every platform: one-line descriptions of the
    model, its input and its output (named as in the manifest), author, license, version, and the
    preprocessing an app must apply. Core ML stores it in the package's metadata; every sidecar
    .json and the manifest carry it as `description`."""
    from mobile_sdk import __version__
    from mobile_sdk.models.adapter import as_adapter

    model = as_adapter(model)
    pre = model.preprocess
    if tower == "image":
        h, w = pre.size
        inp = ("pixels", f"RGB image, shape {tuple(example_shape)} (NCHW), float32 values 0..255. Resize "
               f"({pre.resize}, {pre.interpolation}) to {h}x{w}; the mean {tuple(pre.mean)} / std "
               f"{tuple(pre.std)} normalization is inside the model.")
    else:
        kind = model.tokenizer.describe().get("kind", "word") if hasattr(model.tokenizer, "describe") else "custom"
        inp = ("ids", f"token ids, shape {tuple(example_shape)}, int32, from the {kind} tokenizer the manifest "
                      f"describes (context {example_shape[-1]}, zero-padded).")
    license_ = (model.info or {}).get("license") or ("Apache-2.0" if model.family == "builtin"
                                                    else f"the license of the source weights ({model.name})")
    return {
        "short_description": f"{model.name}: {tower} tower of a CLIP-style dual encoder, {precision}; compare an "
                             f"image and a text embedding by their dot product (cosine).",
        "inputs": {inp[0]: inp[1]},
        "outputs": {"embedding": f"unit-length (L2-normalized) embedding, shape (1, {model.embed_dim}), float32."},
        "author": f"mobile-sdk {__version__}",
        "license": license_,
        "version": __version__,
        "preprocess": pre.to_dict() if tower == "image" else None,
    }
