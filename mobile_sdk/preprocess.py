"""Image preprocessing: any PIL image -> uint8 RGB pixels (size, size, 3). The apps mirror it.

Steps, all in integer arithmetic so Kotlin and Swift can reproduce every pixel exactly:
1. EXIF orientation is applied (`ImageOps.exif_transpose`).
2. Mode -> RGB. Images with transparency (RGBA, LA, PA, P with a transparent index) are composited
   over white: out = (c * a + 255 * (255 - a) + 127) // 255. 16-bit grey (I;16*, I) is scaled
   to 8 bits: (v * 255 + 32767) // 65535, clipped to [0, 65535] first. Float grey (F) is clipped
   to [0, 255] and rounded half to even. Every other mode uses PIL's `convert("RGB")`.
3. Center crop to the largest square: offsets ((w - s) // 2, (h - s) // 2), s = min(w, h).
   This is "resize the shorter side, then center crop" done in the other order, which keeps
   every step exact.
4. Area resize of the s x s square to size x size: output pixel i covers source interval
   [i*s, (i+1)*s) and source pixel j covers [j*size, (j+1)*size), both in units of 1/size
   source pixels; weights are the integer overlaps, so each output is
   (sum_w w * v + s*s // 2) // (s*s) over the separable 2-D overlaps: exact integers.
The model takes these uint8 values as float32 in [0, 255], NCHW; normalization is in the graph.

Every image the SDK reads from a file goes through `open_image` (calibration, evaluation suites,
golden vectors, `load_image`): the file is decoded in full inside it, so a truncated or damaged file,
a file that is no image, an empty file, a folder, an unreadable file or one over PIL's
decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`; PIL's warning between 1x and 2x the limit
counts as over it) is an `ImageError` naming the file, the reason in words and the fix.
`preprocess_image` decodes a caller's not-yet-decoded PIL image the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError, ImageError

DEFAULT_SIZE = 64
_ROW_CHUNK = 256  # rows per chunk in the resize, bounds memory on huge images


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Steps 1-2: uint8 (h, w, 3)."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.int64)
        rgb, a = rgba[..., :3], rgba[..., 3:4]
        return ((rgb * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    if mode.startswith("I;16") or mode == "I":
        v = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
        g = ((v * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "F":
        g = np.rint(np.clip(np.asarray(img, dtype=np.float64), 0, 255)).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _area_sum(a: np.ndarray, dst: int) -> np.ndarray:
    """Area-resize along axis 0 of an int64 array, unnormalized: output i is the sum over source
    pixels j of overlap(i, j) * a[j], where output i covers units [i*src, (i+1)*src) and source j
    covers [j*dst, (j+1)*dst). Computed from prefix sums: C(t) = dst * P[t // dst] + (t % dst) * a[t // dst]."""
    src = a.shape[0]
    prefix = np.concatenate([np.zeros((1,) + a.shape[1:], np.int64), np.cumsum(a, axis=0)])
    t = np.arange(dst + 1, dtype=np.int64) * src
    q, r = t // dst, t % dst
    tail = a[np.minimum(q, src - 1)] * r.reshape((-1,) + (1,) * (a.ndim - 1))
    c = dst * prefix[q] + tail
    return c[1:] - c[:-1]


def center_crop_resize(rgb: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Steps 3-4 on a uint8 (h, w, 3) array."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DataError(f"expected uint8 (h, w, 3) pixels, got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    if h == 0 or w == 0:
        raise DataError(f"image has no pixels ({w}x{h})")
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = rgb[y0:y0 + s, x0:x0 + s]
    # Pass 1 along x (row chunks bound the int64 copy), pass 2 along y; weights total s * s.
    rows = [_area_sum(sq[r:r + _ROW_CHUNK].astype(np.int64).transpose(1, 0, 2), size).transpose(1, 0, 2)
            for r in range(0, s, _ROW_CHUNK)]
    acc = _area_sum(np.concatenate(rows, axis=0), size)
    denom = s * s
    return ((acc + denom // 2) // denom).astype(np.uint8)


def preprocess_image(img: Image.Image, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Any PIL image -> uint8 (size, size, 3) RGB pixels. An image opened by the caller and not yet
    decoded (`Image.open(path)`) is decoded here: a truncated or damaged one is an ImageError
    naming its file."""
    return _preprocess(img, size, getattr(img, "filename", None) or "(the PIL image passed in)")


def _preprocess(img: Image.Image, size: int, name) -> np.ndarray:
    if size < 1:
        raise DataError(f"size must be >= 1, got {size}")
    return center_crop_resize(_decoded_rgb(img, name), size)


# What PIL raises for a file it cannot decode: besides OSError ("image file is truncated", "broken
# data stream", UnidentifiedImageError), its format plugins raise these for malformed data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError,
                  ZeroDivisionError, MemoryError)
_BOMB_FIX = ("downscale it (models read a few hundred pixels a side at most), or, if you trust the file, raise "
             "PIL.Image.MAX_IMAGE_PIXELS in your own code before calling the SDK")
_RESAVE_FIX = "re-save or re-download it, or remove it"


def _bomb(name, pixels: int | None) -> ImageError:
    limit = Image.MAX_IMAGE_PIXELS
    count = f"{pixels:,} pixels" if pixels is not None else "more pixels"
    return ImageError(name, f"{count}, over PIL's decompression-bomb limit of {limit:,} pixels "
                            f"(PIL.Image.MAX_IMAGE_PIXELS)", _BOMB_FIX)


def _bomb_pixels(e: BaseException) -> int | None:
    """The pixel count in PIL's decompression-bomb message ("Image size (N pixels) exceeds ...")."""
    m = re.search(r"\((\d+) pixels\)", str(e))
    return int(m.group(1)) if m else None


def _decode_reason(e: BaseException, what: str = "its image data is damaged") -> tuple[str, str]:
    """(reason in words, fix) for an exception PIL raised while reading an image."""
    text = str(e)
    if "truncated" in text:
        return (f"the file is truncated: its image data ends early, as after an interrupted copy or download "
                f"({text})", _RESAVE_FIX)
    if isinstance(e, MemoryError):
        return "not enough memory to decode it", "downscale it or free memory"
    return f"{what} ({type(e).__name__}: {text})", _RESAVE_FIX


@contextlib.contextmanager
def _image_errors(name, what: str = "its image data is damaged") -> Iterator[None]:
    """Inside the block, PIL's decompression-bomb warning is an error, and what PIL raises for an
    unusable image becomes an ImageError naming `name`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _bomb(name, _bomb_pixels(e)) from e
    except _DECODE_ERRORS as e:
        reason, fix = _decode_reason(e, what)
        raise ImageError(name, reason, fix) from e


def _decoded_rgb(img: Image.Image, name) -> np.ndarray:
    """Steps 1-2 of an image that may still have to be decoded (an `Image.open` result): its pixels
    are read here, under the decompression-bomb limit, and any decoding failure is an ImageError."""
    if getattr(img, "tile", None) and Image.MAX_IMAGE_PIXELS and img.width * img.height > Image.MAX_IMAGE_PIXELS:
        raise _bomb(name, img.width * img.height)  # not decoded yet: decoding would allocate all of it
    with _image_errors(name):
        img.load()
        return to_rgb_array(img)


@contextlib.contextmanager
def open_image(path) -> Iterator[Image.Image]:
    """The one way the SDK reads an image file: `with open_image(path) as img:` gives the image,
    decoded in full (a truncated file fails here, not later), under PIL's decompression-bomb limit;
    the file is closed after the block. Anything unusable is an ImageError naming the file, the
    reason in words and the fix."""
    try:
        empty = os.path.isfile(path) and os.path.getsize(path) == 0
    except (OSError, TypeError, ValueError):
        empty = False  # a file object, or a path that open() below explains
    if empty:
        raise ImageError(path, "the file is empty (0 bytes)", _RESAVE_FIX)
    try:
        with _image_errors(path, "cannot open it"):
            img = Image.open(path)
    except ImageError as e:
        cause = e.__cause__
        if isinstance(cause, FileNotFoundError):
            raise ImageError(path, "no such file", "check the path") from cause
        if isinstance(cause, IsADirectoryError):
            raise ImageError(path, "it is a folder, not an image file", "pass an image file") from cause
        if isinstance(cause, PermissionError):
            raise ImageError(path, "permission denied", "make the file readable (chmod +r) or copy it "
                                                        "somewhere readable") from cause
        if isinstance(cause, UnidentifiedImageError):
            raise ImageError(path, "not an image (PIL recognizes no image format in it)",
                             "pass PNG, JPEG or another format PIL reads, or remove it") from cause
        raise
    with img:
        with _image_errors(path):
            img.load()
        yield img


def load_image(path, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Open an image file and preprocess it; an ImageError (a DataError) naming the file, the reason
    and the fix for anything unusable."""
    with open_image(path) as img:
        return _preprocess(img, size, path)


def image_info(path) -> dict:
    """{"mode", "size": [w, h]} of an image file, read as every image is (`open_image`)."""
    with open_image(path) as img:
        return {"mode": img.mode, "size": list(img.size)}


def to_model_input(pixels: np.ndarray):
    """uint8 (N, H, W, 3) or (H, W, 3) -> float32 torch tensor (N, 3, H, W) in [0, 255]."""
    import torch

    if pixels.ndim == 3:
        pixels = pixels[None]
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise DataError(f"expected pixels (N, H, W, 3), got shape {pixels.shape}")
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float()
