import math

import numpy as np
import pytest

from mobile_sdk.errors import ConfigError
from mobile_sdk.parity.localize import compare_layers, layer_paths
from mobile_sdk.parity.metrics import output_metrics, row_cosines, sqnr_db
from mobile_sdk.parity.tolerances import DEFAULT_TOLERANCES, ParityConfig, Tolerance, family


def test_sqnr_known_values():
    ref = np.ones((4, 8), np.float32)
    assert sqnr_db(ref, ref) == math.inf
    assert sqnr_db(ref, ref * 1.1) == pytest.approx(20.0, abs=1e-4)  # noise = 1% of the signal power
    assert math.isnan(sqnr_db(ref, np.full_like(ref, np.nan)))
    with pytest.raises(ValueError, match="shape"):
        sqnr_db(ref, ref[:2])


def test_output_metrics_rows_and_nonfinite():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(5, 16)).astype(np.float32)
    out = ref.copy()
    out[2] = -out[2]  # one row flipped: cosine -1
    m = output_metrics(ref, out)
    assert m["cosine_min"] == pytest.approx(-1.0) and m["cosine_mean"] == pytest.approx(0.6)
    assert m["max_abs_err"] == pytest.approx(2 * np.abs(ref[2]).max(), rel=1e-6)
    out[0, 0] = np.inf
    assert output_metrics(ref, out)["nonfinite"] == 1
    assert np.allclose(row_cosines(ref, ref), 1.0)


def test_tolerance_families_and_overrides():
    assert [family(p) for p in ("fp32", "fp16", "int8", "int8_cpu", "int8_dynamic", "pal4", "pal4g", "palmix")] == \
        ["fp32", "fp16", "int8", "int8", "int8_dynamic", "pal", "pal", "pal"]
    with pytest.raises(ConfigError, match="no parity tolerance"):
        family("int3")
    cfg = ParityConfig()
    assert cfg.tolerance("tflite", "int8") == DEFAULT_TOLERANCES["int8"]
    assert cfg.tolerance("executorch", "int8").cosine_mean == 0.995  # the ExecuTorch issue's stricter bar
    loose = Tolerance(0.5, 0.5, 0.5, 1.0)
    assert ParityConfig(tolerances={"pal": loose}).tolerance("coreml", "pal2") == loose
    with pytest.raises(ConfigError):
        ParityConfig(localize="sometimes")


def test_compare_layers_names_the_first_layer_below_threshold():
    rng = np.random.default_rng(1)
    ref = {n: rng.normal(size=(2, 3, 4)) for n in ("ln_pre", "blocks.0", "blocks.1", "embedding")}
    art = {n: v + (0.5 * rng.normal(size=v.shape) if n in ("blocks.1", "embedding") else 1e-4) for n, v in ref.items()}
    res = compare_layers(ref, art, threshold_db=20.0)
    assert [c["layer"] for c in res["layers"]] == list(ref)
    assert res["first_divergent_layer"] == "blocks.1"
    assert compare_layers(ref, ref, 20.0)["first_divergent_layer"] is None


def test_compare_layers_takes_the_residual_stream_mean_free():
    """A per-token constant (which every reader of the stream, a LayerNorm, removes) does not count
    as divergence in ln_pre / blocks.i; anywhere else, the same constant does."""
    rng = np.random.default_rng(2)
    ref = {n: rng.normal(size=(2, 3, 8)) for n in ("ln_pre", "blocks.0", "ln_post", "embedding")}
    shift = rng.normal(size=(2, 3, 1))
    res = compare_layers(ref, {n: v + shift for n, v in ref.items()}, threshold_db=20.0)
    sqnr = {c["layer"]: c["sqnr_db"] for c in res["layers"]}
    assert sqnr["ln_pre"] > 120.0 and sqnr["blocks.0"] > 120.0  # float64 rounding only
    assert sqnr["ln_post"] < 20.0 and res["first_divergent_layer"] == "ln_post"
    noisy = dict(ref, **{"blocks.0": ref["blocks.0"] + 0.5 * rng.normal(size=(2, 3, 8))})
    assert compare_layers(ref, noisy, 20.0)["first_divergent_layer"] == "blocks.0"


def test_layer_paths_follow_the_towers():
    from mobile_sdk.models import create_model

    m = create_model("student")
    assert layer_paths(m.visual) == ["ln_pre"] + [f"blocks.{i}" for i in range(3)] + ["ln_post"]
    assert layer_paths(m.text) == [f"blocks.{i}" for i in range(2)] + ["ln_final"]


def test_agreement_pools_zero_shot_and_retrieval_separately():
    from mobile_sdk.evaluate import agreement

    ref = {"zeroshot_color": np.array([0, 1, 2, 3]), "zeroshot_shape": np.array([0, 0, 0, 0]),
           "retrieval_i2t": np.array([0, 0])}
    got = {"zeroshot_color": np.array([0, 1, 2, 3]), "zeroshot_shape": np.array([0, 0, 1, 1]),
           "retrieval_i2t": np.array([1, 1])}
    a = agreement(ref, got)
    assert a["zeroshot_color"] == 1.0 and a["zeroshot_shape"] == 0.5 and a["retrieval_i2t"] == 0.0
    assert a["zeroshot"] == 6 / 8  # pooled over samples, the parity bar
    assert a["retrieval"] == 0.0
    assert a["overall"] == 6 / 10
    assert "retrieval" not in agreement({"zeroshot_size": np.array([1])}, {"zeroshot_size": np.array([1])})


def test_judge_gates_on_zero_shot_agreement():
    from mobile_sdk.parity.check import ArtifactResult, _judge
    from mobile_sdk.parity.tolerances import as_dict

    def judged(agreement):
        res = ArtifactResult("tflite", "image", "int8", "tflite/image_int8.tflite", 1)
        res.tolerance = as_dict(DEFAULT_TOLERANCES["int8"])  # agreement bar 0.98
        res.test = {"nonfinite": 0, "cosine_mean": 0.999, "cosine_min": 0.99}
        res.tasks = {"agreement": agreement}
        _judge(res)
        return res

    assert judged({"zeroshot": 0.99, "retrieval": 0.50}).status == "pass"  # retrieval flips are reported, not gated
    bad = judged({"zeroshot": 0.97, "retrieval": 1.0})
    assert bad.status == "fail" and bad.reasons == ["tasks: zero-shot top-1 agreement 0.9700 < 0.98"]
    # a caption-file suite has no zero-shot task: its retrieval top-1 agreement takes the bar
    caps = judged({"retrieval": 0.97})
    assert caps.status == "fail" and caps.reasons == ["tasks: retrieval top-1 agreement 0.9700 < 0.98"]
    assert judged({"retrieval": 0.99}).status == "pass"
    none = judged({})
    assert none.status == "fail" and "no task was scored" in none.reasons[0]
