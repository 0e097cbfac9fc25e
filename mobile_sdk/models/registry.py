"""Model registry: `list_models()`, `create_model(name)`, `model_config(name)`.

Register a size with `@register_model`; tests parametrize over `list_models()`.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from .clip import CLIP, CLIPConfig, TextConfig, VisionConfig

_REGISTRY: dict[str, Callable[[], CLIPConfig]] = {}


def register_model(fn: Callable[[], CLIPConfig]) -> Callable[[], CLIPConfig]:
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_config(name: str) -> CLIPConfig:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of {list_models()}")
    return _REGISTRY[name]()


def create_model(name_or_config: str | CLIPConfig) -> CLIP:
    cfg = model_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    return CLIP(cfg).eval()


@register_model
def teacher() -> CLIPConfig:
    """~5M params: conv stem (32 s1, 64 s2, 64 s1, 128 s2) + ViT 192x4 over 4x4 tokens read out
    flat, text 192x3; LayerNorm eps 1 before the blocks (full-integer int8, see VisionConfig).
    Sized for a few hundred thousand samples on 2 CPU cores, leaving room for a student 4x smaller."""
    return CLIPConfig(
        vision=VisionConfig(width=192, depth=4, heads=3, head_dim=64, mlp_dim=768, stem=(32, 64, 64, 128),
                            stem_strides=(1, 2, 1, 2), patch_size=16, pool="tokens", ln_pre_eps=1.0),
        text=TextConfig(width=192, depth=3, heads=3, head_dim=64, mlp_dim=768, pool="tokens"),
        embed_dim=192,
    )


@register_model
def student() -> CLIPConfig:
    """~1.8M params: conv stem (16 s1, 32 s2, 32 s1, 64 s2) + ViT 128x3 over 4x4 tokens read out
    flat, text 128x2, LayerNorm eps 1 before the blocks; the distillation target of `teacher`,
    pruned to under 1/4 of its size."""
    return CLIPConfig(
        vision=VisionConfig(width=128, depth=3, heads=4, head_dim=32, mlp_dim=512, stem=(16, 32, 32, 64),
                            stem_strides=(1, 2, 1, 2), patch_size=16, pool="tokens", ln_pre_eps=1.0),
        text=TextConfig(width=128, depth=2, heads=4, head_dim=32, mlp_dim=512, pool="tokens"),
        embed_dim=128,
    )


@register_model
def tiny() -> CLIPConfig:
    """~30k params, for tests and smoke runs."""
    return CLIPConfig(
        vision=VisionConfig(width=32, depth=1, heads=2, head_dim=16, mlp_dim=64, stem=(8,)),
        text=TextConfig(width=32, depth=1, heads=2, head_dim=16, mlp_dim=64),
        embed_dim=32,
    )
