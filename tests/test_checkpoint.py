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


RESAVE = "re-save it with `mobile-sdk train` or save_checkpoint, or copy / download it again"


@pytest.mark.parametrize("bad_dtype", [torch.int32, torch.int64, torch.bool, torch.uint8])
def test_a_non_float_tensor_where_a_float_weight_belongs_is_named(ckpt, tmp_path, bad_dtype):
    _, path = ckpt
    t = load_file(str(path))
    bad = _rewrite(path, tmp_path / "d.safetensors", {**t, "text.proj.weight": t["text.proj.weight"].to(bad_dtype)})
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    assert str(e.value) == (f"{bad}: 'text.proj.weight' holds {bad_dtype} where a floating-point weight belongs "
                            f"(the model's is torch.float32): the file was damaged or edited, or written by other "
                            f"code; {RESAVE}")


def test_integer_buffers_must_stay_integer(tmp_path):
    """A model with an integer buffer (as some architectures keep index tables): a float tensor in its
    place is refused; int32 for int64 is cast; a float for a bool buffer is refused too."""
    from mobile_sdk.checkpoint import load_state_dict_strict

    class WithBuffers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.register_buffer("index", torch.arange(4))
            self.register_buffer("mask", torch.ones(4, dtype=torch.bool))

    m = WithBuffers()
    sd = m.state_dict()
    load_state_dict_strict(m, {**sd, "index": sd["index"].to(torch.int32)}, "f.safetensors")
    assert m.index.dtype == torch.int64
    with pytest.raises(CheckpointError, match=r"^f.safetensors: 'index' holds torch.float32 where an integer buffer "
                                              r"belongs \(the model's is torch.int64\): .*re-save it"):
        load_state_dict_strict(m, {**sd, "index": sd["index"].float()}, "f.safetensors")
    with pytest.raises(CheckpointError, match=r"'mask' holds torch.float16 where a bool buffer belongs \(the model's "
                                              r"is torch.bool\): the file was damaged"):
        load_state_dict_strict(m, {**sd, "mask": sd["mask"].half()}, "f.safetensors")
    with pytest.raises(CheckpointError, match=r"'lin.weight' holds torch.int64 where a floating-point weight belongs"):
        load_state_dict_strict(m, {**sd, "lin.weight": torch.zeros(2, 2, dtype=torch.int64)}, "f.safetensors")


def test_every_corrupt_checkpoint_message_says_what_to_do(ckpt, tmp_path):
    m, path = ckpt
    t = load_file(str(path))
    meta = {"format": "mobile-sdk.clip", "format_version": "1", "name": "", "info": "{}",
            "config": json.dumps(m.cfg.to_dict())}
    (tmp_path / "garbage.safetensors").write_bytes(b"garbage" * 10)
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-100])
    save_file({"x": torch.zeros(1)}, str(tmp_path / "oc.safetensors"), metadata={"source": "open_clip:ViT-B-32"})
    cases = {
        "garbage.safetensors": "pass --checkpoint with a mobile-sdk .safetensors file (written by `mobile-sdk train` "
                               f"or save_checkpoint); if it is one, it was damaged: {RESAVE}",
        "cut.safetensors": f"if it is one, it was damaged: {RESAVE}",
        "oc.safetensors": f"it holds open_clip:ViT-B-32 weights: pass --model open_clip:ViT-B-32 --weights "
                          f"{tmp_path / 'oc.safetensors'}",
        "plain.safetensors": "pass --checkpoint with a file written by `mobile-sdk train` or save_checkpoint; for "
                             "other weights use --model open_clip:ARCH --weights FILE or --model hf:DIR",
        "version.safetensors": "use the mobile-sdk version that wrote it, or re-save the model with this one "
                               "(save_checkpoint)",
        "config.safetensors": f"the metadata was damaged or edited; {RESAVE}",
        "missing.safetensors": f"the file was damaged or edited, or written by other code; {RESAVE}",
        "extra.safetensors": f"the file was damaged or edited, or written by other code; {RESAVE}",
        "shape.safetensors": f"the file was damaged or edited, or written by other code; {RESAVE}",
        "nan.safetensors": "the model it was saved from had diverged; re-train it (a lower --lr) or use an earlier "
                           "checkpoint",
        "nope.safetensors": "(pass --checkpoint with an existing .safetensors file)",
    }
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    _rewrite(path, tmp_path / "version.safetensors", meta={**meta, "format_version": "9"})
    _rewrite(path, tmp_path / "config.safetensors", meta={**meta, "config": "{not json"})
    _rewrite(path, tmp_path / "missing.safetensors", {k: v for k, v in t.items() if k != "visual.patch.weight"})
    _rewrite(path, tmp_path / "extra.safetensors", {**t, "bogus": torch.zeros(1)})
    _rewrite(path, tmp_path / "shape.safetensors", {**t, "text.proj.weight": torch.zeros(3, 3)})
    _rewrite(path, tmp_path / "nan.safetensors", {**t, "text.proj.weight": t["text.proj.weight"] * float("nan")})
    for name, fix in cases.items():
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(tmp_path / name)
        assert str(e.value).endswith(fix), (name, str(e.value))
