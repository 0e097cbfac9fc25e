"""scripts/train_gpu.sh end to end on the CPU with the tiny model: it sizes the runs from the measured
loader throughput, trains two teacher recipes, keeps the better on validation, compresses it, packs
both checkpoints and prints the exact commands."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mobile_sdk.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.heavy
def test_train_gpu_script_smoke_on_cpu(tmp_path):
    out, assets = tmp_path / "out", tmp_path / "assets"
    assets.mkdir()
    env = {**os.environ, "DEVICE": "cpu", "MODEL": "tiny", "STUDENT": "tiny", "MIN_STEPS": "3", "BS": "16",
           "RUNS": str(tmp_path / "runs"), "ASSETS": str(assets), "PYTHON": sys.executable}
    r = subprocess.run(["bash", "scripts/train_gpu.sh", str(out), "0.01", "0.01"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "+ mobile-sdk train --model tiny --steps 3 " in r.stdout and "--pairs 0.3" in r.stdout
    assert "+ mobile-sdk compress --teacher" in r.stdout and "best on validation: teacher_" in r.stdout
    teacher, tmeta = load_checkpoint(out / "teacher.safetensors")
    student, smeta = load_checkpoint(out / "student.safetensors")
    assert tmeta["info"]["step"] == 3 and tmeta["info"]["storage_dtype"] == "float16"
    assert smeta["name"] == "tiny-pruned" and (assets / "student.safetensors").is_file()
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("compress/report.json") for n in names)
    assert sum(n.endswith("train_log.jsonl") for n in names) == 4  # two teachers, distilled, pruned
