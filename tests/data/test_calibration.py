from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_sdk.data.calibration import load_calibration, write_split
from mobile_sdk.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def test_committed_calibration_data_is_intact():
    cal = load_calibration(REPO / "calibration_data")  # verifies SHA256SUMS
    assert len(cal.images) >= 200 and cal.images.shape[1:] == (64, 64, 3)
    assert len(cal.captions) == len(cal.images) and not cal.skipped


def test_committed_calibration_data_is_reproducible(tmp_path):
    write_split(tmp_path, "calibration", 5)
    for name in sorted(p.name for p in tmp_path.glob("*.png")):
        ours = np.asarray(Image.open(tmp_path / name))
        assert (ours == np.asarray(Image.open(REPO / "calibration_data" / name))).all()


def test_user_folder_skips_non_images(tmp_path):
    Image.new("RGB", (80, 50), (1, 2, 3)).save(tmp_path / "a.jpg")
    Image.new("L", (10, 10)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    cal = load_calibration(tmp_path, size=32)
    assert cal.images.shape == (2, 32, 32, 3) and cal.files == ["a.jpg", "b.png"]
    assert sorted(f for f, _ in cal.skipped) == ["broken.png", "notes.txt"]
    assert cal.captions == []


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no readable images"):
        load_calibration(tmp_path)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="skipped 1 non-image"):
        load_calibration(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_calibration(tmp_path / "nope")


def test_checksum_mismatch_is_an_error(tmp_path):
    write_split(tmp_path, "calibration", 3)
    Image.new("RGB", (64, 64)).save(tmp_path / "calibration_00000.png")
    with pytest.raises(DataError, match="does not match its checksum"):
        load_calibration(tmp_path)
