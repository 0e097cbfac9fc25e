"""The committed golden vectors (tests/golden/, replayed by the demo apps' tests) still match the
code and the shipped model; manifest validation refuses what it must."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
from mobile_sdk.errors import DataError
from mobile_sdk.golden import ranking, scores, softmax
from mobile_sdk.manifest import read_manifest, sha256_file, validate_manifest
from mobile_sdk.preprocess import load_image
from mobile_sdk.tokenizer import Tokenizer, default_vocab_path

GOLDEN = Path(__file__).parent / "golden"
REFRESH = "refresh it: see tests/golden/README.md"


@pytest.fixture(scope="module")
def golden():
    return json.loads((GOLDEN / "golden.json").read_text())


@pytest.fixture(scope="module")
def manifest():
    return read_manifest(GOLDEN, check_files=False)


def test_fixture_is_complete(manifest, golden):
    assert manifest["golden"] == "golden.json"
    assert sha256_file(GOLDEN / "vocab.txt") == sha256_file(default_vocab_path()) == \
        manifest["model"]["tokenizer"]["vocab_sha256"], REFRESH
    modes = {im["mode"] for im in golden["images"]}
    assert {"RGB", "RGBA", "L", "P", "I;16"} <= modes
    assert {"eager", "executorch/int8_dynamic", "tflite/int8_cpu", "tflite/int8"} <= set(golden["results"])


def test_pixels_reproduce_exactly(golden, manifest):
    size = manifest["model"]["preprocessing"]["image_size"]
    for im in golden["images"]:
        px = load_image(GOLDEN / im["file"], size)
        assert px.reshape(-1).tolist() == im["pixels"], im["file"]


def test_token_ids_reproduce_exactly(golden, manifest):
    tok = Tokenizer.from_file(GOLDEN / "vocab.txt", manifest["model"]["tokenizer"]["context_length"])
    for t in golden["texts"]:
        assert tok.encode(t["text"]).tolist() == t["ids"], t["text"]
    assert tok(golden["prompts"]["texts"]).tolist() == golden["prompts"]["ids"]
    assert golden["prompts"]["texts"] == manifest["model"]["tasks"]["zeroshot_color"]["prompts"]


def test_scores_and_rankings_reproduce(golden):
    for name, r in golden["results"].items():
        zs = scores(np.array(r["image_embeddings"]), np.array(r["prompt_embeddings"]), golden["logit_scale"])
        np.testing.assert_allclose(zs, r["zeroshot_scores"], atol=1e-6, err_msg=name)
        assert [ranking(row) for row in zs] == r["zeroshot_ranking"], name
        np.testing.assert_allclose([softmax(row) for row in zs], r["zeroshot_probs"], atol=1e-6)
        search = scores(np.array(r["image_embeddings"]), np.array(r["text_embeddings"]), golden["logit_scale"]).T
        assert [ranking(row) for row in search] == r["search_ranking"], name


def test_eager_embeddings_are_the_shipped_models(golden, manifest):
    ckpt = default_checkpoint()
    assert sha256_file(ckpt) == manifest["model"]["checkpoint_sha256"], f"the shipped model changed; {REFRESH}"
    model, _ = load_checkpoint(ckpt)
    size = manifest["model"]["preprocessing"]["image_size"]
    px = np.stack([np.array(im["pixels"], np.uint8).reshape(size, size, 3) for im in golden["images"]])
    ids = np.array([t["ids"] for t in golden["texts"]], np.int32)
    with torch.no_grad():
        img = model.visual(torch.from_numpy(px).permute(0, 3, 1, 2).float()).numpy()
        txt = model.text(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(img, golden["results"]["eager"]["image_embeddings"], atol=2e-5)
    np.testing.assert_allclose(txt, golden["results"]["eager"]["text_embeddings"], atol=2e-5)


def test_artifact_results_agree_with_eager(golden):
    eager = np.array(golden["results"]["eager"]["image_embeddings"])
    for name, r in golden["results"].items():
        got = np.array(r["image_embeddings"])
        cos = (got * eager).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(eager, axis=1)
        assert cos.min() > 0.97, (name, cos)


def test_manifest_validation_refuses_bad_input(manifest, tmp_path):
    bad = json.loads(json.dumps(manifest))
    bad["schema_version"] = 2
    with pytest.raises(DataError, match="schema_version 2 is not supported"):
        validate_manifest(bad)
    bad = json.loads(json.dumps(manifest))
    del bad["artifacts"][0]["sha256"]
    with pytest.raises(DataError, match=r"artifacts\[0\] lacks 'sha256'"):
        validate_manifest(bad)
    bad = json.loads(json.dumps(manifest))
    bad["artifacts"][0]["inputs"][0]["shape"] = [1, -3]
    with pytest.raises(DataError, match="positive ints"):
        validate_manifest(bad)
    shutil.copy(GOLDEN / "manifest.json", tmp_path / "manifest.json")
    with pytest.raises(DataError, match="is missing"):
        read_manifest(tmp_path)  # the artifact files are not committed with the fixture
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_manifest(tmp_path)
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope")
