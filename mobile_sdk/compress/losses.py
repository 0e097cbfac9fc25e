"""Distillation objectives: the student learns from ground truth and from the teacher at once.

All losses take L2-normalized embeddings (rows) and are 0 for a student that reproduces the teacher
(the contrastive loss aside, whose minimum depends on the data).

- `clip`: symmetric InfoNCE on the ground-truth pairs (+ hard-negative captions), as in training.
- `kd`: KL(teacher || student) of the temperature-softened image->text and text->image logits, each
  model at its own learned logit scale, times T^2 (Hinton et al.).
- `affinity`: TinyCLIP's cross-modal affinity mimicking: KL between the teacher's and the student's
  image->text and text->image similarity distributions, both at the *teacher's* scale, so the
  student must reproduce the teacher's similarity geometry, not just its argmax.
- `feature`: 1 - cos(P s, t) between the student's embedding, mapped by a learned linear projector P
  when the widths differ (owned by the trainer), and the teacher's, for both towers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError


@dataclass(frozen=True)
class DistillConfig:
    clip_weight: float = 1.0  # ground-truth contrastive loss
    kd_weight: float = 1.0  # soft-logit KL at temperature
    affinity_weight: float = 1.0  # TinyCLIP cross-modal affinity mimicking
    feature_weight: float = 1.0  # embedding (feature) distillation
    temperature: float = 2.0  # softening of the kd logits

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 0:
                raise ConfigError(f"distillation {f.name} must be >= 0, got {getattr(self, f.name)}")
        if self.temperature <= 0:
            raise ConfigError(f"distillation temperature must be > 0, got {self.temperature}")


def _kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, t: float = 1.0) -> torch.Tensor:
    """Mean over rows of KL(softmax(teacher/t) || softmax(student/t))."""
    return F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                    reduction="batchmean", log_target=True)


def _both_ways(img: torch.Tensor, txt: torch.Tensor, scale) -> tuple[torch.Tensor, torch.Tensor]:
    """(image->text logits over all texts, text->image logits of the first len(img) texts)."""
    n = img.shape[0]
    return scale * img @ txt.T, scale * txt[:n] @ img.T


def kd_loss(s_img, s_txt, s_scale, t_img, t_txt, t_scale, temperature: float) -> torch.Tensor:
    s_i2t, s_t2i = _both_ways(s_img, s_txt, s_scale)
    t_i2t, t_t2i = _both_ways(t_img, t_txt, t_scale)
    return 0.5 * temperature ** 2 * (_kl(t_i2t, s_i2t, temperature) + _kl(t_t2i, s_t2i, temperature))


def affinity_loss(s_img, s_txt, t_img, t_txt, t_scale) -> torch.Tensor:
    s_i2t, s_t2i = _both_ways(s_img, s_txt, t_scale)
    t_i2t, t_t2i = _both_ways(t_img, t_txt, t_scale)
    return 0.5 * (_kl(t_i2t, s_i2t) + _kl(t_t2i, s_t2i))


def feature_loss(s_emb: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
    """Mean 1 - cos between a student embedding (already projected to the teacher's width) and the teacher's."""
    if s_emb.shape != t_emb.shape:
        raise ConfigError(f"feature distillation needs the student's embeddings projected to the teacher's "
                          f"width: got {tuple(s_emb.shape)} vs {tuple(t_emb.shape)}")
    return (1.0 - F.cosine_similarity(s_emb, t_emb, dim=-1)).mean()


def distill_loss(cfg: DistillConfig, student_out, teacher_out, projected=None,
                 truth: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Weighted sum of the four terms -> (loss, {term: float}). `*_out` = (img, txt, scale);
    `projected` = the student's (img, txt) mapped to the teacher's width (default: as they are);
    `truth`: the batch's caption/image truth table for a multi-positive `clip` term (train.clip_loss)."""
    from ..train import clip_loss

    s_img, s_txt, s_scale = student_out
    t_img, t_txt, t_scale = (t.detach().float() for t in teacher_out)
    p_img, p_txt = projected if projected is not None else (s_img, s_txt)
    fns = {
        "clip": lambda: clip_loss(s_img, s_txt, s_scale, truth),
        "kd": lambda: kd_loss(s_img, s_txt, s_scale, t_img, t_txt, t_scale, cfg.temperature),
        "affinity": lambda: affinity_loss(s_img, s_txt, t_img, t_txt, t_scale),
        "feature": lambda: 0.5 * (feature_loss(p_img, t_img) + feature_loss(p_txt, t_txt)),
    }
    # Terms with weight 0 are not computed (the feature term needs matching widths) and log as 0.
    terms = {k: fn() if getattr(cfg, f"{k}_weight") > 0 else s_img.new_zeros(()) for k, fn in fns.items()}
    loss = sum(getattr(cfg, f"{k}_weight") * v for k, v in terms.items())
    return loss, {k: float(v.detach()) for k, v in terms.items()}
