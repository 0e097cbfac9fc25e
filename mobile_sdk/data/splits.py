"""Seeded splits of the world. Sample i of split S is a pure function of (seed, S, i).

Each split draws from its own SeedSequence stream (entropy = [seed, split id, ...]), so no two
splits can share a random stream; the tests also check that no image of one split appears in
another. `train` is effectively infinite (indices up to 2**62).
"""

from __future__ import annotations

import numpy as np

from .render import render
from .world import Scene, hard_negatives, random_caption, sample_scene, true_captions

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
    `hard_negatives=k` (k > 0) adds a third item: the canonical captions of k hard-negative scenes
    (kinds dealt round-robin; repeated when a scene has fewer than k).
    `pairs=p` (training): with probability p, sample 2j+1 is the twin of sample 2j, the same scene
    with one fact changed (same background and noise), and both carry their full captions, so a
    batch holds image/caption pairs that only that fact tells apart (TripletCLIP-style hard
    negatives on both sides of the loss). Batches must start at even indices.
    `truth=True` returns (image, caption, negatives (maybe empty), `world.true_captions(scene)`),
    from which a batch's exact caption/image truth table is built (multi-positive training).
    """

    def __init__(self, split: str = "train", image_size: int = 64, seed: int = DEFAULT_SEED,
                 length: int | None = None, augment: bool = False, hard_negatives: int = 0,
                 pairs: float = 0.0, caption_focus: float = 0.0, truth: bool = False):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
        self.split, self.image_size, self.seed = split, image_size, seed
        self.length = SPLIT_SIZES[split] if length is None else length
        self.augment, self.hard_negatives = augment, int(hard_negatives)
        if not 0.0 <= pairs <= 1.0:
            raise ValueError(f"pairs must be a probability, got {pairs}")
        self.pairs = float(pairs)
        self.caption_focus = float(caption_focus)  # see world.random_caption
        self.truth = bool(truth)

    def __len__(self) -> int:
        return self.length

    def _scene(self, index: int):
        """-> (scene, generator for its captions, whether it is half of a twin pair)."""
        if self.pairs > 0:
            even = index - index % 2
            prng = split_rng(self.split, even, self.seed, 1)  # the pair stream of sample `even`
            if prng.random() < self.pairs:
                if index == even:
                    scene, rng = scene_at(self.split, index, self.seed)
                    return scene, rng, True
                base, _ = scene_at(self.split, even, self.seed)
                twin = hard_negatives(base, prng, 1, prefer_binding=False)
                if twin:
                    return twin[0][1], prng, True
                # a scene without negatives cannot occur here; fall through to an independent sample
        scene, rng = scene_at(self.split, index, self.seed)
        return scene, rng, False

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(index)
        scene, rng, paired = self._scene(index)
        image = render(scene, self.image_size)
        caption = random_caption(scene, rng, self.caption_focus) if self.augment and not paired else scene.caption
        if self.hard_negatives <= 0:
            return (image, caption, [], true_captions(scene)) if self.truth else (image, caption)

        k = self.hard_negatives
        negs = [s.caption for _, s in hard_negatives(scene, rng, k, prefer_binding=False)]
        if not negs:  # cannot happen in this world (every scene has 20+ negatives); stay well-formed
            raise RuntimeError(f"scene without hard negatives: {scene.caption}")
        negs = [negs[i % len(negs)] for i in range(k)]
        return (image, caption, negs, true_captions(scene)) if self.truth else (image, caption, negs)
