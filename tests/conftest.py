import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tokenizer():
    from mobile_sdk.tokenizer import Tokenizer

    return Tokenizer.from_file()


def copy_calibration(dst, n: int = 8):
    """The first n images + captions of calibration_data/ in a new folder `dst` (no checksum file:
    a user's folder). Returns dst."""
    import json
    import shutil
    from pathlib import Path

    dst = Path(dst)
    dst.mkdir()
    lines = open("calibration_data/captions.jsonl").read().splitlines()[:n]
    for line in lines:
        shutil.copy(f"calibration_data/{json.loads(line)['file']}", dst)
    (dst / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def export_args(ckpt, cal, out):
    """`mobile-sdk export` of the tiny model's image tower: ExecuTorch fp32 and Core ML fp16, no
    parity, no bench (the quickest export that has two platforms)."""
    return ["export", "--checkpoint", str(ckpt), "--target", "executorch", "--target", "coreml", "--precision",
            "executorch:fp32", "--precision", "coreml:fp16", "--tower", "image", "--out", str(out),
            "--calibration", str(cal), "--no-parity", "--no-bench"]


@pytest.fixture(scope="session")
def small_export(tmp_path_factory):
    """(root, calibration folder, checkpoint, export folder) of `export_args`; tests copy the
    folder before they change it."""
    from click.testing import CliRunner

    from mobile_sdk.checkpoint import save_checkpoint
    from mobile_sdk.cli import main
    from mobile_sdk.models import create_model

    root = tmp_path_factory.mktemp("small_export")
    cal = copy_calibration(root / "cal")
    torch.manual_seed(0)
    ckpt = save_checkpoint(create_model("tiny"), root / "tiny.safetensors", name="tiny")
    out = root / "made"
    r = CliRunner().invoke(main, export_args(ckpt, cal, out))
    assert r.exit_code == 0, r.output
    return root, cal, ckpt, out
