"""Evaluation tasks on the test split, and how a pair of encoders is scored on them.

Zero-shot classification (chance in brackets):
- `zeroshot_color` (1/8), `zeroshot_shape` (1/6), `zeroshot_size` (1/3), `zeroshot_position` (1/9):
  one-object scenes; one prompt per class ("a red object", "a circle", "a small object",
  "an object in the top left"); the most similar prompt wins.
- `zeroshot_relation` (1/4): two-object scenes; prompts are the full caption with each of the four
  relations ("a small red circle left of a large blue square", "... right of ...", ...).
Retrieval with hard negatives (1 true + K negatives, chance 1/(K+1)):
- `retrieval_i2t`: an image and K+1 captions; the negatives differ from the truth in one attribute
  or in the binding of attributes to objects or in the relation (see `world.hard_negatives`).
- `retrieval_t2i`: a caption and K+1 images; the negatives are those same scenes, rendered with
  the same background and noise. Metric: recall@1.

Encoders are plain functions (uint8 NHWC pixels -> embeddings, int32 ids -> embeddings), so the
same scoring runs on eager PyTorch and on every converted artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .render import render
from .splits import scene_at
from .world import COLORS, POSITION_PHRASES, POSITIONS, RELATIONS, SHAPES, SIZES, caption_of, hard_negatives

ZEROSHOT_TASKS = ("zeroshot_color", "zeroshot_shape", "zeroshot_size", "zeroshot_position", "zeroshot_relation")
RETRIEVAL_TASKS = ("retrieval_i2t", "retrieval_t2i")
TASKS = ZEROSHOT_TASKS + RETRIEVAL_TASKS
DEFAULT_NEGATIVES = 7
CHANCE = {"zeroshot_color": 1 / len(COLORS), "zeroshot_shape": 1 / len(SHAPES), "zeroshot_size": 1 / len(SIZES),
          "zeroshot_position": 1 / len(POSITIONS), "zeroshot_relation": 1 / len(RELATIONS),
          "retrieval_i2t": 1 / (DEFAULT_NEGATIVES + 1), "retrieval_t2i": 1 / (DEFAULT_NEGATIVES + 1)}

RECALL_AT = 5  # caption-file retrieval also reports recall@5


def is_zeroshot(task: str) -> bool:
    """Zero-shot classification tasks (the parity bar) are named zeroshot*, in every suite."""
    return task.startswith("zeroshot") and not task.endswith("_mean")


ImageEncoder = Callable[[np.ndarray], np.ndarray]
TextEncoder = Callable[[np.ndarray], np.ndarray]


def class_prompts(task: str) -> list[str]:
    """Class prompts of an attribute task, in label order."""
    if task == "zeroshot_color":
        return [("an " if c[0] in "aeiou" else "a ") + f"{c} object" for c in COLORS]
    if task == "zeroshot_shape":
        return [f"a {s}" for s in SHAPES]
    if task == "zeroshot_size":
        return [f"a {s} object" for s in SIZES]
    if task == "zeroshot_position":
        return [f"an object {POSITION_PHRASES[p]}" for p in POSITIONS]
    raise ValueError(f"{task} has no fixed class prompts")


@dataclass
class ZeroShotSet:
    name: str
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int, index into the prompts
    prompts: list[list[str]]  # per sample: its candidate texts (shared for attribute tasks)


@dataclass
class RetrievalSet:
    images: np.ndarray  # (N, H, W, 3) uint8, the true image of each query
    captions: list[list[str]]  # (N, K+1): true caption first, then the negatives' captions
    neg_images: np.ndarray  # (N, K, H, W, 3) uint8: the negatives rendered


def build_tasks(n: int = 500, image_size: int = 64, seed: int = 0,
                negatives: int = DEFAULT_NEGATIVES, tasks=TASKS, split: str = "test") -> dict:
    """All evaluation sets from `split` (the test split; `val` for model selection during
    training); deterministic in (n, image_size, seed, split)."""
    out: dict = {}
    attr = {"zeroshot_color": ("color", list(COLORS)), "zeroshot_shape": ("shape", list(SHAPES)),
            "zeroshot_size": ("size", list(SIZES)), "zeroshot_position": ("position", list(POSITIONS))}
    for t_id, task in enumerate(ZEROSHOT_TASKS):
        if task not in tasks:
            continue
        images, labels, prompts = [], [], []
        for i in range(n):
            if task == "zeroshot_relation":
                scene, _ = scene_at(split, i, seed, n_objects=2, stream=(t_id,))
                texts = [caption_of(_with_relation(scene, r)) for r in RELATIONS]
                labels.append(RELATIONS.index(scene.relation))
                prompts.append(texts)
            else:
                scene, _ = scene_at(split, i, seed, n_objects=1, stream=(t_id,))
                key, values = attr[task]
                value = scene.position if key == "position" else getattr(scene.objects[0], key)
                labels.append(values.index(value))
            images.append(render(scene, image_size))
        if task != "zeroshot_relation":
            prompts = [class_prompts(task)] * n
        out[task] = ZeroShotSet(task, np.stack(images), np.asarray(labels), prompts)
    if any(t in tasks for t in RETRIEVAL_TASKS):
        images, captions, negs = [], [], []
        i = 0
        while len(images) < n:
            scene, rng = scene_at(split, i, seed, stream=(len(ZEROSHOT_TASKS),))
            i += 1
            hn = hard_negatives(scene, rng, negatives)
            if len(hn) < negatives:
                continue
            images.append(render(scene, image_size))
            captions.append([scene.caption] + [s.caption for _, s in hn])
            negs.append(np.stack([render(s, image_size) for _, s in hn]))
        out["retrieval"] = RetrievalSet(np.stack(images), captions, np.stack(negs))
    return out


def _with_relation(scene, relation):
    import dataclasses

    return dataclasses.replace(scene, relation=relation)


def _encode_texts(encode_text: TextEncoder, tokenizer, texts: list, cache: dict) -> np.ndarray:
    """Unit embeddings of candidate texts; a candidate that is a tuple of prompts (one class under
    several templates) is the normalized mean of its prompts' embeddings (CLIP's prompt ensemble)."""
    flat = [t for c in texts for t in ((c,) if isinstance(c, str) else c)]
    todo = sorted({t for t in flat if t not in cache})
    if todo:
        emb = encode_text(tokenizer(todo))
        cache.update(zip(todo, emb))
    rows = [cache[c] if isinstance(c, str) else np.mean([cache[t] for t in c], axis=0) for c in texts]
    return unit_rows(np.stack(rows))


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row L2-normalized in float64, as the apps' `Scoring.normalize` (a zero row stays zero)."""
    e = np.asarray(x, np.float64)
    if e.size == 0:
        return e
    n = np.linalg.norm(e, axis=-1, keepdims=True)
    return e / np.where(n > 0, n, 1.0)


