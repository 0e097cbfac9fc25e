import json

import pytest
import torch

from mobile_sdk.checkpoint import load_checkpoint
from mobile_sdk.errors import ConfigError
from mobile_sdk.train import TrainConfig, clip_loss, train

FAST = dict(model="tiny", batch_size=32, lr=3e-3, workers=0, eval_every=0, hard_negatives=2, train_samples=64)


def _losses(path):
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_tiny_training_reduces_the_loss(tmp_path):
    # 64 fixed samples, 100 steps: the loss must fall well below its start (~log(64) = 4.16 for i2t).
    ckpt = train(TrainConfig(steps=100, save_every=50, **FAST), tmp_path, progress=False)
    losses = _losses(tmp_path / "train_log.jsonl")
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses
    model, meta = load_checkpoint(ckpt)
    assert meta["info"]["step"] == 100 and meta["name"] == "tiny"


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(TrainConfig(steps=20, save_every=10, **FAST), a, progress=False)
    train(TrainConfig(steps=20, save_every=10, **FAST), b, progress=False)
    # Interrupt b at step 10 by training to 10 only in a fresh dir, then resume to 20.
    c = tmp_path / "c"
    cfg10 = TrainConfig(steps=20, save_every=10, **FAST)
    train(dataclass_replace(cfg10, steps=10), c, progress=False)
    train(cfg10, c, resume=True, progress=False)
    ma, _ = load_checkpoint(a / "model.safetensors")
    mb, _ = load_checkpoint(b / "model.safetensors")
    mc, meta = load_checkpoint(c / "model.safetensors")
    assert meta["info"]["step"] == 20
    same = all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values()))
    assert same, "training is not deterministic on CPU"
    # The resumed run saw the same data; the LR schedule of steps 0-9 differs (steps=10 vs 20),
    # so compare the data order, not the weights: logged steps continue from 10.
    steps = [json.loads(line)["step"] for line in (c / "train_log.jsonl").read_text().splitlines()]
    assert steps == [10, 20]


def dataclass_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_loss_prefers_matching_pairs():
    e = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    good = clip_loss(e, e, torch.tensor(20.0))
    bad = clip_loss(e, e.roll(1, 0), torch.tensor(20.0))
    assert good < bad
    with_negs = clip_loss(e, torch.cat([e, -e]), torch.tensor(20.0))
    assert with_negs.shape == ()


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown model"):
        TrainConfig(model="nope")
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=0)
    cfg = TrainConfig(steps=100, lr=1.0)
    assert cfg.lr_at(0) < cfg.lr_at(cfg.warmup - 1) <= 1.0
    assert cfg.lr_at(99) == pytest.approx(cfg.min_lr_ratio, abs=1e-3)
    with pytest.raises(ConfigError, match="no CUDA"):
        from mobile_sdk.train import resolve_device

        if torch.cuda.is_available():
            raise ConfigError("no CUDA (skipped: this machine has one)")
        resolve_device("cuda")


def test_resume_drops_log_records_after_the_checkpoint(tmp_path):
    from mobile_sdk.train import _truncate_log

    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (10, 20, 30, 40)))
    _truncate_log(log, 20)
    assert [json.loads(l)["step"] for l in log.read_text().splitlines()] == [10, 20]


def test_multi_positive_loss_uses_the_truth_table():
    """With a truth table, a caption true of two images targets both: embeddings that put the shared
    caption between its two images beat embeddings that side with one image (plain InfoNCE prefers
    the latter); an identity table gives plain InfoNCE back; a table that denies a pair's own caption
    is refused."""
    a, b, c = torch.eye(3)
    img = torch.stack([a, b, c])
    mid = torch.nn.functional.normalize(a + b, dim=0)
    between = torch.stack([mid, mid, c])  # texts 0 and 1 are both true of images 0 and 1
    truth = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    scale = torch.tensor(10.0)
    assert clip_loss(img, between, scale, truth) < clip_loss(img, img, scale, truth)
    assert clip_loss(img, img, scale) < clip_loss(img, between, scale)
    e = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    txt = torch.cat([e, torch.randn(6, 8)])  # with hard negatives after the captions
    eye = torch.cat([torch.eye(6), torch.zeros(6, 6)], 1).bool()
    assert torch.allclose(clip_loss(e, txt, scale, eye), clip_loss(e, txt, scale))
    with pytest.raises(ValueError, match="not true of its own image"):
        clip_loss(e, txt, scale, torch.zeros(6, 12, dtype=torch.bool))


