"""Calibration data: the committed `calibration_data/` folder or any user folder of images.

A folder holds images (any format PIL reads) and optionally `captions.jsonl` (one
{"file": ..., "caption": ...} per line) and `SHA256SUMS` (`sha256sum` format). Files that are
not readable images are reported and skipped; a folder with no readable image is an error; a
checksum mismatch is an error (the data changed since it was committed).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..preprocess import load_image

log = logging.getLogger(__name__)
CAPTIONS, CHECKSUMS = "captions.jsonl", "SHA256SUMS"
_META = {CAPTIONS, CHECKSUMS, "README.md"}


@dataclass
class CalibrationSet:
    images: np.ndarray  # (N, size, size, 3) uint8, preprocessed
    files: list[str]  # image file names, same order
    captions: list[str]  # captions of the images that have one (captions.jsonl), possibly empty
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(folder: Path) -> Path:
    lines = [f"{sha256(p)}  {p.name}" for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS]
    (folder / CHECKSUMS).write_text("\n".join(lines) + "\n")
    return folder / CHECKSUMS


def verify_checksums(folder: Path) -> None:
    path = folder / CHECKSUMS
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            digest, name = line.split(maxsplit=1)
        except ValueError:
            raise DataError(f"{path}:{n}: malformed line {line!r}") from None
        f = folder / name.strip().lstrip("*")
        if not f.is_file():
            raise DataError(f"{f} is listed in {CHECKSUMS} but missing; restore it or regenerate the folder")
        if sha256(f) != digest:
            raise DataError(f"{f} does not match its checksum in {CHECKSUMS}; the calibration data changed. "
                            f"Restore it (git checkout) or regenerate the folder (see its README)")


def load_calibration(folder: str | Path, size: int = 64, limit: int | None = None) -> CalibrationSet:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"calibration folder not found: {folder}")
    if (folder / CHECKSUMS).is_file():
        verify_checksums(folder)
    images, files, skipped = [], [], []
    for p in sorted(folder.iterdir()):
        if p.name in _META or p.name.startswith(".") or not p.is_file():
            continue
        if limit is not None and len(images) >= limit:
            break
        try:
            images.append(load_image(p, size))
            files.append(p.name)
        except DataError as e:
            skipped.append((p.name, str(e.__cause__ or e)))
            log.warning("calibration: skipping %s (not a readable image)", p.name)
    if not images:
        detail = f"; skipped {len(skipped)} non-image file(s): {[s[0] for s in skipped[:5]]}" if skipped else ""
        raise DataError(f"calibration folder {folder} has no readable images{detail}. "
                        f"Point it at a folder of PNG/JPEG files (or use the bundled calibration_data/)")
    captions = []
    if (folder / CAPTIONS).is_file():
        by_file = {}
        for n, line in enumerate((folder / CAPTIONS).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                    by_file[rec["file"]] = rec["caption"]
                except (ValueError, KeyError, TypeError) as e:
                    raise DataError(f"{folder / CAPTIONS}:{n}: expected {{\"file\", \"caption\"}} JSON: {e}") from e
        captions = [by_file[f] for f in files if f in by_file]
    return CalibrationSet(np.stack(images), files, captions, skipped)


def write_split(folder: str | Path, split: str, n: int, image_size: int = 64, seed: int = 0) -> Path:
    """Write samples 0..n-1 of a split as PNGs + captions.jsonl + SHA256SUMS."""
    from PIL import Image

    from .splits import scene_at
    from .render import render

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / CAPTIONS, "w", encoding="utf-8") as f:
        for i in range(n):
            scene, _ = scene_at(split, i, seed)
            name = f"{split}_{i:05d}.png"
            Image.fromarray(render(scene, image_size)).save(folder / name, optimize=True)
            f.write(json.dumps({"file": name, "caption": scene.caption}) + "\n")
    write_checksums(folder)
    return folder
