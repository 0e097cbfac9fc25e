"""The committed CLIP BPE golden vectors (tests/golden_bpe/, replayed by the demo apps' tests) still
match open_clip's tokenizer, the preprocessing and the scoring; the texts are ones the apps can
reproduce without ftfy; the apps' HTML entity tables are Python's."""

import html
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.golden_helpers import (check_eager_embeddings, check_pixels_reproduce_exactly,
                                  check_scores_and_rankings_reproduce, golden_fixtures)

from mobile_sdk.golden import BPE_TEXTS, TEXTS, golden_texts, ranking, scores, softmax
from mobile_sdk.manifest import sha256_file

GOLDEN = Path(__file__).parent / "golden_bpe"
ROOT = Path(__file__).resolve().parents[1]
REFRESH = "refresh it: see tests/golden_bpe/README.md"

golden, manifest = golden_fixtures(GOLDEN)


@pytest.fixture(scope="module")
def simple_tokenizer(manifest):
    """open_clip's SimpleTokenizer over the folder's merges file, at the manifest's context length."""
    from mobile_sdk.models._open_clip import import_open_clip

    open_clip = import_open_clip()
    tok = manifest["model"]["tokenizer"]
    return open_clip.tokenizer.SimpleTokenizer(bpe_path=str(GOLDEN / tok["merges_file"]),
                                               context_length=tok["context_length"])


def test_fixture_is_complete(manifest, golden):
    tok = manifest["model"]["tokenizer"]
    assert manifest["golden"] == "golden.json"
    assert tok["kind"] == "clip_bpe"
    assert sha256_file(GOLDEN / tok["merges_file"]) == tok["merges_sha256"], REFRESH
    assert manifest["model"]["preprocessing"]["resize"] == "center_crop"
    assert {im["mode"] for im in golden["images"]} == {"RGB", "RGBA", "L", "P", "I;16"}
    assert "eager" in golden["results"] and len(golden["results"]) >= 2, "eager and at least one artifact pair"


def test_merges_file_is_open_clips(manifest):
    from mobile_sdk.models._open_clip import import_open_clip

    bundled = import_open_clip().tokenizer.default_bpe()
    assert sha256_file(GOLDEN / manifest["model"]["tokenizer"]["merges_file"]) == sha256_file(bundled), REFRESH


def test_golden_texts_are_the_bpe_cases(golden):
    assert [t["text"] for t in golden["texts"]] == list(TEXTS + BPE_TEXTS), f"golden.BPE_TEXTS changed; {REFRESH}"


def test_builtin_golden_texts_are_unchanged():
    from mobile_sdk.tokenizer import Tokenizer, default_vocab_path

    assert golden_texts(Tokenizer.from_file(default_vocab_path(), 20)) == TEXTS
    assert json.loads((Path(__file__).parent / "golden" / "golden.json").read_text())["texts"][-1]["text"] == TEXTS[-1]


def test_token_ids_are_open_clips(golden, manifest, simple_tokenizer):
    """A drift between open_clip's tokenizer (or the SDK's wrapper) and the committed ids fails here."""
    from mobile_sdk.models._open_clip import ClipBpeTokenizer

    tok = ClipBpeTokenizer(simple_tokenizer, GOLDEN / manifest["model"]["tokenizer"]["merges_file"])
    described = tok.describe()
    for k in ("vocab_size", "context_length", "sot_id", "eot_id", "pad_id"):
        assert described[k] == manifest["model"]["tokenizer"][k], k
    for t in golden["texts"]:
        assert tok([t["text"]])[0].tolist() == t["ids"], t["text"]
    assert tok(golden["prompts"]["texts"]).tolist() == golden["prompts"]["ids"]
    assert golden["prompts"]["texts"] == manifest["model"]["tasks"]["zeroshot_color"]["prompts"]
    long = golden["texts"][-1]["ids"]
    assert long[-1] == described["eot_id"] and 0 not in long, "the last text is truncated, <end_of_text> last"


