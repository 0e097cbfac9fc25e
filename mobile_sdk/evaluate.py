"""Evaluate a model (or any pair of encoders) on the world's tasks."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .data.tasks import build_tasks, score
from .tokenizer import Tokenizer

_BATCH = 256


def torch_encoders(model, device: torch.device | str = "cpu", batch: int = _BATCH
                   ) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """(encode_image, encode_text) over numpy: uint8 NHWC pixels / int32 ids -> float32 embeddings."""
    device = torch.device(device)
    dim = getattr(model, "embed_dim", None) or model.cfg.embed_dim

    @torch.no_grad()
    def encode_image(pixels: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(0, len(pixels), batch):
            x = torch.from_numpy(np.ascontiguousarray(pixels[i:i + batch])).to(device).permute(0, 3, 1, 2).float()
            outs.append(model.encode_image(x).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, dim), np.float32)

    @torch.no_grad()
    def encode_text(ids: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(0, len(ids), batch):
            outs.append(model.encode_text(torch.from_numpy(ids[i:i + batch]).to(device)).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, dim), np.float32)

    return encode_image, encode_text


def runner_encoders(image_runner: Callable[[np.ndarray], np.ndarray], text_runner: Callable[[np.ndarray], np.ndarray]
                    ) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """(encode_image, encode_text) over batch-1 artifact runners, which take the model's raw
    inputs (float32 NCHW pixels in [0, 255], int32 ids): the same numpy interface as
    `torch_encoders`, so the tasks score an artifact exactly as they score the eager model."""

    def encode_image(pixels: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)).astype(np.float32)
        return np.concatenate([image_runner(x[i:i + 1]) for i in range(len(x))]) if len(x) else np.zeros((0, 0), np.float32)

    def encode_text(ids: np.ndarray) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        return np.concatenate([text_runner(ids[i:i + 1]) for i in range(len(ids))]) if len(ids) else np.zeros((0, 0), np.float32)

    return encode_image, encode_text


def agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Top-1 agreement per task between two `predict` results, and pooled over samples: `zeroshot`
    (the zero-shot tasks: the parity bar), `retrieval` (the retrieval tasks) and `overall` (all).

    Retrieval is reported but not the bar: its K+1 candidates differ from the truth by one fact, so
    many of its decisions are near ties of the model itself (recall@1 ~55%), which any rounding of
    a weight flips; the issues' bars are on zero-shot agreement."""
    from .data.tasks import RETRIEVAL_TASKS, is_zeroshot

    top1 = lambda p: p[:, 0] if p.ndim == 2 else p  # noqa: E731  (caption retrieval keeps its top-k)
    same = {t: top1(a[t]) == top1(b[t]) for t in a if t in b}
    out = {t: float(np.mean(v)) for t, v in same.items()}
    groups = {"zeroshot": [t for t in same if is_zeroshot(t)],
              "retrieval": [t for t in same if t in RETRIEVAL_TASKS], "overall": list(same)}
    for name, tasks in groups.items():
        if tasks:
            out[name] = float(sum(np.sum(same[t]) for t in tasks) / sum(len(same[t]) for t in tasks))
    return out


def evaluate_model(model, n: int = 500, split: str = "test", seed: int = 0, device="cpu",
                   tokenizer: Tokenizer | None = None, sets: dict | None = None) -> dict[str, float]:
    """Per-task accuracy / recall@1 of an eager model (a built-in CLIP or an adapter) on `n`
    samples per task of `split`."""
    from .models.adapter import DualEncoder

    if isinstance(model, DualEncoder):
        size, tokenizer = model.image_size[0], tokenizer or model.tokenizer
    else:
        model.eval()
        size, tokenizer = model.cfg.vision.image_size, tokenizer or Tokenizer.from_file()
    sets = sets if sets is not None else build_tasks(n=n, image_size=size, seed=seed, split=split)
    enc_img, enc_txt = torch_encoders(model, device)
    return score(sets, enc_img, enc_txt, tokenizer)
