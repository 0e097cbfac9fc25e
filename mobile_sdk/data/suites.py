"""Evaluation suites: the data a model's answers are judged on, behind one interface.

A suite builds task sets at a model's input size (`Suite.sets(image_size, n)`), which
`tasks.predict` / `tasks.accuracy` score the same way for the eager model and for every artifact:

- `WorldSuite` (the default): the built-in world's test split: zero-shot colour / shape / size /
  position / relation and retrieval among hard negatives.
- `FolderSuite`: an image folder with one sub-folder per class (`cats/`, `dogs/`, ...) -> zero-shot
  top-1 over the class names, each class prompted with templates (default "a photo of a {}."; more
  than one template: the class embedding is the mean of its prompts' embeddings, as CLIP does).
- `CaptionSuite`: a JSONL file with one {"image": PATH, "caption": TEXT} per line (PATH relative to
  the file) -> image-to-text and text-to-image recall@1 and @5 over the whole set.

`load_suite(spec)` resolves a `--eval-data` value: `world`, a folder, or a `.jsonl` file. Images
are read and preprocessed as calibration images are (`preprocess.load_image`: centre crop, area
resize); a file that is not a usable image (not an image, empty, truncated, over PIL's
decompression-bomb limit, unreadable) is logged with the reason and skipped, and listed in the
suite's `skipped` and `describe()`; only a class (or a caption file) left without enough usable
images is an error, naming the files and reasons. Bad data raises `DataError` naming the file and
the fix: an empty class, fewer than 2 classes, a caption pointing at a missing file, a malformed
line, a template without `{}`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..preprocess import load_image
from .calibration import skipped_summary
from .tasks import RECALL_AT

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES = ("a photo of a {}.",)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class CaptionSet:
    """Full-gallery retrieval: every image against every caption."""
    images: np.ndarray  # (N, H, W, 3) uint8, one per distinct image file
    captions: list[str]  # (M,)
    image_of: np.ndarray  # (M,) int: the index of each caption's image
    files: list[str] = field(default_factory=list)  # (N,) image paths as the file names them


class Suite:
    """One evaluation suite. `sets(image_size, n)` -> {set name: set}: `ZeroShotSet` under its
    task name, the world's `RetrievalSet` under "retrieval", a `CaptionSet` under "captions"."""
    kind = "suite"
    name = ""

    def sets(self, image_size: int, n: int | None = None) -> dict:
        """The task sets at `image_size` (at most `n` per task / class / line), built once per
        (image_size, n): an export checks a user's data before converting and scores it after,
        from one read of the images."""
        cache = self.__dict__.setdefault("_sets", {})
        if (image_size, n) not in cache:
            cache[(image_size, n)] = self._build(image_size, n)
        return cache[(image_size, n)]

    def _build(self, image_size: int, n: int | None) -> dict:
        raise NotImplementedError

    def chance(self, sets: dict) -> dict[str, float]:
        """Each task's accuracy at random."""
        from .tasks import ZeroShotSet
        out = {}
        for key, s in sets.items():
            if isinstance(s, ZeroShotSet):
                out[key] = 1.0 / max(1, len(s.prompts[0]) if s.prompts else 1)
            elif isinstance(s, CaptionSet):
                from math import comb
                m, n = max(1, len(s.captions)), max(1, len(s.images))
                c = np.bincount(s.image_of, minlength=len(s.images)) if len(s.image_of) else np.zeros(1, int)
                k = min(RECALL_AT, m)
                # image-to-text: a random ranking of the M captions puts one of image i's c_i first
                out.update({"retrieval_i2t": float(np.mean(c / m)), "retrieval_t2i": 1 / n,
                            f"retrieval_i2t@{RECALL_AT}": float(np.mean([1 - comb(m - ci, k) / comb(m, k) for ci in c])),
                            f"retrieval_t2i@{RECALL_AT}": min(1.0, RECALL_AT / n)})
        return out

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name}


class WorldSuite(Suite):
    """The built-in world's tasks on one split (`test` by default; `val` for model selection)."""
    kind = "world"

    def __init__(self, split: str = "test", seed: int = 0):
        self.split, self.seed = split, seed
        self.name = "world" if split == "test" else f"world:{split}"

    def _build(self, image_size: int, n: int | None) -> dict:
        from .tasks import build_tasks
        return build_tasks(n=500 if n is None else n, image_size=image_size, seed=self.seed, split=self.split)

    def chance(self, sets: dict) -> dict[str, float]:
        from .tasks import CHANCE
        return {t: c for t, c in CHANCE.items() if t in sets or (t.startswith("retrieval") and "retrieval" in sets)}

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "split": self.split, "seed": self.seed}


