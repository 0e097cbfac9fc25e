"""Seeded splits of the world. Sample i of split S is a pure function of (seed, S, i).

Each split draws from its own SeedSequence stream (entropy = [seed, split id, ...]), so no two
splits can share a random stream; the tests also check that no image of one split appears in
another. `train` is effectively infinite (indices up to 2**62).
"""

from __future__ import annotations

import numpy as np

from .render import render
from .world import Scene, random_caption, sample_scene

SPLITS = {"train": 0, "val": 1, "test": 2, "calibration": 3}
DEFAULT_SEED = 0
SPLIT_SIZES = {"train": 2**62, "val": 2000, "test": 5000, "calibration": 512}


def split_rng(split: str, index: int, seed: int = DEFAULT_SEED, *stream: int) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS[split], *stream, index]))


def scene_at(split: str, index: int, seed: int = DEFAULT_SEED, n_objects: int | None = None,
             stream: tuple[int, ...] = ()) -> tuple[Scene, np.random.Generator]:
    """The scene at `index` of `split` and the generator positioned after it (for captions)."""
    rng = split_rng(split, index, seed, *stream)
    return sample_scene(rng, n_objects), rng


class WorldDataset:
    """Map-style dataset of (uint8 image (H, W, 3), caption) pairs of one split.

    `augment=True` returns a random true caption per sample (training); otherwise the canonical one.
    `hard_negative=True` adds a third item: the canonical caption of a hard-negative scene.
    """

    def __init__(self, split: str = "train", image_size: int = 64, seed: int = DEFAULT_SEED,
                 length: int | None = None, augment: bool = False, hard_negative: bool = False):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
        self.split, self.image_size, self.seed = split, image_size, seed
        self.length = SPLIT_SIZES[split] if length is None else length
        self.augment, self.hard_negative = augment, hard_negative

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(index)
        scene, rng = scene_at(self.split, index, self.seed)
        image = render(scene, self.image_size)
        caption = random_caption(scene, rng) if self.augment else scene.caption
        if not self.hard_negative:
            return image, caption
        from .world import hard_negatives

        negs = hard_negatives(scene, rng, 1)
        return image, caption, (negs[0][1].caption if negs else caption)
