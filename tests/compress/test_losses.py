"""Each distillation loss on hand-made tensors: a student equal to the teacher scores the minimum."""

import pytest
import torch

from mobile_sdk.compress import DistillConfig, affinity_loss, distill_loss, feature_loss, kd_loss
from mobile_sdk.errors import ConfigError


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    return x / x.norm(dim=-1, keepdim=True)


@pytest.fixture
def teacher():
    return _unit(6, 16, seed=1), _unit(9, 16, seed=2), torch.tensor(20.0)  # 6 images, 6 texts + 3 negatives


def test_kd_and_affinity_are_zero_for_a_perfect_student_and_positive_otherwise(teacher):
    img, txt, scale = teacher
    assert kd_loss(img, txt, scale, img, txt, scale, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert affinity_loss(img, txt, img, txt, scale).item() == pytest.approx(0.0, abs=1e-6)
    other_img, other_txt = _unit(6, 16, seed=3), _unit(9, 16, seed=4)
    assert kd_loss(other_img, other_txt, scale, img, txt, scale, 2.0) > 0.05
    assert affinity_loss(other_img, other_txt, img, txt, scale) > 0.05


def test_kd_uses_each_models_scale_affinity_the_teachers(teacher):
    img, txt, scale = teacher
    # Same embeddings at another scale: kd sees different distributions, affinity does not.
    assert kd_loss(img, txt, scale / 4, img, txt, scale, 2.0) > 0.05
    assert affinity_loss(img, txt, img, txt, scale).item() == pytest.approx(0.0, abs=1e-6)


def test_feature_loss_is_zero_for_equal_directions_two_for_opposite(teacher):
    img, _, _ = teacher
    assert feature_loss(img, img).item() == pytest.approx(0.0, abs=1e-6)
    assert feature_loss(3 * img, img).item() == pytest.approx(0.0, abs=1e-6)  # cosine: scale-free
    assert feature_loss(-img, img).item() == pytest.approx(2.0, abs=1e-6)


def test_distill_loss_weights_the_terms(teacher):
    img, txt, scale = teacher
    only_clip = DistillConfig(kd_weight=0, affinity_weight=0, feature_weight=0)
    loss, terms = distill_loss(only_clip, (img, txt, scale), (img, txt, scale))
    assert loss.item() == pytest.approx(terms["clip"], rel=1e-6)
    assert terms["kd"] == pytest.approx(0.0, abs=1e-6) and terms["feature"] == pytest.approx(0.0, abs=1e-6)
    other = (_unit(6, 16, seed=5), _unit(9, 16, seed=6), scale)
    loss2, terms2 = distill_loss(DistillConfig(clip_weight=0), other, (img, txt, scale))
    assert loss2.item() == pytest.approx(terms2["kd"] + terms2["affinity"] + terms2["feature"], rel=1e-5)


def test_gradients_pull_the_student_towards_the_teacher(teacher):
    img, txt, scale = teacher
    s_img = _unit(6, 16, seed=7).requires_grad_(True)
    s_txt = _unit(9, 16, seed=8).requires_grad_(True)
    opt = torch.optim.SGD([s_img, s_txt], lr=0.5)
    cfg = DistillConfig(clip_weight=0)
    first = None
    for _ in range(50):
        ni, nt = s_img / s_img.norm(dim=-1, keepdim=True), s_txt / s_txt.norm(dim=-1, keepdim=True)
        loss, _ = distill_loss(cfg, (ni, nt, scale), (img, txt, scale))
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


@pytest.mark.parametrize("kwargs", [dict(kd_weight=-1), dict(temperature=0)])
def test_bad_distill_config(kwargs):
    with pytest.raises(ConfigError):
        DistillConfig(**kwargs)


def test_feature_term_needs_matching_widths_unless_switched_off(teacher):
    img, txt, scale = teacher
    student = (_unit(6, 8, seed=9), _unit(9, 8, seed=10), scale)  # a narrower student, no projector
    with pytest.raises(ConfigError, match="projected"):
        distill_loss(DistillConfig(), student, (img, txt, scale))
    # kd and affinity compare similarity matrices, which any widths give
    loss, terms = distill_loss(DistillConfig(feature_weight=0), student, (img, txt, scale))
    assert torch.isfinite(loss) and terms["feature"] == 0.0 and terms["kd"] > 0
