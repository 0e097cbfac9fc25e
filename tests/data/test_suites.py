"""Evaluation suites: the user's image folder and caption file are scored like the world, and bad
data gets an error that names the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mobile_sdk.data.suites import CaptionSuite, FolderSuite, WorldSuite, load_suite, read_templates, sample_inputs
from mobile_sdk.data.tasks import accuracy, build_tasks, predict
from mobile_sdk.errors import DataError
from mobile_sdk.evaluate import agreement

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def _solid(path: Path, rgb, size=(20, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    """red/ green/ blue/ with 3 solid images each (odd sizes: the suite preprocesses them)."""
    root = tmp_path / "colours"
    for name, rgb in COLORS.items():
        for i in range(3):
            _solid(root / name / f"{i}.png", tuple(max(0, c - 10 * i) for c in rgb))
    return root


def _colour_encoders():
    """A toy model that knows colours: the image embedding is its mean RGB, a text's embedding the
    RGB of the colour word it contains (ids = the text's index in a lookup)."""
    texts: list[str] = []

    def tokenizer(batch):
        out = []
        for t in batch:
            if t not in texts:
                texts.append(t)
            out.append([texts.index(t)])
        return np.asarray(out, np.int32)

    def enc_img(pixels):
        return pixels.reshape(len(pixels), -1, 3).mean(1).astype(np.float64)

    def enc_txt(ids):
        rows = []
        for (i,) in ids:
            word = next((w for w in COLORS if w in texts[i]), None)
            rows.append(np.asarray(COLORS[word], np.float64) if word else np.ones(3))
        return np.stack(rows)

    return enc_img, enc_txt, tokenizer


def test_folder_suite_scores_zero_shot_over_class_names(colour_folder):
    suite = load_suite(colour_folder)
    assert isinstance(suite, FolderSuite) and suite.classes == ["blue", "green", "red"]
    sets = suite.sets(image_size=8)
    s = sets["zeroshot"]
    assert s.images.shape == (9, 8, 8, 3) and list(s.labels) == [0] * 3 + [1] * 3 + [2] * 3
    assert s.prompts[0] == [("a photo of a blue.",), ("a photo of a green.",), ("a photo of a red.",)]
    enc_img, enc_txt, tok = _colour_encoders()
    preds = predict(sets, enc_img, enc_txt, tok)
    assert accuracy(sets, preds) == {"zeroshot": 1.0}
    # another "model" that swaps red and blue agrees on green only
    swapped = {"zeroshot": np.where(preds["zeroshot"] == 0, 2, np.where(preds["zeroshot"] == 2, 0, 1))}
    assert agreement(preds, swapped)["zeroshot"] == pytest.approx(3 / 9)
    assert suite.chance(sets) == {"zeroshot": pytest.approx(1 / 3)}


def test_prompt_templates_are_ensembled(colour_folder, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# one per line\na photo of a {}.\n\na {} thing\n")
    suite = load_suite(colour_folder, prompts)
    assert suite.templates == ("a photo of a {}.", "a {} thing")
    sets = suite.sets(8)
    assert sets["zeroshot"].prompts[0][2] == ("a photo of a red.", "a red thing")
    enc_img, enc_txt, tok = _colour_encoders()
    assert accuracy(sets, predict(sets, enc_img, enc_txt, tok))["zeroshot"] == 1.0


def test_caption_suite_recall_at_1_and_5(tmp_path):
    rows = []
    for i, (name, rgb) in enumerate(COLORS.items()):
        _solid(tmp_path / "img" / f"{name}.png", rgb)
        rows.append({"image": f"img/{name}.png", "caption": f"something {name}"})
        rows.append({"image": f"img/{name}.png", "caption": f"a {name} square"})  # two captions per image
    (tmp_path / "caps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = load_suite(tmp_path / "caps.jsonl")
    assert isinstance(suite, CaptionSuite)
    sets = suite.sets(8)
    c = sets["captions"]
    assert len(c.images) == 3 and len(c.captions) == 6 and list(c.image_of) == [0, 0, 1, 1, 2, 2]
    enc_img, enc_txt, tok = _colour_encoders()
    preds = predict(sets, enc_img, enc_txt, tok)
    assert preds["retrieval_i2t"].shape == (3, 5) and preds["retrieval_t2i"].shape == (6, 3)
    acc = accuracy(sets, preds)
    assert acc == {"retrieval_i2t": 1.0, "retrieval_i2t@5": 1.0, "retrieval_t2i": 1.0, "retrieval_t2i@5": 1.0}
    # a text encoder blind to colour: top-1 falls to the first image, recall@5 (all 3 images) stays 1
    blind = predict(sets, enc_img, lambda ids: np.ones((len(ids), 3)), tok)
    acc = accuracy(sets, blind)
    assert acc["retrieval_t2i"] < 1.0 and acc["retrieval_t2i@5"] == 1.0
    assert agreement(preds, blind)["retrieval"] < 1.0
    img, txt = sample_inputs(sets, 4)
    assert len(img) == 3 and txt == c.captions[:4]


def test_world_suite_is_the_built_in_tasks():
    sets = WorldSuite().sets(64, 3)
    ref = build_tasks(n=3)
    assert set(sets) == set(ref)
    assert all((sets[k].images == ref[k].images).all() for k in sets)
    assert load_suite(None).kind == load_suite("world").kind == "world"


@pytest.mark.parametrize("case, message", [
    ("one_class", "needs at least 2"),
    ("empty_class", "has no readable image"),
    ("same_class", "name the same class"),
])
def test_bad_folders_are_named(tmp_path, case, message):
    root = tmp_path / "data"
    _solid(root / "cat" / "1.png", (1, 2, 3))
    if case == "empty_class":
        (root / "dog").mkdir()
        (root / "dog" / "notes.png").write_text("not an image")
    if case == "same_class":
        _solid(root / "sea_lion" / "1.png", (1, 2, 3))
        _solid(root / "sea-lion" / "1.png", (1, 2, 3))
    with pytest.raises(DataError, match=message) as e:
        load_suite(root).sets(8)
    if case == "empty_class":
        assert "dog" in str(e.value)


def test_unreadable_images_are_reported_and_skipped(colour_folder, caplog):
    (colour_folder / "red" / "broken.png").write_bytes(b"\x89PNG not really")
    suite = load_suite(colour_folder)
    sets = suite.sets(8)
    assert len(sets["zeroshot"].labels) == 9
    assert [Path(p).name for p, _ in suite.skipped] == ["broken.png"]
    assert "broken.png" in caplog.text
    assert suite.describe()["skipped"][0].endswith("broken.png")


def test_unusable_images_in_a_folder_are_skipped_with_the_reason(colour_folder, caplog):
    from tests.data.test_calibration import bad_and_good_images

    bad_and_good_images(colour_folder / "red", good=0)  # beside red's 3 good images
    suite = load_suite(colour_folder)
    with caplog.at_level("WARNING", logger="mobile_sdk.data.suites"):
        sets = suite.sets(8)
    assert len(sets["zeroshot"].labels) == 9
    reasons = {Path(p).name: why for p, why in suite.skipped}
    assert sorted(reasons) == ["bomb.png", "empty.png", "half.jpg"]
    assert reasons["bomb.png"].startswith("400,000,000 pixels, over PIL's decompression-bomb limit of")
    assert reasons["half.jpg"].startswith("the file is truncated")
    assert reasons["empty.png"] == "the file is empty (0 bytes)"
    for name, reason in reasons.items():
        assert f"class red: skipping {colour_folder / 'red' / name}: {reason}" in caplog.messages
    assert sorted(Path(p).name for p in suite.describe()["skipped"]) == sorted(reasons)


def test_a_class_or_caption_file_without_usable_images_names_the_files(colour_folder, tmp_path):
    from tests.data.test_calibration import bad_and_good_images

    for p in (colour_folder / "green").iterdir():
        p.unlink()
    bad_and_good_images(colour_folder / "green", good=0)
    with pytest.raises(DataError, match=r"class 'green' in .* has no readable image \(skipped 3 file\(s\): "
                                        r".*bomb.png \(400,000,000 pixels.*\); .*empty.png \(the file is empty "
                                        r"\(0 bytes\)\); .*half.jpg \(the file is truncated.*\)\); add PNG/JPEG"):
        load_suite(colour_folder).sets(8)
    caps = tmp_path / "caps.jsonl"
    caps.write_text("".join(json.dumps({"image": str(colour_folder / "green" / f), "caption": f"a {f}"}) + "\n"
                            for f in ("bomb.png", "half.jpg")) + json.dumps({"image": str(colour_folder / "red" / "0.png"),
                                                                            "caption": "red"}) + "\n")
    with pytest.raises(DataError, match=r"retrieval needs at least 2 readable images, found 1 \(skipped 2 file\(s\): "
                                        r".*bomb.png \(400,000,000 pixels.*half.jpg \(the file is truncated"):
        load_suite(caps).sets(8)


def test_eval_cli_warns_skips_and_fails_on_a_class_without_usable_images(colour_folder, tmp_path):
    """`mobile-sdk eval --eval-data FOLDER`: a bad image is a one-line warning and skipped; a class
    left with none is a one-line error (exit 2) naming the files and reasons."""
    from mobile_sdk.checkpoint import save_checkpoint
    from mobile_sdk.cli import main
    from mobile_sdk.models import create_model
    from tests.data.test_calibration import bad_and_good_images

    ckpt = save_checkpoint(create_model("tiny"), tmp_path / "tiny.safetensors", name="tiny")
    bad_and_good_images(colour_folder / "red", good=0)
    res = CliRunner().invoke(main, ["eval", "--checkpoint", str(ckpt), "--eval-data", str(colour_folder)])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    lines = res.output.splitlines()
    for name, reason in [("bomb.png", "400,000,000 pixels, over PIL's decompression-bomb limit of"),
                         ("half.jpg", "the file is truncated"), ("empty.png", "the file is empty (0 bytes)")]:
        assert any(f"class red: skipping {colour_folder / 'red' / name}: {reason}" in line for line in lines), res.output
    assert "zeroshot" in res.output
    for p in (colour_folder / "green").iterdir():
        p.unlink()
    bad_and_good_images(colour_folder / "green", good=0)
    res = CliRunner().invoke(main, ["eval", "--checkpoint", str(ckpt), "--eval-data", str(colour_folder)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    error = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "class 'green'" in error[0] and "has no readable image" in error[0], res.output
    assert all(f"{n} (" in error[0] for n in ("bomb.png", "empty.png", "half.jpg")), res.output


@pytest.mark.parametrize("line, message", [
    ('{"image": "missing.png", "caption": "a cat"}', "missing.png' not found"),
    ('{"caption": "a cat"}', "expected"),
    ("not json", "expected"),
    ('{"image": "ok.png", "caption": ""}', "non-empty"),
])
def test_bad_caption_lines_are_named(tmp_path, line, message):
    _solid(tmp_path / "ok.png", (1, 2, 3))
    path = tmp_path / "caps.jsonl"
    path.write_text(json.dumps({"image": "ok.png", "caption": "fine"}) + "\n" + line + "\n")
    with pytest.raises(DataError, match=message) as e:
        load_suite(path)
    assert "caps.jsonl:2" in str(e.value)


def test_bad_templates_and_specs(tmp_path, colour_folder):
    bad = tmp_path / "bad.txt"
    bad.write_text("a photo\n")
    with pytest.raises(DataError, match="exactly one"):
        read_templates(bad)
    with pytest.raises(DataError, match="prompts file not found"):
        read_templates(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="not found"):
        load_suite(tmp_path / "nowhere")
    with pytest.raises(DataError, match="--prompts applies"):
        load_suite("world", bad)


def test_eval_cli_on_a_user_folder(colour_folder, tmp_path):
    """`mobile-sdk eval --eval-data FOLDER --prompts FILE` on the shipped student, and a bad folder
    exits non-zero with the problem named."""
    from mobile_sdk.cli import main

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a {} object\n")
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(main, ["eval", "--eval-data", str(colour_folder), "--prompts", str(prompts),
                                    "--json", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert result["suite"]["kind"] == "folder" and result["suite"]["classes"] == ["blue", "green", "red"]
    assert set(result["tasks"]) == {"zeroshot"} and 0.0 <= result["tasks"]["zeroshot"] <= 1.0
    (colour_folder / "green").rename(tmp_path / "moved")
    (colour_folder / "blue").rename(tmp_path / "moved2")
    res = CliRunner().invoke(main, ["eval", "--eval-data", str(colour_folder)])
    assert res.exit_code == 2 and "at least 2" in res.output


def test_two_captions_of_one_image_are_one_answer(tmp_path):
    """Image-to-text predicts the image whose caption ranks first: a model that prefers the other
    caption of the right image agrees with one that prefers the first; chance counts captions per image."""
    from mobile_sdk.data.suites import CaptionSet

    sets = {"captions": CaptionSet(np.zeros((3, 4, 4, 3), np.uint8), ["a", "b", "c", "d"], np.array([0, 0, 1, 2]))}
    a = {"retrieval_i2t": np.array([[0, 1], [1, 0], [2, 0]])}
    b = {"retrieval_i2t": np.array([[0, 2], [1, 0], [2, 1]])}
    assert agreement(a, b)["retrieval_i2t"] == 1.0
    assert accuracy(sets, a) == {"retrieval_i2t": 1.0, "retrieval_i2t@5": 1.0}
    chance = CaptionSuite.chance(None, sets)
    assert chance["retrieval_i2t"] == pytest.approx((2 / 4 + 1 / 4 + 1 / 4) / 3)


def test_reports_of_a_caption_suite_render(tmp_path):
    """parity.md / parity.html for a caption file (recall@5 has no agreement of its own)."""
    from mobile_sdk.parity.report import write_reports

    acc = {"retrieval_i2t": 1.0, "retrieval_i2t@5": 1.0, "retrieval_t2i": 0.5, "retrieval_t2i@5": 1.0}
    art = {"platform": "executorch", "tower": "image", "precision": "fp32", "file": "executorch/image_fp32.pte",
           "bytes": 10, "status": "pass", "reasons": [], "tolerance": {}, "calibration": {"cosine_mean": 1.0},
           "test": {"cosine_mean": 1.0, "cosine_min": 1.0, "sqnr_db": 90.0}, "localization": None, "seconds": 0.1,
           "tasks": {"agreement": {"retrieval_i2t": 1.0, "retrieval_t2i": 1.0, "retrieval": 1.0, "overall": 1.0},
                     "accuracy": acc, "accuracy_delta": {t: 0.0 for t in acc}}}
    report = {"schema": 1, "folder": str(tmp_path), "checkpoint": "m", "model": "m", "calibration": "c",
              "n_calibration": 1, "n_test_per_task": 10, "reference_accuracy": acc, "artifacts": [art], "passed": True,
              "suite": {"kind": "captions", "name": "caps", "path": "/data/caps.jsonl", "lines": 4, "skipped": []}}
    paths = write_reports(report, tmp_path)
    md = (tmp_path / "parity.md").read_text()
    assert "retrieval_i2t@5" in md and "caption file /data/caps.jsonl" in md and len(paths) >= 3


def test_templates_with_other_braces_and_binary_files_are_named(tmp_path):
    for text in ("a {} in {city}\n", "a {0} and {}\n", "a {} }\n"):
        (tmp_path / "p.txt").write_text(text)
        with pytest.raises(DataError, match="no other braces"):
            read_templates(tmp_path / "p.txt")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(DataError, match="not UTF-8"):
        load_suite(tmp_path / "bin.jsonl")


def test_a_suite_reads_its_images_once_per_size(colour_folder, monkeypatch):
    """An export checks the user's data before converting and scores it after: one read."""
    import mobile_sdk.data.suites as suites

    calls = []
    real = suites.load_image
    monkeypatch.setattr(suites, "load_image", lambda p, size: calls.append(p) or real(p, size))
    suite = load_suite(colour_folder)
    first = suite.sets(8, 2)
    assert suite.sets(8, 2) is first and len(calls) == 6
    suite.sets(16, 2)
    assert len(calls) == 12
