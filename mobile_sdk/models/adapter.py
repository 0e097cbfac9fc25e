"""The dual-encoder adapter contract: what every other part of the SDK knows about a model.

A `DualEncoder` holds the two towers as modules that take what an app has and return unit-norm
embeddings:
    image(pixels float32 (N, 3, H, W) in [0, 255], RGB, at the model's input size) -> (N, D)
    text(ids int32 (N, T), T = the model's context length)                          -> (N, D)
The model's own pixel normalization is inside the image tower's graph. Beside them it carries the
preprocessing spec (how an app turns a photo into those pixels), the tokenizer (texts -> ids), the
logit scale, and per tower the named intermediate points that divergence localization taps
(label -> module path inside the tower, in forward order).

Converters, parity, bench, golden vectors and the manifest read a model only through this
contract. The built-in CLIP is one adapter (`models.builtin`); open_clip and Hugging Face models
are others (`models.sources` resolves a source name to an adapter).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn as nn

from ..errors import ConfigError
from .clip import l2_normalize

TOWERS = ("image", "text")


@dataclass(frozen=True)
class Preprocess:
    """How an app turns an image into the image tower's input (normalization is in the graph)."""
    size: tuple[int, int]  # (height, width) of the tower's input
    mean: tuple[float, float, float]  # per-channel mean of [0, 1] pixels, folded into the tower
    std: tuple[float, float, float]
    # "center_crop": resize the shorter side to the input size, then crop the centre (open_clip,
    # Hugging Face CLIP); "squash": resize both sides (SigLIP); "pad": letterbox (the built-in world).
    resize: str = "center_crop"
    interpolation: str = "bicubic"

    def to_dict(self) -> dict:
        return asdict(self)


class TokenizerLike(Protocol):
    """Texts -> int32 ids of shape (N, context_length), exactly as an app must reproduce them."""
    context_length: int

    def __call__(self, texts: list[str]) -> np.ndarray: ...