TINY_OPEN_CLIP = {"embed_dim": 32,
                  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
                  "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.mark.slow
def test_open_clip_architecture_trains_distilled_and_resumes(tmp_path):
    """`train --model open_clip:CONFIG.json` trains open_clip's own CLIP class (CLIP BPE ids), distilled
    from a built-in teacher that reads its word-level ids; the checkpoint is an open_clip state dict
    that `--model open_clip:CONFIG.json --weights` loads; an interrupted run resumes."""
    from mobile_sdk.checkpoint import save_checkpoint
    from mobile_sdk.models import create_model
    from mobile_sdk.models.sources import load_adapter

    cfg_path = tmp_path / "tiny-oc.json"
    cfg_path.write_text(json.dumps(TINY_OPEN_CLIP))
    teacher = create_model("tiny")
    if teacher.cfg.vision.image_size != 32:
        import dataclasses
        teacher = create_model(dataclasses.replace(teacher.cfg, vision=dataclasses.replace(teacher.cfg.vision,
                                                                                           image_size=32)))
    save_checkpoint(teacher, tmp_path / "teacher.safetensors", name="tiny")
    common = dict(model=f"open_clip:{cfg_path}", image_size=32, batch_size=16, lr=3e-3, workers=0, eval_every=0,
                  hard_negatives=1, train_samples=32, teacher=str(tmp_path / "teacher.safetensors"))
    cfg = TrainConfig(steps=20, save_every=10, **common)
    train(dataclass_replace(cfg, steps=10), tmp_path / "run", progress=False)
    train(cfg, tmp_path / "run", resume=True, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20] and all("kd" in r["terms"] for r in log)
    adapter = load_adapter(f"open_clip:{cfg_path}", tmp_path / "run" / "model.safetensors")
    assert adapter.family == "open_clip" and adapter.tokenizer.describe()["kind"] == "clip_bpe"
    emb = adapter.text(torch.from_numpy(adapter.tokenizer(["a red circle"])))
    assert emb.shape == (1, 32) and torch.isfinite(emb).all()
    # `mobile-sdk pack` keeps it an open_clip state dict, stored in fp16
    from mobile_sdk.checkpoint import pack_checkpoint
    from safetensors.torch import load_file
    packed = pack_checkpoint(tmp_path / "run" / "model.safetensors", tmp_path / "packed.safetensors")
    assert {v.dtype for v in load_file(str(packed)).values() if v.is_floating_point()} == {torch.float16}
    again = load_adapter(f"open_clip:{cfg_path}", packed)
    with torch.no_grad():
        assert float((again.text(torch.from_numpy(again.tokenizer(["a red circle"]))) * emb).sum()) > 0.999
    # the image size must match the architecture's
    with pytest.raises(ConfigError, match="--image-size 32"):
        train(TrainConfig(steps=1, **{**common, "image_size": 64, "teacher": ""}), tmp_path / "bad", progress=False)


def test_resume_refuses_a_damaged_model_file_and_says_how_to_start_over(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from mobile_sdk.errors import CheckpointError

    cfg = TrainConfig(steps=2, save_every=2, **FAST)
    train(cfg, tmp_path, progress=False)
    path = tmp_path / "model.safetensors"
    good = path.read_bytes()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    save_file({**tensors, "text.proj.weight": tensors["text.proj.weight"].to(torch.int32)}, str(path), metadata=meta)
    start_over = f"delete model.safetensors and train_state.pt in {tmp_path} to start over"
    with pytest.raises(CheckpointError, match=r"'text.proj.weight' holds torch.int32 where a floating-point weight "
                                              rf"belongs \(the model's is torch.float32\): .*{start_over}"):
        train(cfg, tmp_path, resume=True, progress=False)
    path.write_bytes(good[:-100])  # cut short, as by an interrupted copy
    with pytest.raises(CheckpointError, match=rf"model.safetensors is corrupt or not a safetensors file: .*; {start_over}$"):
        train(cfg, tmp_path, resume=True, progress=False)
