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
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError

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
    """Any PIL image -> uint8 (size, size, 3) RGB pixels."""
    if size < 1:
        raise DataError(f"size must be >= 1, got {size}")
    return center_crop_resize(to_rgb_array(img), size)


def load_image(path, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Open an image file and preprocess it; a clear DataError for anything unreadable."""
    try:
        with Image.open(path) as img:
            img.load()
            return preprocess_image(img, size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from e


def to_model_input(pixels: np.ndarray):
    """uint8 (N, H, W, 3) or (H, W, 3) -> float32 torch tensor (N, 3, H, W) in [0, 255]."""
    import torch

    if pixels.ndim == 3:
        pixels = pixels[None]
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise DataError(f"expected pixels (N, H, W, 3), got shape {pixels.shape}")
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float()
