"""Task scoring: predictions are argmaxes of cosine similarities, as the apps score."""

import numpy as np
import pytest

from mobile_sdk.data.tasks import build_tasks, predict
from mobile_sdk.evaluate import agreement, torch_encoders
from mobile_sdk.models import create_model
from mobile_sdk.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def setup():
    model = create_model("tiny").eval()
    sets = build_tasks(n=12, image_size=model.cfg.vision.image_size, split="val")
    return model, sets, Tokenizer.from_file(context_length=model.cfg.text.context_length)


def test_predictions_ignore_embedding_norms(setup):
    """Rescaling each embedding by its own positive factor (an int8 L2 norm that rounds the norm)
    leaves every decision as it was; a change of direction does not."""
    model, sets, tok = setup
    enc_img, enc_txt = torch_encoders(model)
    rng = np.random.default_rng(0)

    def scaled(enc):
        return lambda x: enc(x) * rng.uniform(0.5, 2.0, size=(len(x), 1)).astype(np.float32)

    ref = predict(sets, enc_img, enc_txt, tok)
    got = predict(sets, scaled(enc_img), scaled(enc_txt), tok)
    assert all(v == 1.0 for v in agreement(ref, got).values())
    flipped = predict(sets, enc_img, lambda x: -enc_txt(x), tok)  # every score negated: argmin wins
    assert agreement(ref, flipped)["zeroshot"] < 1.0
