import json

import numpy as np
import pytest
from click.testing import CliRunner

from mobile_sdk.checkpoint import save_checkpoint
from mobile_sdk.cli import main
from mobile_sdk.models import create_model


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def tiny_ckpt(tmp_path):
    return save_checkpoint(create_model("tiny"), tmp_path / "tiny.safetensors", name="tiny")


def test_help_and_models(runner):
    r = runner.invoke(main, ["--help"])
    assert r.exit_code == 0 and "train" in r.output and "eval" in r.output
    r = runner.invoke(main, ["models"])
    assert r.exit_code == 0 and "teacher" in r.output and "student" in r.output


def test_data_writes_a_split(runner, tmp_path):
    r = runner.invoke(main, ["data", "--split", "val", "--n", "3", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "d" / "captions.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all((tmp_path / "d" / json.loads(l)["file"]).is_file() for l in lines)
    assert (tmp_path / "d" / "SHA256SUMS").is_file()


def test_eval_prints_table_and_json(runner, tiny_ckpt, tmp_path):
    out = tmp_path / "r.json"
    r = runner.invoke(main, ["eval", "--checkpoint", str(tiny_ckpt), "--n", "8", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "zeroshot_color" in r.output and "retrieval_t2i" in r.output
    res = json.loads(out.read_text())
    assert set(res["tasks"]) >= {"zeroshot_color", "zeroshot_relation", "retrieval_i2t"}
    assert all(0.0 <= v <= 1.0 for v in res["tasks"].values())
    assert res["params"] > 0 and res["fp32_bytes"] == 4 * res["params"]


@pytest.mark.parametrize("args, message", [
    (["eval", "--checkpoint", "/nonexistent.safetensors"], "checkpoint not found"),
    (["train", "--model", "nope", "--out", "/tmp/x"], "unknown model 'nope'"),
])
def test_errors_exit_2_with_a_message(runner, args, message):
    r = runner.invoke(main, args)
    assert r.exit_code == 2 and message in r.output
    assert "Traceback" not in r.output


def test_corrupt_checkpoint_exit_2(runner, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    r = runner.invoke(main, ["eval", "--checkpoint", str(bad)])
    assert r.exit_code == 2 and "corrupt" in r.output


def test_bad_option_exit_2(runner):
    r = runner.invoke(main, ["eval", "--n", "0"])
    assert r.exit_code == 2


@pytest.mark.slow
def test_train_cli_then_eval(runner, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(main, ["train", "--model", "tiny", "--out", str(out), "--steps", "4", "--batch-size", "8",
                             "--workers", "0", "--eval-every", "0", "--save-every", "2", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["train", "--model", "tiny", "--out", str(out), "--steps", "6", "--batch-size", "8",
                             "--workers", "0", "--eval-every", "0", "--save-every", "2", "--no-progress", "--resume"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["eval", "--checkpoint", str(out / "model.safetensors"), "--n", "4"])
    assert r.exit_code == 0, r.output


def test_pack_stores_fp16_and_keeps_outputs(runner, tiny_ckpt, tmp_path):
    import torch

    from mobile_sdk.checkpoint import load_checkpoint, read_metadata

    dst = tmp_path / "packed.safetensors"
    r = runner.invoke(main, ["pack", str(tiny_ckpt), str(dst)])
    assert r.exit_code == 0, r.output
    assert dst.stat().st_size < 0.6 * tiny_ckpt.stat().st_size
    assert read_metadata(dst)["info"]["storage_dtype"] == "float16"
    a, _ = load_checkpoint(tiny_ckpt)
    b, _ = load_checkpoint(dst)
    x = torch.rand(2, 3, 64, 64) * 255
    assert torch.allclose(a.encode_image(x), b.encode_image(x), atol=2e-3)


def test_pack_missing_source_exit_2(runner, tmp_path):
    r = runner.invoke(main, ["pack", str(tmp_path / "nope.safetensors"), str(tmp_path / "out.safetensors")])
    assert r.exit_code == 2 and "not found" in r.output
    assert not (tmp_path / "out.safetensors").exists()


def test_plot_writes_pngs(runner, tmp_path):
    from PIL import Image

    log = tmp_path / "train_log.jsonl"
    recs = [{"step": s, "loss": 5.0 - s / 100} for s in range(10, 110, 10)]
    recs[-1]["val"] = {"zeroshot_mean": 0.5, "retrieval_mean": 0.2}
    log.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps({"model": "tiny", "split": "test", "n": 8,
                              "tasks": {"zeroshot_color": 0.5, "retrieval_i2t": 0.25},
                              "chance": {"zeroshot_color": 0.125, "retrieval_i2t": 0.125}}))
    r = runner.invoke(main, ["plot", "--log", str(log), "--eval", str(ev), "--out-dir", str(tmp_path / "d"),
                             "--name", "m"])
    assert r.exit_code == 0, r.output
    for f in ("m_training.png", "m_tasks.png"):
        img = Image.open(tmp_path / "d" / f)
        assert img.format == "PNG" and img.size[0] > 300
        assert len(np.unique(np.asarray(img.convert("L")))) > 10  # something was drawn


@pytest.mark.parametrize("content, message", [
    ("not json\n", "is not JSON"),
    ('{"step": 1}\n', "no training records with a loss"),
])
def test_plot_bad_log_exit_2(runner, tmp_path, content, message):
    log = tmp_path / "train_log.jsonl"
    log.write_text(content)
    r = runner.invoke(main, ["plot", "--log", str(log), "--out-dir", str(tmp_path)])
    assert r.exit_code == 2 and message in r.output
    assert not list(tmp_path.glob("*.png"))
