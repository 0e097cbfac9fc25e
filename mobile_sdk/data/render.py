"""Scene -> uint8 RGB pixels: textured background, distractors, anti-aliased shapes, noise.

Shapes are drawn with PIL at SUPERSAMPLE x the output size and box-filtered down, so edges are
anti-aliased the way a camera would blur them. All randomness comes from `scene.render_seed`, so
a scene and its hard negatives share background, distractors and noise.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

from .world import Obj, Scene

SUPERSAMPLE = 4


def _hsv_to_rgb255(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h / 360.0, s, v)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape with circumradius r (pixels), rotated by `angle` degrees."""
    if shape == "square":
        pts = [(1, 45 + 90 * i) for i in range(4)]
    elif shape == "diamond":
        pts = [(1, 90 * i) for i in range(4)]
    elif shape == "triangle":
        pts = [(1, -90 + 120 * i) for i in range(3)]
    elif shape == "star":
        pts = [(1 if i % 2 == 0 else 0.42, -90 + 36 * i) for i in range(10)]
    elif shape == "cross":  # plus sign, arm half-width w, arm length 1
        w = 0.34
        xy = [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1),
              (-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w), (-w, 1)]
        pts = [(math.hypot(x, y), math.degrees(math.atan2(y, x))) for x, y in xy]
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    out = []
    for rho, deg in pts:
        t = math.radians(deg + angle)
        out.append((cx + r * rho * math.cos(t), cy + r * rho * math.sin(t)))
    return out


def _draw_obj(draw: ImageDraw.ImageDraw, o: Obj, side: int) -> None:
    cx, cy, r = o.x * side, o.y * side, o.r * side
    fill = _hsv_to_rgb255(*o.hsv)
    if o.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_polygon(o.shape, cx, cy, r, o.angle), fill=fill)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-saturation textured background, float32 (size, size, 3) in [0, 1]."""
    base = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0, 0.25),
                                        rng.uniform(0.25, 0.85)), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(5)
    amp = rng.uniform(0.04, 0.16)
    if kind == 0:  # flat
        tex = np.zeros((size, size), np.float32)
    elif kind == 1:  # linear gradient
        t = rng.uniform(0, 2 * np.pi)
        tex = amp * 2 * ((xx - 0.5) * np.cos(t) + (yy - 0.5) * np.sin(t))
    elif kind == 2:  # stripes
        t, f = rng.uniform(0, np.pi), rng.uniform(3, 10)
        tex = amp * np.sin(2 * np.pi * f * (xx * np.cos(t) + yy * np.sin(t)) + rng.uniform(0, 6.3))
    elif kind == 3:  # checker
        n = int(rng.integers(3, 9))
        tex = amp * (((xx * n).astype(int) + (yy * n).astype(int)) % 2 * 2 - 1)
    else:  # smooth blobs: coarse noise, bilinearly upsampled
        n = int(rng.integers(3, 8))
        coarse = rng.uniform(-1, 1, (n, n)).astype(np.float32)
        img = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
        tex = amp * np.asarray(img, np.float32)
    return np.clip(base[None, None, :] + tex[..., None], 0.0, 1.0)


def render(scene: Scene, size: int = 64) -> np.ndarray:
    """Pixels of a scene: uint8 array (size, size, 3), RGB."""
    rng = np.random.default_rng(scene.render_seed)
    bg = _background(rng, size)
    big = size * SUPERSAMPLE
    canvas = Image.fromarray((bg * 255).round().astype(np.uint8)).resize((big, big), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    # Distractors: thin grey lines and tiny coloured specks, smaller than any "small" object.
    for _ in range(int(rng.integers(0, 3))):
        g = int(rng.integers(40, 220))
        draw.line([tuple(rng.uniform(0, big, 2)), tuple(rng.uniform(0, big, 2))],
                  fill=(g, g, g), width=int(rng.integers(2, 5)))
    for _ in range(int(rng.integers(0, 4))):
        c = _hsv_to_rgb255(rng.uniform(0, 360), rng.uniform(0.3, 1.0), rng.uniform(0.4, 1.0))
        cx, cy = rng.uniform(0, big, 2)
        rr = rng.uniform(0.010, 0.025) * big
        draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=c)
    for o in scene.objects:
        _draw_obj(draw, o, big)
    img = np.asarray(canvas.reduce(SUPERSAMPLE), np.float32) / 255.0
    # Camera: global contrast/brightness jitter and sensor noise.
    img = (img - 0.5) * rng.uniform(0.8, 1.1) + 0.5 + rng.uniform(-0.06, 0.06)
    img = img + rng.normal(0.0, rng.uniform(0.0, 0.06), img.shape)
    return (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)
