"""What tests/test_golden.py (tests/golden/) and tests/test_golden_bpe.py (tests/golden_bpe/) check
alike in their golden folder: its fixtures, the pixels, the scores and rankings, and the eager
embeddings of the model it was exported from."""

import json

import numpy as np
import pytest

from mobile_sdk.golden import ranking, scores, softmax
from mobile_sdk.manifest import read_manifest
from mobile_sdk.preprocess import load_image


def golden_fixtures(folder):
    """The module-scoped fixtures (golden, manifest) of a golden folder: golden.json parsed, and
    manifest.json read without checking the artifact files (they are not committed). A test module
    binds them by name: `golden, manifest = golden_fixtures(GOLDEN)`."""

    @pytest.fixture(scope="module")
    def golden():
        return json.loads((folder / "golden.json").read_text())

    @pytest.fixture(scope="module")
    def manifest():
        return read_manifest(folder, check_files=False)

    return golden, manifest


def check_pixels_reproduce_exactly(folder, golden, manifest):
    """Every golden image of `folder`, preprocessed now, gives golden.json's pixels to the byte."""
    size = manifest["model"]["preprocessing"]["image_size"]
    for im in golden["images"]:
        px = load_image(folder / im["file"], size)
        assert px.reshape(-1).tolist() == im["pixels"], im["file"]


def check_scores_and_rankings_reproduce(golden):
    """Each results block's zero-shot scores, rankings and probabilities, and its search rankings,
    follow from its embeddings."""
    for name, r in golden["results"].items():
        zs = scores(np.array(r["image_embeddings"]), np.array(r["prompt_embeddings"]), golden["logit_scale"])
        np.testing.assert_allclose(zs, r["zeroshot_scores"], atol=1e-6, err_msg=name)
        assert [ranking(row) for row in zs] == r["zeroshot_ranking"], name
        np.testing.assert_allclose([softmax(row) for row in zs], r["zeroshot_probs"], atol=1e-6)
        search = scores(np.array(r["image_embeddings"]), np.array(r["text_embeddings"]), golden["logit_scale"]).T
        assert [ranking(row) for row in search] == r["search_ranking"], name


def check_eager_embeddings(golden, manifest, image_tower, text_tower):
    """The eager block's embeddings are those of `image_tower` (float NCHW pixels -> embeddings)
    and `text_tower` (int32 ids -> embeddings) on golden.json's pixels and ids."""
    import torch

    size = manifest["model"]["preprocessing"]["image_size"]
    px = np.stack([np.array(im["pixels"], np.uint8).reshape(size, size, 3) for im in golden["images"]])
    ids = np.array([t["ids"] for t in golden["texts"]], np.int32)
    with torch.no_grad():
        img = image_tower(torch.from_numpy(px).permute(0, 3, 1, 2).float()).numpy()
        txt = text_tower(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(img, golden["results"]["eager"]["image_embeddings"], atol=2e-5)
    np.testing.assert_allclose(txt, golden["results"]["eager"]["text_embeddings"], atol=2e-5)
