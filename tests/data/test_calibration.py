from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_sdk.data.calibration import MIN_RECOMMENDED, load_calibration, write_split
from mobile_sdk.errors import DataError
from tests.test_preprocess import bomb_png, cut_in_half, noise

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
    with pytest.raises(DataError, match=r"skipped 1 file\(s\): x.txt \(not an image"):
        load_calibration(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_calibration(tmp_path / "nope")


def test_checksum_mismatch_is_an_error(tmp_path):
    write_split(tmp_path, "calibration", 3)
    Image.new("RGB", (64, 64)).save(tmp_path / "calibration_00000.png")
    with pytest.raises(DataError, match="does not match its checksum"):
        load_calibration(tmp_path)


def bad_and_good_images(folder: Path, good: int = 2) -> Path:
    """`good` usable PNGs and one of each unusable kind, all built here."""
    folder.mkdir(exist_ok=True)
    for i in range(good):
        Image.new("RGB", (40, 30), (10 * i, 20, 30)).save(folder / f"good{i}.png")
    (folder / "bomb.png").write_bytes(bomb_png(20000, 20000))
    (folder / "half.jpg").write_bytes(cut_in_half(noise(), "JPEG"))
    (folder / "empty.png").write_bytes(b"")
    return folder


def test_bad_images_are_skipped_with_the_reason(tmp_path, caplog):
    folder = bad_and_good_images(tmp_path / "cal")
    with caplog.at_level("WARNING", logger="mobile_sdk.data.calibration"):
        cal = load_calibration(folder, size=16)
    assert cal.files == ["good0.png", "good1.png"] and cal.images.shape == (2, 16, 16, 3)
    reasons = dict(cal.skipped)
    assert sorted(reasons) == ["bomb.png", "empty.png", "half.jpg"]
    assert reasons["bomb.png"].startswith("400,000,000 pixels, over PIL's decompression-bomb limit of")
    assert reasons["half.jpg"].startswith("the file is truncated")
    assert reasons["empty.png"] == "the file is empty (0 bytes)"
    messages = [r.getMessage() for r in caplog.records]
    for name, reason in reasons.items():
        assert f"calibration: skipping {name} in {folder}: {reason}" in messages
    few = [m for m in messages if "recommended" in m]
    assert few == [f"calibration: 2 usable images in {folder} (3 skipped); int8 activation ranges from so few "
                   f"samples will be poor (fp32/fp16 exports do not use them): {MIN_RECOMMENDED} or more are "
                   f"recommended (the bundled calibration_data/ has 300)"]


def test_a_folder_with_no_usable_image_names_every_file_and_reason(tmp_path):
    folder = bad_and_good_images(tmp_path / "cal", good=0)
    with pytest.raises(DataError, match=r"has no readable images; skipped 3 file\(s\): bomb.png \(400,000,000 "
                                        r"pixels, over .*\); empty.png \(the file is empty \(0 bytes\)\); "
                                        r"half.jpg \(the file is truncated.*\)\. Point it at"):
        load_calibration(folder)


def test_few_images_warn_once_unless_the_caller_asked_for_few(tmp_path, caplog):
    folder = tmp_path / "cal"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "only.png")
    with caplog.at_level("WARNING", logger="mobile_sdk.data.calibration"):
        load_calibration(folder, size=8)
    assert [r.getMessage() for r in caplog.records] == [
        f"calibration: 1 usable image in {folder}; int8 activation ranges from so few samples will be poor "
        f"(fp32/fp16 exports do not use them): {MIN_RECOMMENDED} or more are recommended (the bundled "
        f"calibration_data/ has 300)"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="mobile_sdk.data.calibration"):
        load_calibration(folder, size=8, limit=1)  # a benchmark's single input
        for i in range(MIN_RECOMMENDED):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / f"{i:03d}.png")
        assert len(load_calibration(folder, size=8, limit=300).images) == MIN_RECOMMENDED + 1
    assert caplog.records == []


def test_export_cli_warns_skips_and_fails_on_no_usable_image(tmp_path, monkeypatch):
    """`mobile-sdk export --calibration FOLDER`: bad images are one-line warnings and skipped (the
    conversion gets the good ones; stopped there by the test, converting takes half a minute); a
    folder with none usable exits 2 with a one-line error naming the files, before converting."""
    from click.testing import CliRunner

    import mobile_sdk.exporter
    from mobile_sdk.checkpoint import save_checkpoint
    from mobile_sdk.cli import main
    from mobile_sdk.errors import ConversionError
    from mobile_sdk.models import create_model

    ckpt = save_checkpoint(create_model("tiny"), tmp_path / "tiny.safetensors", name="tiny")
    seen = {}

    def stop(model, out, *a, inputs=None, **k):
        seen["images"] = len(inputs.calibration["image"])
        raise ConversionError("stopped by the test after the calibration data")

    monkeypatch.setattr(mobile_sdk.exporter, "export", stop)
    args = ["export", "--checkpoint", str(ckpt), "--target", "executorch", "--precision", "fp32", "--tower", "image",
            "--no-parity", "--no-bench", "--out", str(tmp_path / "out"), "--calibration"]
    folder = bad_and_good_images(tmp_path / "cal")
    r = CliRunner().invoke(main, args + [str(folder)])
    assert "Traceback" not in r.output
    assert r.exit_code == 2 and "error: stopped by the test after the calibration data" in r.output, r.output
    assert seen == {"images": 2}
    lines = r.output.splitlines()
    for name, reason in [("bomb.png", "400,000,000 pixels, over PIL's decompression-bomb limit of"),
                         ("half.jpg", "the file is truncated"), ("empty.png", "the file is empty (0 bytes)")]:
        assert any(f"calibration: skipping {name} in {folder}: {reason}" in line for line in lines), r.output
    assert any("2 usable images in" in line and f"{MIN_RECOMMENDED} or more are recommended" in line
               for line in lines), r.output

    seen.clear()
    bad = bad_and_good_images(tmp_path / "bad", good=0)
    r = CliRunner().invoke(main, args + [str(bad)])
    assert r.exit_code == 2 and "Traceback" not in r.output and not seen, r.output
    error = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"calibration folder {bad} has no readable images" in error[0], r.output
    assert all(f"{n} (" in error[0] for n in ("bomb.png", "empty.png", "half.jpg")), r.output
