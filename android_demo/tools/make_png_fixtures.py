"""Writes the extra PNG fixtures of the core tests (core/src/test/resources/png_fixtures/) and what
Python's preprocessing makes of them (expected.json), for the PNG variants the golden samples do
not cover: grey of depth 1/2/4/16, grey and RGB with tRNS, 16-bit RGB / RGBA / grey+alpha,
palettes of depth 1/4/8 with partial tRNS, Adam7 interlacing, every filter type, and EXIF
orientations 2-8 in an eXIf chunk. The PNGs are encoded here by hand (zlib + struct) so every
colour type / depth / filter / interlace combination is exactly the one named.

Run from the repository root with the project's virtual environment:
    .venv/bin/python android_demo/tools/make_png_fixtures.py
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from mobile_sdk.preprocess import load_image, to_rgb_array  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "core" / "src" / "test" / "resources" / "png_fixtures"
SIZES = (8, 20)
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples: np.ndarray, depth: int) -> bytes:
    """One row of samples (already interleaved) -> bytes at `depth` bits, MSB first."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    bits = np.zeros(len(samples) * depth, np.uint8)
    for k in range(depth):
        bits[k::depth] = (samples >> (depth - 1 - k)) & 1
    return np.packbits(bits).tobytes()


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filter_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray([kind])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev else 0
        c = prev[i - bpp] if prev and i >= bpp else 0
        pred = (0, a, b, (a + b) // 2, paeth(a, b, c))[kind]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def encode(samples: np.ndarray, color_type: int, depth: int, interlace: bool = False,
           plte: bytes | None = None, trns: bytes | None = None, exif: bytes | None = None) -> bytes:
    """samples: (h, w, channels) integer array -> PNG bytes; filter type cycles 0..4 by row."""
    h, w, ch = samples.shape
    assert ch == CHANNELS[color_type]
    bpp = max(1, ch * depth // 8)
    raw = bytearray()
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    row_no = 0
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        prev = b""
        for r in sub:
            row = pack_row(r.reshape(-1), depth)
            raw += filter_row(row_no % 5, row, prev, bpp)
            prev = row
            row_no += 1
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if exif is not None:
        png += chunk(b"eXIf", exif)
    if plte is not None:
        png += chunk(b"PLTE", plte)
    if trns is not None:
        png += chunk(b"tRNS", trns)
    z = zlib.compress(bytes(raw), 9)
    png += chunk(b"IDAT", z[: len(z) // 2]) + chunk(b"IDAT", z[len(z) // 2:])  # two IDATs
    return png + chunk(b"IEND", b"")


def exif_blob(orientation: int, little: bool) -> bytes:
    e = "<" if little else ">"
    head = (b"II" if little else b"MM") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0)
    return head + ifd + struct.pack(e + "I", 0)


def main() -> None:
    rng = np.random.default_rng(10)
    OUT.mkdir(parents=True, exist_ok=True)
    cases: dict[str, bytes] = {}

    def rnd(h, w, c, hi):
        return rng.integers(0, hi + 1, size=(h, w, c), dtype=np.int64)

    cases["grey1_13x9.png"] = encode(rnd(9, 13, 1, 1), 0, 1)
    cases["grey2_11x7_interlaced.png"] = encode(rnd(7, 11, 1, 3), 0, 2, interlace=True)
    cases["grey4_10x10.png"] = encode(rnd(10, 10, 1, 15), 0, 4)
    cases["grey8_trns_9x6.png"] = encode(rnd(6, 9, 1, 255), 0, 8, trns=struct.pack(">H", 7))
    g16 = rnd(12, 9, 1, 65535)
    g16[0, 0, 0], g16[0, 1, 0], g16[1, 0, 0] = 0, 65535, 32768
    cases["grey16_trns_9x12_interlaced.png"] = encode(g16, 0, 16, interlace=True, trns=struct.pack(">H", 1000))
    cases["rgb8_trns_10x8.png"] = encode(rnd(8, 10, 3, 255), 2, 8, trns=struct.pack(">HHH", 1, 2, 3))
    cases["rgb16_7x5.png"] = encode(rnd(5, 7, 3, 65535), 2, 16)
    cases["rgba8_15x17_interlaced.png"] = encode(rnd(17, 15, 4, 255), 6, 8, interlace=True)
    cases["rgba16_9x9_interlaced.png"] = encode(rnd(9, 9, 4, 65535), 6, 16, interlace=True)
    cases["la8_8x11.png"] = encode(rnd(11, 8, 2, 255), 4, 8)
    cases["la16_6x6.png"] = encode(rnd(6, 6, 2, 65535), 4, 16)
    pal2 = bytes([200, 10, 30, 5, 250, 90])
    cases["pal1_17x3.png"] = encode(rnd(3, 17, 1, 1), 3, 1, plte=pal2)
    pal11 = rng.integers(0, 256, 33, dtype=np.int64).astype(np.uint8).tobytes()
    cases["pal4_trns_partial_12x7.png"] = encode(rnd(7, 12, 1, 10), 3, 4, plte=pal11, trns=bytes([0, 128, 255, 7, 64]))
    pal200 = rng.integers(0, 256, 600, dtype=np.int64).astype(np.uint8).tobytes()
    alphas = rng.integers(0, 256, 150, dtype=np.int64).astype(np.uint8).tobytes()
    cases["pal8_trns_14x10_interlaced.png"] = encode(rnd(10, 14, 1, 199), 3, 8, interlace=True, plte=pal200, trns=alphas)
    cases["pal8_simple_trns_6x9.png"] = encode(rnd(9, 6, 1, 3), 3, 8, plte=pal11[:12], trns=bytes([255, 0]))
    cases["rgb8_1x1.png"] = encode(rnd(1, 1, 3, 255), 2, 8)
    cases["rgb8_1x17_tall.png"] = encode(rnd(17, 1, 3, 255), 2, 8)
    for o in range(1, 9):
        cases[f"exif_orientation{o}_5x3.png"] = encode(rnd(3, 5, 3, 255), 2, 8, exif=exif_blob(o, little=o % 2 == 0))
    cases["exif_orientation6_rgba_7x4.png"] = encode(rnd(4, 7, 4, 255), 6, 8, exif=exif_blob(6, little=False))

    expected = {"sizes": list(SIZES), "files": []}
    for name, data in cases.items():
        path = OUT / name
        path.write_bytes(data)
        with Image.open(path) as im:
            im.load()
            rgb = to_rgb_array(im)
            mode = im.mode
        entry = {"file": name, "pil_mode": mode, "rgb_shape": list(rgb.shape), "rgb": rgb.reshape(-1).tolist(),
                 "pixels": {str(s): load_image(path, s).reshape(-1).tolist() for s in SIZES}}
        expected["files"].append(entry)
    (OUT / "expected.json").write_text(json.dumps(expected) + "\n")
    print(f"wrote {len(cases)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