def _read_images(paths: list[Path], size: int, what: str) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]]:
    """(images, indices of the paths read, skipped (path, reason)): unreadable files are reported."""
    images, kept, skipped = [], [], []
    for i, p in enumerate(paths):
        try:
            images.append(load_image(p, size))
            kept.append(i)
        except DataError as e:
            reason = getattr(e, "reason", None) or str(e)
            skipped.append((str(p), reason))
            log.warning("%s: skipping %s: %s", what, p, reason)
    return images, kept, skipped


def _read_text(path: Path, what: str, encoding: str = "utf-8") -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise DataError(f"{what} {path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from e


def read_templates(path: str | Path | None) -> tuple[str, ...]:
    """Prompt templates, one per line ("a photo of a {}."); blank lines and lines starting with #
    are ignored. None: the default template."""
    if path is None:
        return DEFAULT_TEMPLATES
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompts file not found: {path}; pass a text file with one template per line, "
                        f"such as: a photo of a {{}}.")
    lines = [ln.strip() for ln in _read_text(path, "prompts file").splitlines()]
    templates = tuple(ln for ln in lines if ln and not ln.startswith("#"))
    if not templates:
        raise DataError(f"prompts file {path} holds no template; write one per line, such as: a photo of a {{}}.")
    bad = [t for t in templates if t.count("{}") != 1 or not _formats(t)]
    if bad:
        raise DataError(f"prompts file {path}: each template needs exactly one {{}} where the class name goes "
                        f"and no other braces; these do not: {bad[:3]}")
    return templates


def _formats(template: str) -> bool:
    try:
        return template.format("x") == template.replace("{}", "x")
    except (IndexError, KeyError, ValueError):
        return False


def class_name(folder_name: str) -> str:
    """The class name a sub-folder stands for: `golden_retriever` -> `golden retriever`."""
    return " ".join(folder_name.replace("_", " ").replace("-", " ").split())


class FolderSuite(Suite):
    """Zero-shot classification over an image folder with one sub-folder per class."""
    kind = "folder"

    def __init__(self, root: str | Path, templates: tuple[str, ...] | None = None):
        self.root = Path(root)
        self.templates = tuple(templates or DEFAULT_TEMPLATES)
        if not self.root.is_dir():
            raise DataError(f"evaluation folder not found: {self.root}")
        self.name = self.root.resolve().name
        dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(dirs) < 2:
            raise DataError(f"evaluation folder {self.root} has {len(dirs)} class sub-folder(s); zero-shot "
                            f"classification needs at least 2: put each class's images in a sub-folder named "
                            f"after the class (e.g. {self.root}/cat/1.jpg, {self.root}/dog/2.jpg)")
        self.class_dirs = dirs
        self.classes = [class_name(d.name) for d in dirs]
        dup = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dup:
            raise DataError(f"evaluation folder {self.root}: sub-folders name the same class {dup}; rename them")
        self.skipped: list[tuple[str, str]] = []

    def prompts(self) -> list[tuple[str, ...]]:
        """Per class, its prompts (one per template)."""
        return [tuple(t.format(c) for t in self.templates) for c in self.classes]

    def _build(self, image_size: int, n: int | None) -> dict:
        from .tasks import ZeroShotSet

        images, labels, self.skipped = [], [], []
        for label, d in enumerate(self.class_dirs):
            files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
            files = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES or not p.suffix]
            read, _, skipped = _read_images(files[:n] if n else files, image_size, f"class {d.name}")
            self.skipped += skipped
            if not read:
                why = f" (skipped {len(skipped)} file(s): {skipped_summary(skipped)})" if skipped else ""
                raise DataError(f"class {d.name!r} in {self.root} has no readable image{why}; add PNG/JPEG images "
                                f"to {d} or remove the folder")
            images += read
            labels += [label] * len(read)
        candidates = self.prompts()
        return {"zeroshot": ZeroShotSet("zeroshot", np.stack(images), np.asarray(labels),
                                        [candidates] * len(labels))}

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "path": str(self.root.resolve()), "classes": self.classes,
                "templates": list(self.templates), "skipped": [s[0] for s in self.skipped]}


