"""A tiny end-to-end `mobile-sdk compress` run: every stage, the report, a loadable smaller student."""

import json

import pytest
from click.testing import CliRunner

from mobile_sdk.checkpoint import load_checkpoint, save_checkpoint
from mobile_sdk.cli import main
from mobile_sdk.models import count_parameters, create_model


@pytest.fixture
def tiny_teacher(tmp_path):
    # A wider teacher than the tiny student (embed 128 vs 32): the feature loss trains projectors.
    return save_checkpoint(create_model("student"), tmp_path / "teacher.safetensors", name="student")


@pytest.mark.slow
def test_compress_tiny_end_to_end(tiny_teacher, tmp_path):
    out = tmp_path / "c"
    args = ["compress", "--teacher", str(tiny_teacher), "--out", str(out), "--student", "tiny", "--distill-steps", "3",
            "--finetune-steps", "2", "--batch-size", "8", "--workers", "0", "--eval-n", "8", "--prune-heads", "0.5",
            "--prune-mlp", "0.5", "--magnitude-sparsity", "0.2", "--no-progress"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "teacher" in r.output and "distilled" in r.output and "pruned" in r.output
    assert "do not shrink dense artifacts" in r.output
    student, meta = load_checkpoint(out / "student.safetensors")
    distilled, _ = load_checkpoint(out / "distilled" / "model.safetensors")
    assert count_parameters(student) < count_parameters(distilled)
    assert student.cfg.vision.heads == (1,) and student.cfg.text.mlp_dim == (32,)
    assert meta["info"]["magnitude_pruning"]["sparsity"] == 0.2
    report = json.loads((out / "report.json").read_text())
    assert [r["label"] for r in report["rows"]] == ["teacher", "distilled", "pruned"]
    for row in report["rows"]:
        assert row["latency_ms"]["image"] > 0 and set(row["tasks"]) >= {"zeroshot_color", "retrieval_t2i"}
    # The distillation log records every loss term.
    log = [json.loads(l) for l in (out / "distilled" / "train_log.jsonl").read_text().splitlines()]
    assert set(log[-1]["terms"]) == {"clip", "kd", "affinity", "feature"}
    import torch

    state = torch.load(out / "distilled" / "train_state.pt", weights_only=True)
    assert state["extras"]["proj_img.weight"].shape == (128, 32)  # student 32 -> teacher 128

    # A second run finds every stage finished and only re-reports.
    before = (out / "distilled" / "model.safetensors").stat().st_mtime_ns
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert (out / "distilled" / "model.safetensors").stat().st_mtime_ns == before


def test_compress_bad_teacher_exit_2_and_nothing_written(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    r = CliRunner().invoke(main, ["compress", "--teacher", str(bad), "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "is corrupt or not a safetensors file" in r.output
    assert not (tmp_path / "c").exists()


def test_compress_bad_ratio_exit_2(tiny_teacher, tmp_path):
    r = CliRunner().invoke(main, ["compress", "--teacher", str(tiny_teacher), "--out", str(tmp_path / "c"),
                                  "--prune-mlp", "1.5"])
    assert r.exit_code == 2 and "prune mlp must be in [0, 1)" in r.output
