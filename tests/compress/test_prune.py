"""Structured pruning: a smaller dense model, exact where it should be, runnable and loadable."""

import pytest
import torch

from mobile_sdk.checkpoint import load_checkpoint, save_checkpoint
from mobile_sdk.compress import PruneConfig, importance, magnitude_prune, prune
from mobile_sdk.errors import ConfigError
from mobile_sdk.models import count_parameters, create_model
from mobile_sdk.models.clip import CLIP, CLIPConfig, TextConfig, VisionConfig
from mobile_sdk.train import clip_loss

CFG = CLIPConfig(vision=VisionConfig(width=32, depth=2, heads=4, head_dim=8, mlp_dim=64, stem=(8,)),
                 text=TextConfig(width=32, depth=2, heads=4, head_dim=8, mlp_dim=64), embed_dim=32)


def _batches(n=2, b=8):
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        yield torch.rand(b, 3, 64, 64, generator=g) * 255, torch.randint(4, 37, (b, 20), generator=g, dtype=torch.int32)


def _clip(model, batch):
    return clip_loss(*model(*batch))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CLIP(CFG).eval()


def _outputs(m):
    x, ids = next(_batches(1, 4))
    with torch.no_grad():
        return m.encode_image(x), m.encode_text(ids)


def test_prune_nothing_is_identity(model):
    pruned = prune(model, importance(model, _batches(), _clip), PruneConfig(heads=0.0, mlp=0.0))
    for a, b in zip(_outputs(model), _outputs(pruned)):
        assert torch.allclose(a, b, atol=1e-6)


def test_removing_dead_units_is_exact(model):
    with torch.no_grad():  # make head 1 and MLP channels 0..31 of every block contribute nothing
        for tower in (model.visual, model.text):
            for blk in tower.blocks:
                blk.attn.out.weight[:, 8:16] = 0.0
                blk.mlp.proj.weight[:, :32] = 0.0
    scores = importance(model, _batches(), _clip)
    for tower in ("vision", "text"):
        for h, m in zip(scores[tower]["heads"], scores[tower]["mlp"]):
            assert h[1] == 0 and h.argmin() == 1 and (m[:32] == 0).all()
    pruned = prune(model, scores, PruneConfig(heads=0.25, mlp=0.5))
    assert pruned.cfg.vision.heads == (3, 3) and pruned.cfg.text.mlp_dim == (32, 32)
    for a, b in zip(_outputs(model), _outputs(pruned)):
        assert torch.allclose(a, b, atol=1e-5)


def test_prune_shrinks_by_the_requested_ratio_and_saves(model, tmp_path):
    pruned = prune(model, importance(model, _batches(), _clip),
                   PruneConfig(heads=0.5, mlp=0.5, vision_layers=1, text_layers=0))
    assert pruned.cfg.vision.depth == 1 and pruned.cfg.text.depth == 2
    assert pruned.cfg.text.heads == (2, 2) and pruned.cfg.text.mlp_dim == (32, 32)
    w = CFG.text.width
    block = lambda h, m: 2 * w + 3 * (w * h * 8 + h * 8) + h * 8 * w + w + 2 * w + w * m + m + m * w + w
    removed = 1 * block(4, 64) + 1 * (block(4, 64) - block(2, 32)) + 2 * (block(4, 64) - block(2, 32))
    assert count_parameters(model) - count_parameters(pruned) == removed
    assert all(torch.isfinite(t).all() for t in _outputs(pruned))
    path = save_checkpoint(pruned, tmp_path / "p.safetensors", name="pruned")
    loaded, meta = load_checkpoint(path)  # strict: the config alone describes the pruned shapes
    assert meta["config"] == pruned.cfg
    for a, b in zip(_outputs(pruned), _outputs(loaded)):
        assert torch.allclose(a, b)


def test_shipped_student_arch_reaches_a_quarter_of_the_teacher():
    student, teacher = create_model("student"), create_model("teacher")
    scores = {t: {"heads": [torch.rand(b.attn.heads) for b in m.blocks],
                  "mlp": [torch.rand(b.mlp.fc.out_features) for b in m.blocks],
                  "blocks": [0.0] * len(m.blocks)} for t, m in (("vision", student.visual), ("text", student.text))}
    pruned = prune(student, scores, PruneConfig())  # the compress defaults
    assert count_parameters(pruned) <= count_parameters(teacher) / 4


@pytest.mark.parametrize("kwargs", [dict(heads=1.0), dict(mlp=-0.1), dict(vision_layers=-1)])
def test_bad_prune_config(kwargs):
    with pytest.raises(ConfigError):
        PruneConfig(**kwargs)


def test_cannot_drop_every_layer(model):
    with pytest.raises(ConfigError, match="keep at least one"):
        prune(model, importance(model, _batches(1), _clip), PruneConfig(text_layers=2))


def test_magnitude_prune_zeroes_the_fraction_and_says_it_does_not_shrink(model):
    before = count_parameters(model)
    res = magnitude_prune(model, 0.5)
    weights = [m.weight for t in (model.visual, model.text) for m in t.blocks.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    assert abs(zeros / total - 0.5) < 0.01 and res["zeroed"] == zeros
    assert count_parameters(model) == before and "do not shrink" in res["note"]
