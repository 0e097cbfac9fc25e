"""`mobile-sdk export`: the CLI over the converters, its defaults and its errors."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import copy_calibration

from mobile_sdk.checkpoint import load_checkpoint, save_checkpoint
from mobile_sdk.cli import main
from mobile_sdk.errors import ConfigError
from mobile_sdk.exporter import parse_precisions, resolve_targets
from mobile_sdk.models import create_model


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def tiny_ckpt(tmp_path):
    return save_checkpoint(create_model("tiny"), tmp_path / "tiny.safetensors", name="tiny")


@pytest.fixture
def small_calibration(tmp_path):
    """8 images + captions of calibration_data/ (no checksum file: a user's folder)."""
    return copy_calibration(tmp_path / "cal")


def test_targets_and_precisions_parse():
    assert resolve_targets(["all"]) == ["executorch", "tflite", "coreml"]
    assert resolve_targets(["tflite", "executorch", "tflite"]) == ["tflite", "executorch"]
    assert parse_precisions(["fp32", "int8"], ["executorch"]) == {"executorch": ["fp32", "int8"]}
    assert parse_precisions(["coreml:pal4"], ["executorch", "coreml"]) == {"coreml": ["pal4"]}
    with pytest.raises(ConfigError, match="PLATFORM:PRECISION"):
        parse_precisions(["int8"], ["executorch", "tflite"])
    with pytest.raises(ConfigError, match="not among the targets"):
        parse_precisions(["coreml:pal4"], ["executorch"])


@pytest.mark.slow
def test_export_executorch_runs_and_matches(runner, tiny_ckpt, small_calibration, tmp_path):
    from converters.executorch import PteRunner

    out = tmp_path / "out"
    # fp32 only: the int8 lowerings are checked in tests/converters/test_executorch.py
    r = runner.invoke(main, ["export", "--checkpoint", str(tiny_ckpt), "--target", "executorch", "--precision", "fp32",
                             "--out", str(out), "--calibration", str(small_calibration), "--no-parity", "--no-bench"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (out / "executorch").iterdir() if p.is_file())
    assert sorted(p.name for p in (out / "executorch" / "debug").iterdir()) == \
        ["image_fp32.pte", "text_fp32.pte"]  # localization twins
    assert names == ["image_fp32.json", "image_fp32.pte", "text_fp32.json", "text_fp32.pte"]
    model, _ = load_checkpoint(tiny_ckpt)
    ids = torch.randint(0, model.cfg.text.vocab_size, (1, model.cfg.text.context_length), dtype=torch.int32)
    with torch.no_grad():
        ref = model.text(ids).numpy()
    got = PteRunner(out / "executorch" / "text_fp32.pte")(ids.numpy())
    assert np.allclose(got, ref, atol=1e-5)
    meta = json.loads((out / "executorch" / "image_fp32.json").read_text())
    assert meta["precision"] == "fp32" and meta["inputs"][0]["shape"] == [1, 3, 64, 64]


@pytest.mark.parametrize("args, message", [
    (["--target", "executorch", "--precision", "pal4"], "executorch has no precision 'pal4'"),
    (["--target", "executorch", "--target", "tflite", "--precision", "int8"], "PLATFORM:PRECISION"),
    (["--checkpoint", "/nonexistent.safetensors"], "checkpoint not found"),
])
def test_export_bad_options_exit_2(runner, tiny_ckpt, tmp_path, args, message):
    args = args if "--checkpoint" in args else ["--checkpoint", str(tiny_ckpt)] + args
    r = runner.invoke(main, ["export", "--out", str(tmp_path / "o")] + args)
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output


def test_export_bad_calibration_keeps_earlier_artifacts(runner, tiny_ckpt, tmp_path):
    out = tmp_path / "out" / "executorch"
    out.mkdir(parents=True)
    (out / "image_int8.pte").write_bytes(b"earlier")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    r = runner.invoke(main, ["export", "--checkpoint", str(tiny_ckpt), "--target", "executorch",
                             "--out", str(tmp_path / "out"), "--calibration", str(empty)])
    assert r.exit_code == 2 and "no readable images" in r.output, r.output
    assert (out / "image_int8.pte").read_bytes() == b"earlier" and len(list(out.iterdir())) == 1


def test_export_text_needs_captions(runner, tiny_ckpt, small_calibration, tmp_path):
    (small_calibration / "captions.jsonl").unlink()
    r = runner.invoke(main, ["export", "--checkpoint", str(tiny_ckpt), "--target", "executorch", "--tower", "text",
                             "--out", str(tmp_path / "o"), "--calibration", str(small_calibration)])
    assert r.exit_code == 2 and "no captions" in r.output and "--tower image" in r.output, r.output


@pytest.mark.slow
def test_parallel_export_runs_every_job_and_stops_on_a_failure(small_calibration, tmp_path, caplog):
    """Worker processes write every artifact, returned in the plan's order, checked against eager,
    and pass their log records on; a job that fails raises its own error type here and stops the
    run. (Every pipeline test converts in worker processes too.)"""
    import logging

    from mobile_sdk.errors import ConversionError
    from mobile_sdk.exporter import export

    torch.manual_seed(0)
    model = create_model("tiny")
    with caplog.at_level(logging.INFO, logger="mobile_sdk"):
        arts = export(model, tmp_path / "two", ["executorch"], {"executorch": ["fp32"]},
                      calibration_dir=small_calibration, workers=2)
    assert [(a.platform, a.tower) for a in arts] == [("executorch", "image"), ("executorch", "text")]
    for a in arts:
        assert a.path.is_file() and a.extra["eager_check"]["cosine_min"] > 0.9999
    assert sum("executorch text fp32 ->" in r.getMessage() for r in caplog.records) == 1  # from the worker

    with torch.no_grad():
        model.text.proj.weight.fill_(float("nan"))
    with pytest.raises(ConversionError, match="text fp32.*NaN"):
        export(model, tmp_path / "bad", ["executorch"], {"executorch": ["fp32"]}, calibration_dir=small_calibration,
               workers=2)
