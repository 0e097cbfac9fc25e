import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from mobile_sdk.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from mobile_sdk.errors import CheckpointError
from mobile_sdk.models import create_model, model_config


@pytest.fixture
def ckpt(tmp_path):
    m = create_model("tiny")
    return m, save_checkpoint(m, tmp_path / "m.safetensors", name="tiny", info={"seed": 3})


def test_round_trip(ckpt):
    m, path = ckpt
    m2, meta = load_checkpoint(path)
    assert meta["name"] == "tiny" and meta["info"] == {"seed": 3} and meta["config"] == m.cfg
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    assert not m2.training


def test_fp16_storage_loads_as_fp32(tmp_path):
    m = create_model("tiny")
    path = save_checkpoint(m, tmp_path / "h.safetensors", dtype=torch.float16)
    m2, _ = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in m2.parameters())
    assert torch.allclose(m.visual.patch.weight, m2.visual.patch.weight, atol=1e-3)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_corrupt_file(ckpt, tmp_path):
    _, path = ckpt
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(truncated)


def _rewrite(path, out, tensors=None, meta=None):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        m = dict(f.metadata())
    save_file(tensors if tensors is not None else load_file(str(path)), str(out), metadata=meta or m)
    return out


def test_missing_extra_and_mismatched_keys(ckpt, tmp_path):
    _, path = ckpt
    t = load_file(str(path))
    missing = dict(t)
    missing.pop("visual.patch.weight")
    with pytest.raises(CheckpointError, match="missing key.*visual.patch.weight"):
        load_checkpoint(_rewrite(path, tmp_path / "a.safetensors", missing))
    with pytest.raises(CheckpointError, match="unexpected key.*bogus"):
        load_checkpoint(_rewrite(path, tmp_path / "b.safetensors", {**t, "bogus": torch.zeros(1)}))
    shaped = {**t, "text.proj.weight": torch.zeros(3, 3)}
    with pytest.raises(CheckpointError, match="shape mismatch for 'text.proj.weight'"):
        load_checkpoint(_rewrite(path, tmp_path / "c.safetensors", shaped))
    nan = {**t, "text.proj.weight": t["text.proj.weight"] * float("nan")}
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(_rewrite(path, tmp_path / "d.safetensors", nan))


def test_wrong_architecture_and_metadata(ckpt, tmp_path):
    m, path = ckpt
    with pytest.raises(CheckpointError, match="different architecture"):
        load_checkpoint(path, expected_config=model_config("student"))
    meta = read_metadata(path)
    raw = {"format": "mobile-sdk.clip", "format_version": "1", "name": "", "info": "{}",
           "config": json.dumps(dataclasses.asdict(model_config("student")))}
    with pytest.raises(CheckpointError, match="missing key|shape mismatch"):
        load_checkpoint(_rewrite(path, tmp_path / "arch.safetensors", meta=raw))
    for bad_meta, match in [({**raw, "format": "other"}, "not a mobile-sdk"),
                            ({**raw, "format_version": "9"}, "format version"),
                            ({**raw, "config": "{not json"}, "invalid model config")]:
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(_rewrite(path, tmp_path / "x.safetensors", meta=bad_meta))
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not a mobile-sdk"):
        load_checkpoint(tmp_path / "plain.safetensors")


def test_failed_save_keeps_the_earlier_file(ckpt, monkeypatch):
    m, path = ckpt
    before = path.read_bytes()
    import safetensors.torch

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(m, path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