class L2Norm(nn.Module):
    """x * rsqrt(sum(x^2) + eps) over the last dim: the export-friendly L2 normalization (no
    ReduceL2 / F.normalize, which onnx2tf and XNNPACK do not take)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_normalize(x)


class PixelNorm(nn.Module):
    """[0, 255] pixels -> (x / 255 - mean) / std, as one per-channel affine."""

    def __init__(self, mean, std):
        super().__init__()
        mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        self.register_buffer("scale", (1.0 / (255.0 * std_t)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (-mean_t / std_t).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels * self.scale + self.shift


class EotReadout(nn.Module):
    """The features of each row's first end-of-text token, (B, T) ids + (B, T, C) -> (B, C), as a
    one-hot row times the tokens: the `x[arange(B), ids.argmax(-1)]` gather of CLIP text towers
    (end-of-text has the largest id; Hugging Face takes its first occurrence, as pads may equal it),
    which LiteRT and XNNPACK do not take. No comparison or cast either (a full-integer int8 graph
    cannot quantize a bool -> float cast): the one-hot is an embedding lookup (1 at the end-of-text
    id, 0 elsewhere), and the first occurrence is relu(1 - the count of earlier ones)."""

    def __init__(self, context_length: int, eot_id: int, vocab_size: int):
        super().__init__()
        if not 0 <= int(eot_id) < vocab_size:
            raise ValueError(f"end-of-text id {eot_id} is outside the vocabulary (size {vocab_size})")
        self.is_eot = nn.Embedding(vocab_size, 1)
        with torch.no_grad():
            self.is_eot.weight.zero_()
            self.is_eot.weight[int(eot_id)] = 1.0
        self.is_eot.weight.requires_grad_(False)
        # earlier[i, j] = 1 where i < j: (e @ earlier)[j] counts end-of-text tokens before position j
        self.register_buffer("earlier", torch.ones(context_length, context_length).triu(1), persistent=False)

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        e = self.is_eot(ids).squeeze(-1)  # (B, T): 1 at end-of-text tokens
        first = e * torch.relu(1.0 - e @ self.earlier)
        return torch.bmm(first.unsqueeze(1), x).squeeze(1)


class Tower(nn.Module):
    """A foreign tower in the contract's form: `pre` (pixel normalization, or nothing), `body`
    (the model's own encoder, returning unprojected or projected features), `norm` (L2Norm).
    `points` maps the localization labels to module paths inside this module."""

    def __init__(self, body: nn.Module, points: dict[str, str], pre: nn.Module | None = None):
        super().__init__()
        self.pre = pre if pre is not None else nn.Identity()
        self.body = body
        self.norm = L2Norm()
        self.intermediate_points = dict(points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.body(self.pre(x)))


@dataclass
class DualEncoder:
    """A model in the SDK's contract (see the module docstring)."""
    name: str  # the source it came from: "student", "open_clip:ViT-B-32", "hf:/path", ...
    image: nn.Module | None
    text: nn.Module | None
    preprocess: Preprocess
    tokenizer: Any  # TokenizerLike; also `files()` / `describe()` where it can export itself
    logit_scale: float
    embed_dim: int
    family: str = "builtin"  # "builtin" | "open_clip" | "hf" | "custom"
    weights: str | None = None  # the weights file or folder it was loaded from, if any
    info: dict = field(default_factory=dict)  # family-specific facts for the manifest

    def __post_init__(self):
        for t in (self.image, self.text):
            if t is not None:
                t.eval()

    @classmethod
    def from_towers(cls, image: nn.Module | None = None, text: nn.Module | None = None, name: str = "custom",
                    **kw) -> "DualEncoder":
        """An adapter over one or two bare tower modules that already take the contract's inputs
        (for converting a single tower; parity and the manifest need the full adapter)."""
        kw.setdefault("preprocess", Preprocess(size=(64, 64), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))
        kw.setdefault("tokenizer", None)
        kw.setdefault("logit_scale", 1.0)
        kw.setdefault("embed_dim", 0)
        kw.setdefault("family", "custom")
        return cls(name=name, image=image, text=text, **kw)

    def tower(self, name: str) -> nn.Module:
        if name not in TOWERS:
            raise ConfigError(f"unknown tower {name!r}; choose 'image' or 'text'")
        module = self.image if name == "image" else self.text
        if module is None:
            raise ConfigError(f"model {self.name} has no {name} tower")
        return module

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.preprocess.size)

    @property
    def context_length(self) -> int:
        return int(self.tokenizer.context_length)

    def example_inputs(self, tower: str, batch: int = 1) -> torch.Tensor:
        """Zero inputs of the tower's shape and dtype (for shape checks, not for calibration)."""
        if tower == "image":
            return torch.zeros(batch, 3, *self.image_size)
        return torch.zeros(batch, self.context_length, dtype=torch.int32)

    def points(self, tower: str) -> dict[str, str]:
        """Localization points of a tower: label -> module path, in forward order."""
        from ..parity.localize import layer_points
        return layer_points(self.tower(tower))

    # The built-in CLIP's method names, so code written against it (training, evaluation) works on
    # any adapter.
    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image(pixels)

    @torch.no_grad()
    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text(ids)

    def describe(self) -> dict:
        """What the manifest records about the model."""
        tok = self.tokenizer
        return {"source": self.name, "family": self.family, "embed_dim": int(self.embed_dim),
                "logit_scale": float(self.logit_scale), "preprocess": self.preprocess.to_dict(),
                "context_length": self.context_length,
                "tokenizer": tok.describe() if hasattr(tok, "describe") else {"kind": type(tok).__name__},
                **self.info}


def as_adapter(model) -> DualEncoder:
    """`model` as a DualEncoder: an adapter is returned as it is, a built-in CLIP is wrapped."""
    if isinstance(model, DualEncoder):
        return model
    from .clip import CLIP
    if isinstance(model, CLIP):
        from .builtin import builtin_adapter
        return builtin_adapter(model)
    raise ConfigError(f"expected a DualEncoder adapter or a built-in CLIP, got {type(model).__name__}; wrap your "
                      f"model with mobile_sdk.models.DualEncoder (see the README, 'Your own model')")


__all__ = ["DualEncoder", "EotReadout", "L2Norm", "PixelNorm", "Preprocess", "TOWERS", "Tower", "TokenizerLike", "as_adapter"]
