"""The built-in CLIP as a `DualEncoder`: its towers are used as they are (the same modules, so
its artifacts and figures do not change), with the word-level tokenizer and the world's
preprocessing (center crop to the largest square, exact area resize)."""

from __future__ import annotations

from .adapter import DualEncoder, Preprocess
from .clip import CLIP, PIXEL_MEAN, PIXEL_STD


def builtin_adapter(model: CLIP, name: str = "builtin", weights: str | None = None) -> DualEncoder:
    from ..tokenizer import Tokenizer

    cfg = model.cfg
    size = cfg.vision.image_size
    adapter = DualEncoder(
        name=name, image=model.visual, text=model.text,
        preprocess=Preprocess(size=(size, size), mean=PIXEL_MEAN, std=PIXEL_STD, resize="center_crop",
                              interpolation="area"),
        tokenizer=Tokenizer.from_file(context_length=cfg.text.context_length),
        logit_scale=float(model.logit_scale.detach().exp().clamp(max=100.0)), embed_dim=cfg.embed_dim,
        family="builtin", weights=weights, info={"config": cfg.to_dict()})
    adapter.clip = model  # training, pruning and distillation work on the CLIP itself
    return adapter
