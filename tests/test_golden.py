"""The committed golden vectors (tests/golden/, replayed by the demo apps' tests) still match the
code and the shipped model; manifest validation refuses what it must."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.golden_helpers import (check_eager_embeddings, check_pixels_reproduce_exactly,
                                  check_scores_and_rankings_reproduce, golden_fixtures)

from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
from mobile_sdk.errors import DataError
from mobile_sdk.manifest import read_manifest, sha256_file, validate_manifest
from mobile_sdk.tokenizer import Tokenizer, default_vocab_path

GOLDEN = Path(__file__).parent / "golden"
REFRESH = "refresh it: see tests/golden/README.md"

golden, manifest = golden_fixtures(GOLDEN)


def test_fixture_is_complete(manifest, golden):
    assert manifest["golden"] == "golden.json"
    assert sha256_file(GOLDEN / "vocab.txt") == sha256_file(default_vocab_path()) == \
        manifest["model"]["tokenizer"]["vocab_sha256"], REFRESH
    modes = {im["mode"] for im in golden["images"]}
    assert {"RGB", "RGBA", "L", "P", "I;16"} <= modes
    assert {"eager", "executorch/int8_dynamic", "tflite/int8_cpu", "tflite/int8"} <= set(golden["results"])


def test_pixels_reproduce_exactly(golden, manifest):
    check_pixels_reproduce_exactly(GOLDEN, golden, manifest)


def test_token_ids_reproduce_exactly(golden, manifest):
    tok = Tokenizer.from_file(GOLDEN / "vocab.txt", manifest["model"]["tokenizer"]["context_length"])
    for t in golden["texts"]:
        assert tok.encode(t["text"]).tolist() == t["ids"], t["text"]
    assert tok(golden["prompts"]["texts"]).tolist() == golden["prompts"]["ids"]
    assert golden["prompts"]["texts"] == manifest["model"]["tasks"]["zeroshot_color"]["prompts"]


def test_scores_and_rankings_reproduce(golden):
    check_scores_and_rankings_reproduce(golden)


def test_eager_embeddings_are_the_shipped_models(golden, manifest):
    ckpt = default_checkpoint()
    assert sha256_file(ckpt) == manifest["model"]["checkpoint_sha256"], f"the shipped model changed; {REFRESH}"
    model, _ = load_checkpoint(ckpt)
    check_eager_embeddings(golden, manifest, model.visual, model.text)


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
    with pytest.raises(DataError, match=r"artifacts/0: 'sha256' is a required property"):
        validate_manifest(bad)
    bad = json.loads(json.dumps(manifest))
    bad["artifacts"][0]["inputs"][0]["shape"] = [1, -3]
    with pytest.raises(DataError, match="artifacts/0/inputs/0/shape/1: -3 is less than the minimum of 1"):
        validate_manifest(bad)
    shutil.copy(GOLDEN / "manifest.json", tmp_path / "manifest.json")
    with pytest.raises(DataError, match="is missing"):
        read_manifest(tmp_path)  # the artifact files are not committed with the fixture
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_manifest(tmp_path)
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope")


def test_the_shipped_json_schema_is_valid_and_describes_every_golden_manifest():
    import jsonschema

    from mobile_sdk.manifest import schema

    jsonschema.Draft202012Validator.check_schema(schema())
    for folder in (GOLDEN, GOLDEN.parent / "golden_bpe"):
        jsonschema.validate(json.loads((folder / "manifest.json").read_text()), schema())
