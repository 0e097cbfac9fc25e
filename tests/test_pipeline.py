"""The one-command pipeline: all outputs on success; nothing partial on a failing target."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import copy_calibration

import converters.executorch as et
from mobile_sdk.checkpoint import save_checkpoint
from mobile_sdk.cli import main
from mobile_sdk.errors import ConversionError
from mobile_sdk.manifest import read_manifest
from mobile_sdk.models import create_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    cal = copy_calibration(root / "cal")
    torch.manual_seed(0)
    return root, cal, save_checkpoint(create_model("tiny"), root / "tiny.safetensors", name="tiny")


@pytest.mark.slow
def test_export_writes_everything_and_a_valid_manifest(setup):
    root, cal, ckpt = setup
    out = root / "out"
    r = CliRunner().invoke(main, ["export", "--checkpoint", str(ckpt), "--target", "executorch", "--precision", "fp32",
                                  "--out", str(out), "--calibration", str(cal), "--n", "4", "--no-bench"])
    assert r.exit_code == 0, r.output
    m = read_manifest(out)  # validates structure and every file's sha256
    assert {(a["tower"], a["precision"]) for a in m["artifacts"]} == {("image", "fp32"), ("text", "fp32")}
    assert all(a["parity"]["status"] == "pass" for a in m["artifacts"]), m["artifacts"]
    assert (out / "golden.json").is_file() and (out / "vocab.txt").is_file() and (out / "parity.html").is_file()
    meta = json.loads((out / "executorch" / "image_fp32.json").read_text())
    assert meta["path"] == "image_fp32.pte"  # relative: the folder can move
    desc = meta["extra"]["description"]  # the artifact describes itself, with the manifest's names
    assert set(desc["inputs"]) == {"pixels"} and set(desc["outputs"]) == {"embedding"}
    assert desc["preprocess"]["size"] == [64, 64] and desc["author"].startswith("mobile-sdk ")
    assert [a["default"] for a in m["artifacts"]] == [True, True]
    assert not [p for p in root.iterdir() if "staging" in p.name]
    assert "manifest:" in r.output and "PASS" in r.output


@pytest.mark.slow
def test_a_failing_target_leaves_no_partial_output(setup, monkeypatch):
    root, cal, ckpt = setup
    real = et.convert

    def fail_on_text(model, tower, *a, **k):
        if tower == "text":
            raise ConversionError("lowering of the text tower failed: injected")
        return real(model, tower, *a, **k)

    monkeypatch.setattr(et, "convert", fail_on_text)
    args = ["export", "--checkpoint", str(ckpt), "--target", "executorch", "--precision", "fp32",
            "--calibration", str(cal), "--no-bench", "--no-parity", "--workers", "1"]  # the patch is in this process
    new = root / "new"
    r = CliRunner().invoke(main, args + ["--out", str(new)])
    assert r.exit_code == 2 and "injected" in r.output, r.output
    assert not new.exists()  # the image tower had succeeded: nothing of it is left
    earlier = root / "earlier"
    (earlier / "executorch").mkdir(parents=True)
    (earlier / "executorch" / "image_fp32.pte").write_bytes(b"earlier")
    r = CliRunner().invoke(main, args + ["--out", str(earlier)])
    assert r.exit_code == 2
    assert [p.name for p in earlier.rglob("*") if p.is_file()] == ["image_fp32.pte"]
    assert (earlier / "executorch" / "image_fp32.pte").read_bytes() == b"earlier"
    assert not [p for p in root.iterdir() if "staging" in p.name]


@pytest.mark.slow
@pytest.mark.heavy
def test_export_twice_gives_the_same_files(setup):
    """The same checkpoint and calibration data give byte-identical artifacts on every
    platform (Core ML packages through converters.coreml.make_reproducible)."""
    root, cal, ckpt = setup
    sums = []
    for name in ("again_a", "again_b"):
        out = root / name
        # the text tower: every platform's writer, at a third of the image tower's conversion time
        r = CliRunner().invoke(main, ["export", "--checkpoint", str(ckpt), "--target", "all", "--out", str(out),
                                      "--calibration", str(cal), "--no-bench", "--no-parity", "--tower", "text",
                                      # the untrained tiny model's full-integer int8 cannot run (an
                                      # int8 DIV by a zero-quantized divisor): its CPU variant can
                                      "--precision", "tflite:int8_cpu"])
        assert r.exit_code == 0, r.output
        sums.append({a["file"]: a["sha256"] for a in read_manifest(out)["artifacts"]})
    assert {f.split("/")[0] for f in sums[0]} == {"executorch", "tflite", "coreml"}, sums[0]
    assert sums[0] == sums[1]


def test_each_platform_marks_one_default_precision():
    from mobile_sdk.errors import DataError
    from mobile_sdk.manifest import mark_defaults, validate_manifest

    def arts(*keys):
        return [{"platform": p, "tower": t, "precision": q} for p, q in keys for t in ("image", "text")]

    marked = mark_defaults(arts(("tflite", "int8"), ("tflite", "int8_cpu"), ("coreml", "fp32"), ("coreml", "pal4"),
                                ("executorch", "fp32")))
    assert {(a["platform"], a["precision"]) for a in marked if a["default"]} == {
        ("tflite", "int8_cpu"), ("coreml", "pal4"), ("executorch", "fp32")}
    # an image-only precision is chosen only when no precision has both towers
    only = mark_defaults(arts(("tflite", "fp32")) + [{"platform": "tflite", "tower": "image", "precision": "int8_cpu"}])
    assert {a["precision"] for a in only if a["default"]} == {"fp32"}
    m = json.loads((Path(__file__).parent / "golden" / "manifest.json").read_text())
    for a in m["artifacts"]:
        a["default"] = a["platform"] == "tflite"
    with pytest.raises(DataError, match="more than one tflite precision is marked default"):
        validate_manifest(m)
    m["artifacts"][0]["default"] = "yes"
    with pytest.raises(DataError, match="artifacts/0/default: 'yes' is not of type 'boolean'"):
        validate_manifest(m)
