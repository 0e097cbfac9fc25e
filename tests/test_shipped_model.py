"""The shipped checkpoint: loads strictly and is far better than chance on held-out data."""

import pytest

from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
from mobile_sdk.data.tasks import CHANCE, build_tasks
from mobile_sdk.evaluate import evaluate_model
from mobile_sdk.models import model_config

# The interim teacher (docs/teacher.md) scores 48% mean zero-shot vs 19.7% chance; it must clear
# chance by 15 points on 100 test samples per task: noise cannot fail that, a broken checkpoint,
# a changed world or a preprocessing bug does. Issue #3 replaces the teacher and tightens this
# to a per-task margin.
MARGIN = 0.15


@pytest.fixture(scope="module")
def shipped():
    return load_checkpoint(default_checkpoint())


def test_shipped_checkpoint_is_the_registered_architecture(shipped):
    model, meta = shipped
    assert meta["config"] == model_config(meta["name"])
    assert meta["info"]["step"] == meta["info"]["train_config"]["steps"]  # a finished run


@pytest.mark.slow
def test_shipped_model_beats_chance_widely(shipped):
    model, _ = shipped
    res = evaluate_model(model, sets=build_tasks(n=100, image_size=model.cfg.vision.image_size))
    zs = [t for t in res if t.startswith("zeroshot_")]
    mean, chance = sum(res[t] for t in zs) / len(zs), sum(CHANCE[t] for t in zs) / len(zs)
    assert mean >= chance + MARGIN, res
