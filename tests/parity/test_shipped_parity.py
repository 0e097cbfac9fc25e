"""The parity suite on the shipped model: every artifact the default export produces, run on its
runtime against the eager model, compared with the committed baseline (tests/parity/baseline.json).

Fails the build when an artifact disappears, produces NaN/Inf, falls under its precision's cosine
bar, misses its zero-shot agreement bar (every artifact must PASS, as in `make demo`: same export,
same 100 test samples per task), or regresses against the baseline (cosine mean by > 0.002, cosine
min by > 0.01, zero-shot top-1 agreement by > 0.03).
Refresh the baseline after an intended change with
`UPDATE_PARITY_BASELINE=1 pytest tests/parity/test_shipped_parity.py`.
"""

import json
import os
from pathlib import Path

import pytest

from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
from mobile_sdk.exporter import default_workers, export
from mobile_sdk.parity import ParityConfig, check_folder

BASELINE = Path(__file__).parent / "baseline.json"
N_TEST = 100  # as make demo; one flip moves zero-shot agreement by 0.2 points


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("shipped")
    ckpt = default_checkpoint()
    model, _ = load_checkpoint(ckpt)
    export(model, out, ["all"], checkpoint=ckpt, workers=default_workers(6))  # as make demo: in worker processes
    return check_folder(out, cfg=ParityConfig(n_test=N_TEST, localize="never"))


def _figures(report) -> dict:
    return {a["file"]: {"cosine_mean": a["test"]["cosine_mean"], "cosine_min": a["test"]["cosine_min"],
                        "calib_cosine_mean": a["calibration"]["cosine_mean"],
                        "agreement": a["tasks"]["agreement"]["zeroshot"]} for a in report["artifacts"]}


@pytest.mark.slow
def test_shipped_artifacts_match_baseline(report):
    got = _figures(report)
    if os.environ.get("UPDATE_PARITY_BASELINE"):
        BASELINE.write_text(json.dumps({"n_test_per_task": N_TEST, "artifacts": got}, indent=2) + "\n")
    base = json.loads(BASELINE.read_text())["artifacts"]
    assert set(got) == set(base), f"artifacts changed: {sorted(set(got) ^ set(base))}"
    for a in report["artifacts"]:
        assert a["status"] != "skipped", a
        assert not a["test"]["nonfinite"] and not a["calibration"]["nonfinite"], a["file"]
        assert a["test"]["cosine_mean"] >= a["tolerance"]["cosine_mean"], (a["file"], a["test"])
        # the absolute bars (cosine and zero-shot agreement, e.g. LiteRT int8 >= 98%)
        assert a["status"] == "pass", (a["file"], a["reasons"])
    for f, g in got.items():
        b = base[f]
        assert g["cosine_mean"] >= b["cosine_mean"] - 0.002, (f, g, b)
        assert g["calib_cosine_mean"] >= b["calib_cosine_mean"] - 0.002, (f, g, b)
        assert g["cosine_min"] >= b["cosine_min"] - 0.01, (f, g, b)
        assert g["agreement"] >= b["agreement"] - 0.03, (f, g, b)


@pytest.mark.slow
def test_fp_level_figures_are_exact_where_they_should_be(report):
    """Core ML 6-bit palettes and ExecuTorch / LiteRT int8 keep the embeddings close: a sanity bar
    that does not depend on the baseline."""
    for a in report["artifacts"]:
        floor = {"coreml": 0.999, "executorch": 0.995, "tflite": 0.99}[a["platform"]]
        assert a["calibration"]["cosine_mean"] >= floor, (a["file"], a["calibration"])