class CaptionSuite(Suite):
    """Image-text retrieval over a JSONL file of {"image": PATH, "caption": TEXT} lines."""
    kind = "captions"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"caption file not found: {self.path}; pass a JSONL file with one "
                            f'{{"image": "PATH", "caption": "TEXT"}} per line')
        self.name = self.path.stem
        self.lines: list[tuple[Path, str]] = []
        for n, line in enumerate(_read_text(self.path, "caption file", "utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                image = rec["image"] if "image" in rec else rec["file"]
                caption = rec["caption"]
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise DataError(f'{self.path}:{n}: expected {{"image": "PATH", "caption": "TEXT"}} JSON, got '
                                f"{line[:80]!r} ({type(e).__name__})") from e
            if not isinstance(image, str) or not isinstance(caption, str) or not caption.strip():
                raise DataError(f'{self.path}:{n}: "image" must be a path and "caption" a non-empty text')
            img = Path(image) if Path(image).is_absolute() else self.path.parent / image
            if not img.is_file():
                raise DataError(f"{self.path}:{n}: image {image!r} not found (looked for {img}); paths are relative "
                                f"to the caption file's folder")
            self.lines.append((img, caption))
        self.skipped: list[tuple[str, str]] = []

    def _build(self, image_size: int, n: int | None) -> dict:
        lines = self.lines[:n] if n else self.lines
        files = list(dict.fromkeys(p for p, _ in lines))
        images, kept, self.skipped = _read_images(files, image_size, self.path.name)
        index = {files[i]: k for k, i in enumerate(kept)}
        pairs = [(index[p], c) for p, c in lines if p in index]
        if len(images) < 2:
            why = f" (skipped {len(self.skipped)} file(s): {skipped_summary(self.skipped)})" if self.skipped else ""
            raise DataError(f"{self.path}: retrieval needs at least 2 readable images, found {len(images)}{why}; "
                            f"point its lines at PNG/JPEG images")
        return {"captions": CaptionSet(np.stack(images), [c for _, c in pairs], np.asarray([i for i, _ in pairs]),
                                       [str(files[i]) for i in kept])}

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "path": str(self.path.resolve()), "lines": len(self.lines),
                "skipped": [s[0] for s in self.skipped]}


def load_suite(spec: str | Path | Suite | None = None, prompts: str | Path | None = None) -> Suite:
    """--eval-data: None or "world" (the built-in world's test split), a folder of class
    sub-folders, or a .jsonl caption file. `prompts`: a templates file for a folder suite."""
    if isinstance(spec, Suite):
        return spec
    if spec is None or str(spec) == "world":
        if prompts is not None:
            raise DataError("--prompts applies to an image-folder suite (--eval-data FOLDER); the world has its own prompts")
        return WorldSuite()
    path = Path(spec)
    if not path.exists():
        raise DataError(f"--eval-data {spec}: not found; pass `world`, a folder with one sub-folder of images per "
                        f"class, or a .jsonl file of {{\"image\", \"caption\"}} lines")
    if path.is_dir():
        return FolderSuite(path, read_templates(prompts))
    if prompts is not None:
        raise DataError("--prompts applies to an image-folder suite (--eval-data FOLDER), not to a caption file")
    if path.suffix == ".jsonl" or path.is_file():
        return CaptionSuite(path)
    raise DataError(f"--eval-data {spec}: not found; pass `world`, a folder with one sub-folder of images per class, "
                    f"or a .jsonl file of {{\"image\", \"caption\"}} lines")


def sample_inputs(sets: dict, limit: int = 100) -> tuple[np.ndarray, list[str]]:
    """Up to `limit` images and texts of the suite, for tensor-level comparisons (parity's
    "test" inputs): the world's retrieval images and true captions, a folder's images and class
    prompts, a caption file's images and captions."""
    from .tasks import ZeroShotSet

    if "retrieval" in sets:
        r = sets["retrieval"]
        return r.images[:limit], [c[0] for c in r.captions[:limit]]
    if "captions" in sets:
        c = sets["captions"]
        return c.images[:limit], c.captions[:limit]
    zs = [s for s in sets.values() if isinstance(s, ZeroShotSet)]
    if not zs:
        raise DataError("the evaluation suite has no task")
    images = np.concatenate([s.images for s in zs])
    # spread over the classes rather than the first class's images only
    pick = np.linspace(0, len(images) - 1, min(limit, len(images))).round().astype(int)
    texts = list(dict.fromkeys(t for s in zs for cand in s.prompts[0] for t in _texts(cand)))
    return images[pick], texts[:limit]


def _texts(candidate) -> tuple[str, ...]:
    return (candidate,) if isinstance(candidate, str) else tuple(candidate)


__all__ = ["CaptionSet", "CaptionSuite", "DEFAULT_TEMPLATES", "FolderSuite", "Suite", "WorldSuite", "load_suite",
           "read_templates", "sample_inputs"]
