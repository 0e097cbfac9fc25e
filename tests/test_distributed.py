"""`mobile-sdk train` under torchrun: 2 CPU processes, gloo, a few steps."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

WORKER = textwrap.dedent("""
    import hashlib, os, sys
    import torch
    from mobile_sdk.train import TrainConfig, fit
    out = sys.argv[1]
    cfg = TrainConfig(model="tiny", steps=100, batch_size=16, lr=3e-3, workers=0, eval_every=0,
                      save_every=50, train_samples=64)
    model, _ = fit(cfg, out, progress=False)
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode()); h.update(v.detach().cpu().numpy().tobytes())
    with open(os.path.join(out, f"rank{os.environ['RANK']}.sha256"), "w") as f:
        f.write(h.hexdigest())
""")


@pytest.mark.slow
@pytest.mark.distributed
def test_two_gloo_ranks_end_identical_and_learn(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    digests = [(out / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert digests[0] == digests[1], "DDP ranks diverged"
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(10, 101, 10))  # rank 0 alone writes the log
    losses = [r["loss"] for r in log]
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.15, losses
    meta_files = sorted(p.name for p in out.iterdir())
    assert meta_files == ["model.safetensors", "rank0.sha256", "rank1.sha256", "train_log.jsonl", "train_state.pt"]
