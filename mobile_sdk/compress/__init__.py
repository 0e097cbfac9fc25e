"""Compression: distill the teacher into a student, prune it structurally, fine-tune, report."""

from .losses import DistillConfig, affinity_loss, distill_loss, feature_loss, kd_loss
from .prune import PruneConfig, importance, magnitude_prune, prune

__all__ = ["DistillConfig", "PruneConfig", "affinity_loss", "distill_loss", "feature_loss", "importance", "kd_loss",
           "magnitude_prune", "prune"]
