"""Calibration data: the committed `calibration_data/` folder or any user folder of images.

A folder holds images (any format PIL reads) and optionally `captions.jsonl` (one
{"file": ..., "caption": ...} per line) and `SHA256SUMS` (`sha256sum` format). Images are read by
`preprocess.open_image`; a file that is not a usable image (not an image, empty, truncated, over
PIL's decompression-bomb limit, unreadable) is logged with the reason and skipped, and listed in
`CalibrationSet.skipped`; a folder with no usable image is an error naming the files and reasons;
fewer than MIN_RECOMMENDED usable images is a warning; a checksum mismatch is an error (the data
changed since it was committed).
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
# Fewer usable calibration images than this is a warning. The int8 converters set activation ranges
# from the calibration samples; LiteRT's clip each tensor at the 99.99th percentile of its values
# (converters/tflite.py), which is just the largest value seen until the tensor has given 1e4
# values: about 64 samples for an embedding-sized tensor of ~150 values. Below that the ranges
# follow the extremes of a handful of images. The bundled set has 300 (exporter.DEFAULT_CALIBRATION_N),
# where going from 128 to 300 still raised the int8 image tower's cosine.
MIN_RECOMMENDED = 64


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
        raise DataError(f"calibration folder not found: {folder}; pass --calibration with a folder of images "
                        f"(+ captions.jsonl for the text tower), or leave it out for the bundled calibration_data/")
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
            reason = getattr(e, "reason", None) or str(e)
            skipped.append((p.name, reason))
            log.warning("calibration: skipping %s in %s: %s", p.name, folder, reason)
    if not images:
        detail = f"; skipped {len(skipped)} file(s): {skipped_summary(skipped)}" if skipped else ""
        raise DataError(f"calibration folder {folder} has no readable images{detail}. "
                        f"Point it at a folder of PNG/JPEG files (or use the bundled calibration_data/)")
    if len(images) < MIN_RECOMMENDED and (limit is None or limit >= MIN_RECOMMENDED):
        # a smaller `limit` is the caller's choice (a benchmark input); too few in the folder is not
        log.warning("calibration: %d usable image%s in %s%s; int8 activation ranges from so few samples will be "
                    "poor (fp32/fp16 exports do not use them): %d or more are recommended (the bundled "
                    "calibration_data/ has 300)", len(images), "" if len(images) == 1 else "s", folder,
                    f" ({len(skipped)} skipped)" if skipped else "", MIN_RECOMMENDED)
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


def skipped_summary(skipped: list[tuple[str, str]], most: int = 5) -> str:
    """Skipped files with their reasons, for a message: a.png (reason); b.png (reason) ..."""
    text = "; ".join(f"{f} ({why})" for f, why in skipped[:most])
    return text + (f"; and {len(skipped) - most} more" if len(skipped) > most else "")


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
