import io

import numpy as np
import pytest
from PIL import Image

from mobile_sdk.errors import DataError
from mobile_sdk.preprocess import center_crop_resize, load_image, preprocess_image, to_model_input


def _reference(rgb, size):
    """Brute-force definition: explicit overlap weights, exact integers."""
    h, w, _ = rgb.shape
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = rgb[y0:y0 + s, x0:x0 + s].astype(np.int64)
    i, j = np.arange(size)[:, None], np.arange(s)[None]
    wts = np.maximum(np.minimum((i + 1) * s, (j + 1) * size) - np.maximum(i * s, j * size), 0)
    acc = np.einsum("ys,xt,stc->yxc", wts, wts, sq)
    return ((acc + s * s // 2) // (s * s)).astype(np.uint8)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (64, 64), (100, 37), (65, 63), (7, 64), (200, 300)])
@pytest.mark.parametrize("size", [1, 8, 64])
def test_resize_matches_definition(shape, size):
    rgb = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    assert (center_crop_resize(rgb, size) == _reference(rgb, size)).all()


def test_identity_and_constant():
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert (center_crop_resize(rgb, 64) == rgb).all()
    assert (center_crop_resize(np.full((300, 500, 3), 77, np.uint8), 64) == 77).all()


def test_center_crop_takes_the_middle():
    rgb = np.zeros((64, 192, 3), np.uint8)
    rgb[:, 64:128] = 200  # only the centre square is bright
    assert (center_crop_resize(rgb, 32) == 200).all()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "1", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_any_mode(mode):
    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8)).convert(mode)
    out = preprocess_image(img, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8


def test_transparency_composited_over_white():
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    assert (preprocess_image(img, 4) == 255).all()
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert (preprocess_image(half, 4) == (255 * 127 + 127) // 255).all()
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([10, 20, 30] * 256)
    pal.info["transparency"] = 0
    assert (preprocess_image(pal, 2) == 255).all()


def test_16bit_grey_scaled():
    img = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    assert img.mode.startswith("I;16")
    assert (preprocess_image(img, 2) == 255).all()


def test_tiny_and_huge_images():
    assert (preprocess_image(Image.new("RGB", (1, 1), (9, 8, 7)), 64) == [9, 8, 7]).all()
    huge = Image.new("RGB", (5000, 3000), (50, 60, 70))
    assert (preprocess_image(huge, 64) == [50, 60, 70]).all()


def test_png_roundtrip_and_exif(tmp_path):
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 10))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display: left half becomes the top half
    p = tmp_path / "x.jpg"
    img.save(p, exif=exif, quality=100)
    out = load_image(p, 10)
    assert out[:2].mean() > 200 and out[-2:].mean() < 50


def test_unreadable_and_empty(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image"):
        load_image(bad)
    with pytest.raises(DataError, match="cannot read image"):
        load_image(tmp_path / "missing.png")
    truncated = tmp_path / "trunc.png"
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "PNG")
    truncated.write_bytes(buf.getvalue()[:40])
    with pytest.raises(DataError):
        load_image(truncated)
    with pytest.raises(DataError, match="no pixels"):
        center_crop_resize(np.zeros((0, 5, 3), np.uint8))


def test_to_model_input():
    x = to_model_input(np.full((2, 4, 4, 3), 255, np.uint8))
    assert x.shape == (2, 3, 4, 4) and x.dtype.is_floating_point and float(x.max()) == 255.0
    with pytest.raises(DataError):
        to_model_input(np.zeros((4, 4), np.uint8))
