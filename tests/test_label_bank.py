"""The label bank: class-prompt embeddings shipped with the export, so an app classifies with the
image tower alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mobile_sdk.cli import main
from mobile_sdk.data.tasks import build_tasks, unit_rows
from mobile_sdk.data.world import SHAPES
from mobile_sdk.errors import DataError
from mobile_sdk.label_bank import class_embeddings, read_class_names, read_label_bank, write_label_bank
from mobile_sdk.manifest import read_manifest
from mobile_sdk.models.sources import load_adapter


def test_class_embeddings_are_the_normalized_prompt_ensemble():
    adapter = load_adapter("student")
    emb = class_embeddings(adapter, ["circle", "red object"], ("a {}", "{}"))
    with torch.no_grad():
        one = adapter.text(torch.from_numpy(adapter.tokenizer(["a circle", "circle"]))).double().numpy()
    want = unit_rows(unit_rows(one).mean(0, keepdims=True))[0]
    assert np.allclose(emb[0], want, atol=1e-6)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0)


def test_bad_class_files_are_named(tmp_path):
    f = tmp_path / "classes.txt"
    f.write_text("cat\n")
    with pytest.raises(DataError, match="at least 2"):
        read_class_names(f)
    f.write_text("cat\ndog\ncat\n")
    with pytest.raises(DataError, match="more than once"):
        read_class_names(f)
    with pytest.raises(DataError, match="not found"):
        read_class_names(tmp_path / "none.txt")
    f.write_text("# animals\nsea_lion\n\ndog\n")
    assert read_class_names(f) == ["sea lion", "dog"]
    res = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "out"), "--label-bank", str(tmp_path / "none.txt"),
                                    "--target", "executorch"])
    assert res.exit_code != 0 and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.heavy
def test_image_tower_alone_classifies_with_the_label_bank(tmp_path):
    """Export only the image tower (ExecuTorch) with a label bank of the world's shapes: the manifest
    names the bank, and the artifact + bank classify the test split's shapes as the eager model does."""
    from converters import platform_module

    classes = tmp_path / "shapes.txt"
    classes.write_text("\n".join(SHAPES) + "\n")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a {}\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["export", "--out", str(out), "--target", "executorch", "--tower", "image",
                                    "--label-bank", str(classes), "--prompts", str(prompts), "--no-bench",
                                    "--localize", "on_failure"])
    assert res.exit_code == 0, res.output
    manifest = read_manifest(out)  # checks the bank's sha256
    assert manifest["label_bank"]["classes"] == len(SHAPES) and {a["tower"] for a in manifest["artifacts"]} == {"image"}
    bank = read_label_bank(out / manifest["label_bank"]["file"])
    assert bank["classes"] == list(SHAPES) and bank["templates"] == ["a {}"]
    s = build_tasks(n=60, tasks=("zeroshot_shape",))["zeroshot_shape"]
    runner = platform_module("executorch").load(out / manifest["artifacts"][0]["file"])
    x = s.images.transpose(0, 3, 1, 2).astype(np.float32)
    art = np.concatenate([runner(x[i:i + 1]) for i in range(len(x))])
    with torch.no_grad():
        eager = load_adapter("student").image(torch.from_numpy(x)).numpy()
    pred_art = np.argmax(unit_rows(art) @ bank["embeddings"].T, axis=1)
    pred_eager = np.argmax(unit_rows(eager) @ bank["embeddings"].T, axis=1)
    assert np.mean(pred_art == pred_eager) >= 0.95
    assert np.mean(pred_eager == s.labels) >= 0.7  # the bank carries the world's shape prompts


def test_write_and_read_round_trip(tmp_path):
    adapter = load_adapter("student")
    entry = write_label_bank(tmp_path, adapter, ["circle", "square"], ("a {}",))
    assert entry["classes"] == 2 and entry["file"] == "label_bank.json"
    doc = read_label_bank(tmp_path / entry["file"])
    assert doc["embeddings"].shape == (2, adapter.embed_dim)
    raw = json.loads((tmp_path / entry["file"]).read_text())
    raw["embeddings"] = raw["embeddings"][:1]
    (tmp_path / "broken.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match="one row"):
        read_label_bank(tmp_path / "broken.json")