def _unit(encode):
    """`encode` with its embeddings L2-normalized (`unit_rows`)."""
    return lambda x: unit_rows(encode(x))


def predict(sets: dict, encode_image: ImageEncoder, encode_text: TextEncoder, tokenizer) -> dict[str, np.ndarray]:
    """The index each task's argmax picks, per sample: the class (zero-shot), the caption among
    true + negatives (`retrieval_i2t`), the image among true + negatives (`retrieval_t2i`).
    Comparing two encoders' predictions gives their top-1 agreement.

    Scores are cosine similarities: both embeddings are L2-normalized here (in float64) before the
    dot product, as CLIP defines zero-shot scores and as the demo apps and `mobile_sdk.golden`
    score. The eager towers already return unit vectors, so their predictions do not change; an
    artifact's output whose norm is off (an int8 L2 normalization rounds the norm by up to ~10%)
    is scored on its direction, as the apps score it."""
    preds: dict[str, np.ndarray] = {}
    cache: dict = {}
    encode_image, encode_text = _unit(encode_image), _unit(encode_text)
    for task, s in sets.items():
        if not isinstance(s, ZeroShotSet):
            continue
        img = encode_image(s.images)
        shared = all(p is s.prompts[0] for p in s.prompts)  # one candidate list for every sample
        if shared and len(s.labels):
            preds[task] = np.argmax(img @ _encode_texts(encode_text, tokenizer, s.prompts[0], cache).T, axis=1)
        else:
            preds[task] = np.array([int(np.argmax(_encode_texts(encode_text, tokenizer, s.prompts[k], cache) @ img[k]))
                                    for k in range(len(s.labels))], dtype=np.int64)
    if "captions" in sets:
        c = sets["captions"]
        img = encode_image(c.images)
        txt = _encode_texts(encode_text, tokenizer, c.captions, cache)
        sim = img @ txt.T  # (N images, M captions)
        k = min(RECALL_AT, sim.shape[1]), min(RECALL_AT, sim.shape[0])
        # the top-k, best first (column 0 is the top-1 that agreement compares); image-to-text
        # predicts the image whose caption ranks there, so two captions of one image are one answer
        preds["retrieval_i2t"] = c.image_of[np.argsort(-sim, axis=1, kind="stable")[:, :k[0]]]
        preds["retrieval_t2i"] = np.argsort(-sim.T, axis=1, kind="stable")[:, :k[1]]
    if "retrieval" in sets:
        r = sets["retrieval"]
        n, k = r.neg_images.shape[:2]
        img = encode_image(r.images)
        neg = encode_image(r.neg_images.reshape((n * k,) + r.neg_images.shape[2:])).reshape(n, k, -1)
        i2t, t2i = [], []
        for q in range(n):
            txt = _encode_texts(encode_text, tokenizer, r.captions[q], cache)
            i2t.append(int(np.argmax(txt @ img[q])))
            t2i.append(int(np.argmax(np.concatenate([img[q:q + 1], neg[q]]) @ txt[0])))
        preds["retrieval_i2t"], preds["retrieval_t2i"] = np.array(i2t), np.array(t2i)
    return preds


