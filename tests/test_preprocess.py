import io
import os
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from mobile_sdk.errors import DataError, ImageError
from mobile_sdk.preprocess import center_crop_resize, image_info, load_image, preprocess_image, to_model_input


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


# --------------------------------------------------------------------------- unusable image files
def bomb_png(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels: a few dozen bytes on disk, and PIL checks its
    decompression-bomb limit against the header when it opens the file."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def cut_in_half(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()[:len(buf.getvalue()) // 2]


def noise(w=64, h=64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))


LIMIT = f"{Image.MAX_IMAGE_PIXELS:,}"


@pytest.mark.parametrize("name, content, reason", [
    # over 2x the limit: PIL raises DecompressionBombError
    ("bomb.png", bomb_png(20000, 20000), rf"400,000,000 pixels, over PIL's decompression-bomb limit of {LIMIT} pixels"),
    # between 1x and 2x: PIL only warns; the SDK refuses it the same
    ("big.png", bomb_png(12000, 12000), rf"144,000,000 pixels, over PIL's decompression-bomb limit of {LIMIT} pixels"),
    ("half.png", cut_in_half(noise(), "PNG"), "the file is truncated"),
    ("half.jpg", cut_in_half(noise(), "JPEG"), "the file is truncated"),
    ("empty.png", b"", r"the file is empty \(0 bytes\)"),
    ("notes.png", b"hello, not an image", r"not an image \(PIL recognizes no image format in it\)"),
])
def test_unusable_image_files_are_named_with_reason_and_fix(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match=rf"cannot read image .*{name}: {reason}.*; \w") as e:
        load_image(path)
    assert isinstance(e.value, DataError) and e.value.path == str(path) and e.value.fix
    assert not str(e.value).endswith(";")


def test_bomb_message_gives_the_fix_and_changes_no_global_state(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(12000, 12000))
    before = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    with pytest.raises(ImageError, match=r"downscale it .*or, if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS"):
        load_image(tmp_path / "bomb.png")
    assert (Image.MAX_IMAGE_PIXELS, list(warnings.filters)) == before


def test_bomb_limit_is_the_one_pil_has_now(tmp_path, monkeypatch):
    """A plain 100x100 image over a lowered limit: 2x over is PIL's error, 1x-2x its warning; both refused."""
    noise(100, 100).save(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # 10,000 pixels: over 2x
    with pytest.raises(ImageError, match="10,000 pixels, over PIL's decompression-bomb limit of 4,000 pixels"):
        load_image(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 8000)  # 1x-2x: a warning in PIL
    with pytest.raises(ImageError, match="10,000 pixels, over PIL's decompression-bomb limit of 8,000 pixels"):
        load_image(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10000)
    assert load_image(tmp_path / "a.png", 8).shape == (8, 8, 3)


def test_folders_missing_and_unreadable_files_are_named(tmp_path, monkeypatch):
    with pytest.raises(ImageError, match=rf"cannot read image {tmp_path}: it is a folder, not an image file; pass"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match=r"cannot read image .*missing.png: no such file; check the path"):
        load_image(tmp_path / "missing.png")
    locked = tmp_path / "locked.png"
    noise().save(locked)
    if os.geteuid() == 0:  # root reads a chmod 000 file: make the open fail as it does for a user
        real_open = Image.open

        def denied(fp, *a, **k):
            if str(fp) == str(locked):
                raise PermissionError(13, "Permission denied", str(fp))
            return real_open(fp, *a, **k)
        monkeypatch.setattr(Image, "open", denied)
    else:
        locked.chmod(0)
    with pytest.raises(ImageError, match=r"cannot read image .*locked.png: permission denied; make the file readable"):
        load_image(locked)


def test_an_image_opened_by_the_caller_is_decoded_with_the_same_checks(tmp_path):
    (tmp_path / "half.jpg").write_bytes(cut_in_half(noise(), "JPEG"))
    img = Image.open(tmp_path / "half.jpg")  # opens fine: the JPEG is truncated past its header
    with pytest.raises(ImageError, match=r"cannot read image .*half.jpg: the file is truncated"):
        preprocess_image(img)
    img = Image.open(io.BytesIO((tmp_path / "half.jpg").read_bytes()))  # no file name to give
    with pytest.raises(ImageError, match=r"cannot read image \(the PIL image passed in\): the file is truncated"):
        preprocess_image(img)
    (tmp_path / "big.png").write_bytes(bomb_png(12000, 12000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the caller ignored PIL's warning; decoding it is still refused
        img = Image.open(tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"big.png: 144,000,000 pixels, over PIL's decompression-bomb limit"):
        preprocess_image(img)
    good = tmp_path / "good.png"
    noise(40, 30).save(good)
    assert (preprocess_image(Image.open(good), 16) == load_image(good, 16)).all()


def test_image_info_reads_through_the_same_checks(tmp_path):
    Image.new("LA", (7, 5)).save(tmp_path / "a.png")
    assert image_info(tmp_path / "a.png") == {"mode": "LA", "size": [7, 5]}
    (tmp_path / "b.png").write_bytes(cut_in_half(noise(), "PNG"))
    with pytest.raises(ImageError, match="b.png: the file is truncated"):
        image_info(tmp_path / "b.png")


def test_image_error_pickles():
    import pickle

    e = pickle.loads(pickle.dumps(ImageError("a.png", "the file is empty (0 bytes)", "re-save it")))
    assert (e.path, e.reason, e.fix, str(e)) == ("a.png", "the file is empty (0 bytes)", "re-save it",
                                                 "cannot read image a.png: the file is empty (0 bytes); re-save it")
