"""The built-in world: procedural image-caption pairs, seeded splits, evaluation tasks."""

from .render import render
from .splits import DEFAULT_SEED, SPLITS, WorldDataset, scene_at
from .tasks import TASKS, build_tasks, score, summarize
from .world import COLORS, POSITIONS, RELATIONS, SHAPES, SIZES, Scene, hard_negatives, sample_scene

__all__ = ["render", "DEFAULT_SEED", "SPLITS", "WorldDataset", "scene_at", "TASKS", "build_tasks", "score",
           "summarize", "COLORS", "POSITIONS", "RELATIONS", "SHAPES", "SIZES", "Scene", "hard_negatives",
           "sample_scene"]