def accuracy(sets: dict, preds: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy (zero-shot), recall@1 (world retrieval: the truth is index 0), or recall@1 and
    recall@5 (`TASK@5`) over a caption file's whole gallery, of predictions, in [0, 1]."""
    out = {}
    for task, p in preds.items():
        if task in sets and isinstance(sets[task], ZeroShotSet):
            out[task] = float(np.mean(p == sets[task].labels)) if len(p) else 0.0
        elif "captions" in sets and task in RETRIEVAL_TASKS:
            image_of = sets["captions"].image_of
            # i2t: a hit is a caption of the query image (predictions are images); t2i: the caption's image
            hit = p == np.arange(len(p))[:, None] if task == "retrieval_i2t" else p == image_of[:, None]
            out[task] = float(np.mean(hit[:, 0])) if len(p) else 0.0
            out[f"{task}@{RECALL_AT}"] = float(np.mean(hit.any(axis=1))) if len(p) else 0.0
        else:
            out[task] = float(np.mean(p == 0)) if len(p) else 0.0
    return out


def score(sets: dict, encode_image: ImageEncoder, encode_text: TextEncoder, tokenizer) -> dict[str, float]:
    """Accuracy (zero-shot) or recall@1 (retrieval) of each task, in [0, 1]."""
    return accuracy(sets, predict(sets, encode_image, encode_text, tokenizer))


def summarize(results: dict[str, float]) -> dict[str, float]:
    """Means over the zero-shot tasks and the retrieval tasks (recall@1) present."""
    out = {}
    zs = [v for t, v in results.items() if is_zeroshot(t)]
    rt = [results[t] for t in RETRIEVAL_TASKS if t in results]
    if zs:
        out["zeroshot_mean"] = float(np.mean(zs))
    if rt:
        out["retrieval_mean"] = float(np.mean(rt))
    return out
