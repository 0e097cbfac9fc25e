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
