"""The parity suite on the shipped open_clip-architecture model (`vit-bpe-world`: open_clip's CLIP
class, ViT image tower, causal text transformer, CLIP BPE tokenizer, trained on the built-in world),
run as a user runs it: `mobile-sdk export --model vit-bpe-world` at every platform's default
precisions from a folder outside the checkout, judged on a user-style image folder (the world's test
split written as one sub-folder per shape, with a prompts file), then `mobile-sdk parity` from
another folder on the built-in world suite. Every artifact must stay within the tensor-level bars;
the task-level bars (zero-shot top-1 agreement >= 98%, ExecuTorch int8_dynamic >= 99%, on both
suites) are marked as the known gap while the shipped weights are under-trained.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_sdk.data.tasks import build_tasks
from mobile_sdk.data.world import SHAPES

PER_CLASS = 25  # 150 images: one flip moves agreement by 0.7 points
WORLD_N = 60  # per task (make demo: 100); the folder suite has 25 images per class


def _user_folder(root: Path) -> tuple[Path, Path]:
    """shapes/<shape>/*.png from the world's test split, and a prompts file, as a user writes them."""
    s = build_tasks(n=PER_CLASS * len(SHAPES) * 2, tasks=("zeroshot_shape",))["zeroshot_shape"]
    count = {k: 0 for k in range(len(SHAPES))}
    for i, (img, label) in enumerate(zip(s.images, s.labels)):
        if count[int(label)] < PER_CLASS:
            d = root / "shapes" / SHAPES[int(label)]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i:04d}.png")
            count[int(label)] += 1
    assert min(count.values()) == PER_CLASS
    (root / "prompts.txt").write_text("a {}\n")
    return root / "shapes", root / "prompts.txt"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    exe = str(Path(sys.executable).parent / "mobile-sdk")
    user = tmp_path_factory.mktemp("user")
    shapes, prompts = _user_folder(user)
    r = subprocess.run([exe, "export", "--model", "vit-bpe-world", "--out", "out", "--eval-data", str(shapes),
                        "--prompts", str(prompts), "--no-bench", "--localize", "never"], cwd=user,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    export_output = r.stdout + r.stderr
    folder_report = json.loads((user / "out" / "parity.json").read_text())
    other = tmp_path_factory.mktemp("other")
    r = subprocess.run([exe, "parity", str(user / "out"), "--eval-data", "world", "--n", str(WORLD_N), "--localize",
                        "never",
                        "--json", str(other / "world.json")], cwd=other, capture_output=True, text=True)
    world_report = json.loads((other / "world.json").read_text())
    return {"out": user / "out", "folder": folder_report, "world": world_report, "world_rc": r.returncode,
            "world_stderr": r.stderr, "output": export_output + r.stdout + r.stderr}


UNDERTRAINED = ("the shipped vit-bpe-world is under-trained (48.8% mean zero-shot accuracy on the world's test "
                "split; the bar is 85%, docs/vit_bpe_world.md): its many near ties flip under int8 and palettization. "
                "This passes, and must then lose its xfail mark, once a decisive model ships")


def _artifacts(reports):
    for name in ("folder", "world"):
        for a in reports[name]["artifacts"]:
            yield name, f"{name}: {a['platform']} {a['tower']} {a['precision']}", a


@pytest.mark.slow
def test_every_default_artifact_converts_and_stays_close_to_eager(reports):
    """Every platform's default artifacts of a real open_clip architecture with trained weights,
    exported and judged as a user runs the CLI: present, verified, and within every tensor-level bar
    (cosine mean / min, no NaN) on calibration data and on both suites' inputs."""
    from mobile_sdk.manifest import read_manifest

    m = read_manifest(reports["out"])  # every file's sha256
    assert m["model"]["family"] == "open_clip" and m["model"]["tokenizer"]["kind"] == "clip_bpe"
    assert {(a["platform"], a["tower"]) for a in m["artifacts"]} == {
        (p, t) for p in ("executorch", "tflite", "coreml") for t in ("image", "text")}
    for name in ("folder", "world"):
        assert reports[name]["suite"]["kind"] == name
    assert reports["folder"]["suite"]["classes"] == sorted(SHAPES)
    for name, label, a in _artifacts(reports):
        assert a["status"] != "skipped", label
        tensor_reasons = [r for r in a["reasons"] if not r.startswith("tasks:")]
        assert not tensor_reasons, (label, tensor_reasons)
        assert a["test"]["cosine_mean"] >= 0.99 and not a["test"]["nonfinite"], (label, a["test"])
        assert "zeroshot" in a["tasks"]["agreement"], label


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=UNDERTRAINED)
def test_every_default_artifact_passes_the_agreement_bars(reports):
    """The same bars as the built-in student's: zero-shot top-1 agreement with the eager model
    >= 98% (ExecuTorch int8_dynamic >= 99%) on the user's folder and on the world."""
    assert reports["world_rc"] == 0, reports["world_stderr"][-3000:]
    for name, label, a in _artifacts(reports):
        assert a["status"] == "pass", (label, a["reasons"])


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=UNDERTRAINED)
def test_the_model_meets_the_accuracy_bar(reports):
    acc = reports["world"]["reference_accuracy"]
    assert np.mean([v for k, v in acc.items() if k.startswith("zeroshot")]) >= 0.85, acc


@pytest.mark.slow
def test_the_shipped_weights_are_the_documented_model(reports):
    """The eager model's figures in the reports match docs/vit_bpe_world_eval.json (500 per task;
    the reports use the first 100): the weights are the ones documented."""
    doc = json.loads((Path(__file__).parents[2] / "docs" / "vit_bpe_world_eval.json").read_text())
    acc = reports["world"]["reference_accuracy"]
    for task in ("zeroshot_color", "zeroshot_size"):  # the tasks it has learned
        assert abs(acc[task] - doc["tasks"][task]) <= 0.08, (task, acc[task], doc["tasks"][task])
    zs = np.mean([v for k, v in acc.items() if k.startswith("zeroshot")])
    assert abs(zs - doc["summary"]["zeroshot_mean"]) <= 0.06, (zs, doc["summary"])


@pytest.mark.slow
def test_the_export_ships_what_an_app_needs(reports):
    import gzip

    from mobile_sdk.models._open_clip import import_open_clip

    m = json.loads((reports["out"] / "manifest.json").read_text())
    merges = reports["out"] / m["model"]["tokenizer"]["merges_file"]
    assert gzip.open(merges).read() == gzip.open(import_open_clip().tokenizer.default_bpe()).read()
    assert m["model"]["preprocessing"]["image_size"] == 64
    golden = json.loads((reports["out"] / "golden.json").read_text())
    assert golden["texts"], "golden vectors for the apps' tests"
    # the full-integer LiteRT text towers owe their accuracy to the residual-stream rotation
    for prec in ("int8", "int8_cpu"):
        meta = json.loads((reports["out"] / "tflite" / f"text_{prec}.json").read_text())
        assert meta["extra"]["residual_rotation"] is True, meta.get("extra")


@pytest.mark.slow
def test_a_user_sees_progress_and_results_but_no_backend_chatter(reports):
    """Run from a folder outside the checkout, as a user would: the backends' C++ lines, Python
    warnings and tracebacks stay off the terminal; the stages and the summary are there."""
    out = reports["output"]
    chatter = [line for line in out.splitlines()
               if re.search(r"\[\w+\.(cpp|cc|h):\d+\]|Warning:|Traceback|^[IWE]\d{4} ", line)]
    assert chatter == [], chatter[:10]
    for stage in ("convert", "parity", "golden vectors"):
        assert stage in out
    assert "zero-shot agreement" in out  # the summary table