def test_apps_cleaning_without_ftfy_gives_the_same_ids(golden, simple_tokenizer, monkeypatch):
    """The apps skip ftfy: html.unescape twice, whitespace collapse, lower. Every golden text must
    give the same ids that way, or the apps could not replay it."""
    from open_clip.tokenizer import whitespace_clean

    def app_clean(text):
        return whitespace_clean(html.unescape(html.unescape(text)).strip()).lower()

    want = {t["text"]: t["ids"] for t in golden["texts"]}
    monkeypatch.setattr(simple_tokenizer, "clean_fn", app_clean)
    for text, ids in want.items():
        assert simple_tokenizer([text])[0].tolist() == ids, f"ftfy changes the ids of {text!r}; pick another text"


def test_pixels_reproduce_exactly(golden, manifest):
    check_pixels_reproduce_exactly(GOLDEN, golden, manifest)


def test_scores_and_rankings_reproduce(golden):
    check_scores_and_rankings_reproduce(golden)


def test_label_bank_and_its_golden_block_reproduce(golden, manifest):
    """The export was made with --label-bank classes.txt --prompts templates.txt: the bank file is
    the manifest's, and golden.json's label_bank block is every runtime's images scored against it."""
    from mobile_sdk.data.suites import read_templates
    from mobile_sdk.label_bank import read_class_names, read_label_bank

    entry = manifest["label_bank"]
    assert sha256_file(GOLDEN / entry["file"]) == entry["sha256"], REFRESH
    bank = read_label_bank(GOLDEN / entry["file"])
    assert bank["classes"] == read_class_names(GOLDEN / "classes.txt"), REFRESH
    assert tuple(bank["templates"]) == tuple(entry["templates"]) == read_templates(GOLDEN / "templates.txt"), REFRESH
    assert entry["classes"] == len(bank["classes"]) and entry["embed_dim"] == manifest["model"]["embed_dim"]
    block = golden["label_bank"]
    assert (block["file"], block["sha256"], block["classes"]) == (entry["file"], entry["sha256"], bank["classes"])
    assert set(block["results"]) == set(golden["results"])
    emb = bank["embeddings"].astype(np.float64)
    for name, r in golden["results"].items():
        zs = scores(np.array(r["image_embeddings"]), emb, golden["logit_scale"])
        want = block["results"][name]
        np.testing.assert_allclose(zs, want["scores"], atol=1e-6, err_msg=name)
        np.testing.assert_allclose([softmax(row) for row in zs], want["probs"], atol=1e-6, err_msg=name)
        assert [ranking(row) for row in zs] == want["ranking"], name


def test_eager_embeddings_are_the_checkpoints(golden, manifest):
    """The shipped vit-bpe-world weights (or MOBILE_SDK_BPE_WEIGHTS) are the ones the folder was
    exported from, and give its eager embeddings."""
    weights = os.environ.get("MOBILE_SDK_BPE_WEIGHTS") or str(ROOT / "mobile_sdk/assets/vit-bpe-world.safetensors")
    if sha256_file(Path(weights)) != manifest["model"]["checkpoint_sha256"]:
        pytest.fail(f"{weights} is not the checkpoint of tests/golden_bpe (checkpoint_sha256 differs); {REFRESH}")
    from mobile_sdk.models._open_clip import load_open_clip

    model = load_open_clip(str(ROOT / "mobile_sdk/assets/vit-bpe-world.json"), weights)
    check_eager_embeddings(golden, manifest, model.image, model.text)


def test_apps_html_entity_tables_are_pythons():
    spec = importlib.util.spec_from_file_location("gen_html_entities", ROOT / "android_demo/tools/gen_html_entities.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    stale = gen.stale()
    assert not stale, f"{[str(p) for p in stale]} are stale: run .venv/bin/python android_demo/tools/gen_html_entities.py"
