"""Quantization-aware fine-tuning: the simulated int8 forward, and a short fine-tune that must
bring it closer to the original while the float forward stays close."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint, save_checkpoint
from mobile_sdk.cli import main
from mobile_sdk.compress.qat import QATConfig, fake_int8, finetune, forward_int8, training_captions
from mobile_sdk.errors import ConfigError
from mobile_sdk.models import create_model


@pytest.fixture(scope="module")
def student():
    model, _ = load_checkpoint(default_checkpoint())
    return model.float().eval()


def test_fake_int8_is_a_256_level_grid_with_half_step_error():
    x = torch.randn(4096) * 3 + 1
    y = fake_int8(x)
    assert len(torch.unique(y)) <= 256
    step = (x.max() - x.min()) / 255
    assert float((y - x).abs().max()) <= float(step) / 2 + 1e-6
    assert torch.equal(fake_int8(torch.zeros(5)), torch.zeros(5))


def test_float_path_is_the_tower_and_the_int8_path_differs(student):
    ids = training_captions(64)
    with torch.no_grad():
        ref = student.text(ids)
        same = forward_int8(student.text, ids, q=lambda x: x)
        sim = forward_int8(student.text, ids)
    assert float((same - ref).abs().max()) < 1e-5
    cos = F.cosine_similarity(sim, ref)
    assert 0.9 < float(cos.mean()) < 0.9999  # int8 everywhere costs something, but not everything


def test_short_finetune_improves_the_int8_simulation(student):
    cfg = QATConfig(steps=40, batch_size=64, captions=1024, probe_images=64, lr=1e-4)
    tuned, report = finetune(student, cfg)
    b, a = report["before"], report["after"]
    assert a["int8_sim_cos_mean"] > b["int8_sim_cos_mean"] + 0.003, report
    assert a["float_cos_mean"] > 0.998, report
    assert torch.equal(tuned.visual.proj.weight, student.visual.proj.weight)  # the image tower is untouched
    assert not torch.equal(tuned.text.proj.weight, student.text.proj.weight)


def test_config_errors():
    with pytest.raises(ConfigError, match="text"):
        QATConfig(tower="image")
    with pytest.raises(ConfigError):
        QATConfig(steps=0)


def test_cli_writes_a_loadable_checkpoint_and_report(tmp_path):
    src = save_checkpoint(create_model("tiny").eval(), tmp_path / "tiny.safetensors", name="tiny")
    out = tmp_path / "q" / "tiny_qat.safetensors"
    r = CliRunner().invoke(main, ["qat", "--checkpoint", str(src), "--out", str(out), "--steps", "3",
                                  "--batch-size", "16", "--captions", "64", "--probe-images", "16", "--no-progress"])
    assert r.exit_code == 0, r.output
    model, meta = load_checkpoint(out)
    assert meta["name"] == "tiny-qat" and "qat" in meta["info"]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["config"]["steps"] == 3 and np.isfinite(report["after"]["int8_sim_cos_mean"])
    bad = CliRunner().invoke(main, ["qat", "--checkpoint", str(tmp_path / "missing.safetensors"), "--out",
                                    str(tmp_path / "x.safetensors"), "--steps", "1"])
    assert bad.exit_code != 0 and not (tmp_path / "x.safetensors").exists()
