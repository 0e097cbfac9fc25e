"""Core ML on the shipped model: real conversions and palettization by coremltools, the saved
packages run by the numpy MIL interpreter (Linux) or MLModel.predict (macOS), real data."""

import hashlib
import json
import logging
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

import converters.coreml as coreml
from converters.coreml import CoreMLConfig, CoreMLRunner, convert, predict_available
from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
from mobile_sdk.data.calibration import load_calibration
from mobile_sdk.data.tasks import build_tasks
from mobile_sdk.models.adapter import DualEncoder
from mobile_sdk.errors import ConversionError, DataError
from mobile_sdk.tokenizer import Tokenizer

N_TEST = 32


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_checkpoint())[0]


@pytest.fixture(scope="module")
def data():
    """Calibration inputs (the converter's NaN/Inf check) from calibration_data/, evaluation inputs
    from the test split."""
    cal = load_calibration("calibration_data", 64, 8)
    tok = Tokenizer.from_file()
    test = build_tasks(n=N_TEST, tasks=("retrieval_i2t",))["retrieval"]
    cal_img = torch.from_numpy(cal.images).permute(0, 3, 1, 2).float().contiguous()
    cal_ids = torch.from_numpy(tok(cal.captions))
    return {
        "image": ([cal_img[i:i + 1] for i in range(len(cal_img))],
                  torch.from_numpy(test.images).permute(0, 3, 1, 2).float().contiguous()),
        "text": ([cal_ids[i:i + 1] for i in range(len(cal_ids))], torch.from_numpy(tok([c[0] for c in test.captions]))),
    }


def _convert(model, data, tower, config, out):
    cal, _ = data[tower]
    return convert(model, tower, cal[0], config, out, calibration=cal[1:])


def _cosines(model, tower, runner, inputs):
    with torch.no_grad():
        ref = (model.visual if tower == "image" else model.text)(inputs).numpy()
    out = np.concatenate([runner(inputs[i:i + 1].numpy()) for i in range(len(inputs))])
    assert out.dtype == np.float32 and out.shape == ref.shape and np.isfinite(out).all()
    return (ref * out).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)


@pytest.fixture(scope="module")
def fp32(model, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml_fp32")
    return {t: _convert(model, data, t, CoreMLConfig("fp32"), out) for t in ("image", "text")}


@pytest.fixture(scope="module")
def fp16(model, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml_fp16")
    return {t: _convert(model, data, t, CoreMLConfig("fp16"), out) for t in ("image", "text")}


@pytest.fixture(scope="module")
def default(model, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml_default")
    return {t: _convert(model, data, t, CoreMLConfig(_default(t)), out) for t in ("image", "text")}


def _default(tower):
    d = coreml.DEFAULT_PRECISION
    return d[tower] if isinstance(d, dict) else d


# ---------------------------------------------------------------------------------------------
# Contract and config (no conversion)
# ---------------------------------------------------------------------------------------------

def test_module_contract():
    assert coreml.PLATFORM == "coreml" and coreml.CONFIG is CoreMLConfig
    assert set(coreml.PRECISIONS) == {"fp16", "fp32", "pal2", "pal4", "pal6", "pal8", "pal4g", "palmix"}
    assert {_default("image"), _default("text")} <= set(coreml.PRECISIONS)
    assert CoreMLConfig().precision in coreml.PRECISIONS
    assert callable(coreml.load)


def test_config_validation():
    with pytest.raises(ConversionError, match="unknown Core ML precision"):
        CoreMLConfig("int8")
    with pytest.raises(ConversionError, match="granularity"):
        CoreMLConfig("pal4", granularity="per_channel")
    with pytest.raises(ConversionError, match="per_channel_scale needs a k-means"):
        CoreMLConfig("fp16", per_channel_scale=True)
    with pytest.raises(ConversionError, match="image_input"):
        CoreMLConfig("fp16", image_input="bgr")
    grouped = CoreMLConfig("pal4g")
    assert (grouped.nbits, grouped.granularity, grouped.group_size, grouped.per_channel_scale) == \
        (4, "per_grouped_channel", 16, True)
    with pytest.raises(ConversionError, match="nbits must be one of"):
        CoreMLConfig("pal4", overrides={"*": 5})
    with pytest.raises(ConversionError, match="need a k-means palettized precision"):
        CoreMLConfig("fp16", overrides={"*mlp*": None})
    with pytest.raises(ConversionError, match="palmix picks each weight's bits itself"):
        CoreMLConfig("palmix", overrides={"*mlp*": 8})
    with pytest.raises(ConversionError, match="mean_bits must be a number from 3 to 8"):
        CoreMLConfig("palmix", mean_bits=2)
    assert CoreMLConfig("palmix").nbits is None and CoreMLConfig("palmix").mean_bits == 3.5
    cfg = CoreMLConfig("pal4", overrides={"*mlp*": None, "blocks_0_*": 8})
    assert cfg.overrides == (("*mlp*", None), ("blocks_0_*", 8)) and cfg.nbits == 4
    hash(cfg)  # frozen and hashable once dicts became pairs


def test_bad_examples_are_data_errors(tmp_path):
    from mobile_sdk.models import create_model

    m = create_model("tiny")
    with pytest.raises(DataError, match="int32 ids"):
        convert(m, "text", torch.zeros(1, 20, dtype=torch.int64), CoreMLConfig("fp16"), tmp_path)
    with pytest.raises(DataError, match="float32 pixels"):
        convert(m, "image", torch.zeros(1, 64, 64, 3), CoreMLConfig("fp16"), tmp_path)
    with pytest.raises(DataError, match="calibration input 0"):
        convert(m, "text", torch.zeros(1, 20, dtype=torch.int32), CoreMLConfig("fp16"), tmp_path,
                calibration=[torch.zeros(1, 20)])
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# The shipped towers
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("tower", ["image", "text"])
def test_fp32_interpreter_matches_eager(model, data, fp32, tower):
    art = fp32[tower]
    assert art.path.name == f"{tower}_fp32.mlpackage" and art.path.is_dir()
    meta = json.loads(art.path.with_suffix(".json").read_text())
    assert meta["path"] == art.path.name and meta["platform"] == "coreml" and meta["precision"] == "fp32"
    assert meta["outputs"][0]["name"] == "embedding" and meta["extra"]["verify"]["n"] == len(data[tower][0])
    assert meta["extra"]["verify"]["cosine_min"] > 0.99999
    runner = CoreMLRunner(art.path)
    assert runner.backend == "interpreter" or predict_available()[0]
    cos = _cosines(model, tower, runner, data[tower][1])
    assert cos.min() >= 0.99999, (cos.mean(), cos.min())
    assert not list(art.path.parent.glob(".*"))  # no temporaries left beside the artifacts


@pytest.mark.slow
@pytest.mark.parametrize("tower", ["image", "text"])
def test_fp16_matches_eager(model, data, fp16, tower):
    art = fp16[tower]
    assert art.extra["compute_precision"] == "fp16" and art.extra["verify"]["palettized_weights"] == 0
    cos = _cosines(model, tower, CoreMLRunner(art.path, fp16=True), data[tower][1])
    assert cos.min() >= 0.9999, (cos.mean(), cos.min())


@pytest.mark.slow
@pytest.mark.parametrize("tower", ["image", "text"])
def test_default_precision_is_palettized_and_accurate(model, data, fp16, default, tower):
    """DEFAULT_PRECISION was chosen by measurement (see converters/coreml.py); this keeps it honest:
    palettized, well under the fp16 size, cosine >= 0.999 on the test split (fp16 compute emulated)."""
    art = default[tower]
    v = art.extra["verify"]
    assert v["palettized_weights"] > 0 and set(v["palettized_nbits"]) == {CoreMLConfig(art.precision).nbits}
    assert art.extra["weights_bytes"] < 0.45 * fp16[tower].extra["weights_bytes"]  # pal6: measured 0.38
    cos = _cosines(model, tower, CoreMLRunner(art.path, fp16=True), data[tower][1])
    assert cos.mean() >= 0.999 and cos.min() >= 0.998, (cos.mean(), cos.min())  # pal6: measured 0.9999 / 0.9998


@pytest.mark.slow
def test_image_type_input(model, data, fp16, tmp_path):
    """ct.ImageType (RGB, scale 1, bias 0) takes the same [0, 255] pixels as the tensor input."""
    art = _convert(model, data, "image", CoreMLConfig("fp16", image_input="image"), tmp_path)
    assert art.extra["input_type"] == "image"
    runner = CoreMLRunner(art.path)
    assert runner.image_input and runner.spec.shape == (1, 3, 64, 64) and runner.spec.dtype == "float32"
    x = data["image"][1][:4].numpy()
    a = np.concatenate([runner(x[i:i + 1]) for i in range(4)])
    b = np.concatenate([CoreMLRunner(fp16["image"].path)(x[i:i + 1]) for i in range(4)])
    np.testing.assert_allclose(a, b, atol=2e-3)


@pytest.mark.slow
def test_runner_rejects_bad_inputs(fp16):
    runner = coreml.load(fp16["text"].path)
    with pytest.raises(DataError, match="expected shape"):
        runner(np.zeros((2, 20), np.int32))
    with pytest.raises(DataError, match="expected dtype int32"):
        runner(np.zeros((1, 20), np.int64))
    image = CoreMLRunner(fp16["image"].path)
    with pytest.raises(DataError, match="expected dtype float32"):
        image(np.zeros((1, 3, 64, 64), np.uint8))
    with pytest.raises(DataError, match="expected shape"):
        image(np.zeros((1, 64, 64, 3), np.float32))


@pytest.mark.slow
def test_missing_and_corrupt_packages(fp16, tmp_path):
    with pytest.raises(ConversionError, match="not found"):
        CoreMLRunner(tmp_path / "nope.mlpackage")
    bad = tmp_path / "text_fp16.mlpackage"
    shutil.copytree(fp16["text"].path, bad)
    (weights,) = bad.rglob("weight.bin")
    weights.write_bytes(weights.read_bytes()[:4096])  # truncated weights
    with pytest.raises(ConversionError, match="cannot load"):
        CoreMLRunner(bad)
    if not predict_available()[0]:
        with pytest.raises(ConversionError, match="cannot predict with Core ML here"):
            CoreMLRunner(fp16["text"].path, backend="predict")


@pytest.mark.macos
@pytest.mark.slow
@pytest.mark.skipif(not predict_available()[0], reason=predict_available()[1] or "Core ML prediction available")
@pytest.mark.parametrize("tower", ["image", "text"])
def test_predict_matches_interpreter(fp32, fp16, data, tower):
    """On macOS: MLModel.predict against the interpreter on the same packages."""
    x = data[tower][1][:8].numpy()
    for arts, tol in ((fp32, 0.9999), (fp16, 0.999)):
        p = CoreMLRunner(arts[tower].path, backend="predict")
        i = CoreMLRunner(arts[tower].path, backend="interpreter")
        a = np.concatenate([p(x[k:k + 1]) for k in range(len(x))])
        b = np.concatenate([i(x[k:k + 1]) for k in range(len(x))])
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cos.min() >= tol, cos


# ---------------------------------------------------------------------------------------------
# Tiny modules: overrides, the NaN guard, atomic output
# ---------------------------------------------------------------------------------------------

class TinyText(nn.Module):
    def __init__(self, masked: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.tok = nn.Embedding(37, 64)
        self.fc, self.proj = nn.Linear(64, 128), nn.Linear(128, 64)
        self.masked = masked

    def forward(self, ids):
        x = self.tok(ids)  # (1, T, 64)
        s = x @ x.transpose(1, 2)
        if self.masked:  # a known pitfall: folded to NaN constants by torch.export
            s = s + torch.full((ids.shape[1], ids.shape[1]), float("-inf")).triu(1)
        x = s.softmax(-1) @ x
        return self.proj(torch.relu(self.fc(x)))[:, 0]


IDS = torch.randint(0, 37, (1, 12), dtype=torch.int32, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow
def test_palettization_overrides(tmp_path):
    tiny = DualEncoder.from_towers(text=TinyText())
    art = convert(tiny, "text", IDS, CoreMLConfig("pal4", granularity="per_tensor",
                                                  overrides={"fc_*": 8, "*proj*": None}), tmp_path)
    from converters.mil import MilProgram

    prog = MilProgram(art.path)
    by_weight = {n.split("_to_fp16")[0]: b for n, b in prog.palettized.items()}
    assert by_weight == {"p_tok_weight": 4, "p_fc_weight": 8}, prog.palettized
    assert any("proj_weight" in n for n in prog.weight_names())
    art = convert(tiny, "text", IDS, CoreMLConfig("pal2", op_type_overrides={"linear": None},
                                                  granularity="per_tensor"), tmp_path)
    assert art.extra["verify"]["palettized_nbits"] == {2: 1}  # only the embedding table
    with pytest.raises(ConversionError, match=re.escape("pattern(s) ['*attn*'] match no weight")):
        convert(tiny, "text", IDS, CoreMLConfig("pal4", overrides={"*attn*": None}), tmp_path)


def _id_batches(n):
    return [torch.randint(0, 37, (1, 12), dtype=torch.int32, generator=torch.Generator().manual_seed(i))
            for i in range(1, n + 1)]


@pytest.mark.slow
def test_palmix_stores_each_weight_at_the_bits_it_was_given(tmp_path):
    """Calibrated mixed-bit palettization: the package holds every planned weight palettized at no
    more than its planned bits (read back by the interpreter), within the mean, close to eager."""
    from converters.mil import MilProgram

    tiny = DualEncoder.from_towers(text=TinyText())
    art = convert(tiny, "text", IDS, CoreMLConfig("palmix", mean_bits=4.0), tmp_path, calibration=_id_batches(32))
    rec = art.extra["palettization"]
    assert rec["mode"] == "calibrated_mixed" and rec["calibration_n"] == 32
    assert set(rec["nbits"]) == {"tok.weight", "fc.weight", "proj.weight"} and rec["mean_bits"] <= 4.0
    stored = {n.removeprefix("p_").split("_to_fp16")[0]: b for n, b in MilProgram(art.path).palettized.items()}
    planned = {k.replace(".", "_"): b for k, b in rec["nbits"].items()}
    assert set(stored) == set(planned) and all(stored[k] <= planned[k] for k in planned), (stored, planned)
    assert art.extra["verify"]["cosine_mean"] > 0.99
    assert json.loads(art.path.with_suffix(".json").read_text())["extra"]["palettization"]["nbits"] == rec["nbits"]


@pytest.mark.slow
def test_palmix_refuses_a_plan_it_cannot_store_and_writes_nothing(tmp_path, monkeypatch):
    import converters.palettize as palettize

    real = palettize.palettize_mixed

    def plan_with_a_folded_weight(module, inputs, mean_bits):
        plan = real(module, inputs, mean_bits)
        plan["nbits"]["gone.weight"] = 4
        return plan

    monkeypatch.setattr(palettize, "palettize_mixed", plan_with_a_folded_weight)
    tiny = DualEncoder.from_towers(text=TinyText())
    with pytest.raises(ConversionError, match=r"\['gone.weight'\] are not constants of the converted program"):
        convert(tiny, "text", IDS, CoreMLConfig("palmix"), tmp_path, calibration=_id_batches(8))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="at least 8"):
        convert(tiny, "text", IDS, CoreMLConfig("palmix"), tmp_path, calibration=_id_batches(3))


@pytest.mark.slow
def test_conversion_is_quiet_by_default_and_shows_coremltools_progress_at_debug(tmp_path, capsys, caplog):
    tiny = DualEncoder.from_towers(text=TinyText())
    convert(tiny, "text", IDS, CoreMLConfig("pal4"), tmp_path / "quiet")
    err = capsys.readouterr().err
    assert "Running MIL" not in err, err[-500:]
    with caplog.at_level(logging.DEBUG, logger="converters.coreml"):
        convert(tiny, "text", IDS, CoreMLConfig("pal4"), tmp_path / "loud")
    assert "Running MIL" in capsys.readouterr().err


@pytest.mark.slow
def test_same_model_gives_the_same_package_bytes(tmp_path):
    """ml.save alone gives random item UUIDs and a hash-ordered metadata map: two conversions of
    one model would differ. After make_reproducible they are byte-identical and still load."""
    import coremltools as ct

    from mobile_sdk.manifest import sha256_file

    tiny = DualEncoder.from_towers(text=TinyText())
    a = convert(tiny, "text", IDS, CoreMLConfig("pal4"), tmp_path / "a")
    b = convert(tiny, "text", IDS, CoreMLConfig("pal4"), tmp_path / "b")
    assert sha256_file(a.path) == sha256_file(b.path)
    manifest = json.loads((a.path / "Manifest.json").read_text())
    assert manifest["rootModelIdentifier"] in manifest["itemInfoEntries"]
    spec = ct.models.MLModel(str(a.path), skip_model_load=True).get_spec()
    assert "com.github.apple.coremltools.conversion_date" not in spec.description.metadata.userDefined
    assert spec.description.metadata.userDefined["com.github.apple.coremltools.version"]


@pytest.mark.slow
def test_grouped_lut_decoding_matches_coremltools(tmp_path):
    """The interpreter's numpy decoding of per-grouped-channel palettes equals coremltools' own."""
    from converters.mil import MilProgram, load_program

    art = convert(DualEncoder.from_towers(text=TinyText()), "text", IDS,
                  CoreMLConfig("pal4", granularity="per_grouped_channel", group_size=16), tmp_path)
    prog, _ = load_program(art.path)
    ours = MilProgram(art.path)
    luts = [op for op in prog.functions["main"].operations if op.op_type == "constexpr_lut_to_dense"]
    assert len(luts) == 2 and all(op.lut.val.shape[0] > 1 for op in luts)  # fc and proj, several palettes
    for op in luts:
        np.testing.assert_array_equal(ours.consts[op.outputs[0].name], op.materialized_val_inference())


@pytest.mark.slow
def test_per_channel_scale_leaves_skipped_weights_intact(tmp_path):
    """Per-channel scale: the weights coremltools palettizes carry a scale, and a weight it skips
    (the 37-row token table: not divisible by the group size) stays exactly its fp16 value;
    coremltools 9.0 alone leaves that table divided by its scale."""
    from converters.mil import MilProgram

    text = TinyText()
    art = convert(DualEncoder.from_towers(text=text), "text", IDS, CoreMLConfig("pal4g"),
                  tmp_path, calibration=[IDS.roll(i, 1) for i in range(1, 4)])
    assert art.path.name == "text_pal4g.mlpackage"
    prog = MilProgram(art.path)
    assert prog.op_types.get("constexpr_blockwise_shift_scale") == 2 and len(prog.palettized) == 2
    (tok,) = [n for n in prog.weight_names() if "tok" in n]
    np.testing.assert_array_equal(prog.consts[tok], text.tok.weight.detach().numpy().astype(np.float16))
    assert art.extra["palettization"]["per_channel_scale"] is True
    assert art.extra["verify"]["cosine_min"] > 0.99


@pytest.mark.slow
def test_nan_program_is_refused_and_earlier_artifact_survives(tmp_path):
    good = convert(DualEncoder.from_towers(text=TinyText()), "text", IDS, CoreMLConfig("fp16"), tmp_path)

    def digest():
        h = hashlib.sha256()
        for f in sorted(good.path.rglob("*")):
            if f.is_file():
                h.update(f.read_bytes())
        return h.hexdigest(), good.path.with_suffix(".json").read_text()

    before = digest()
    with torch.no_grad():
        assert torch.isfinite(TinyText(masked=True)(IDS)).all()  # eager is fine
    with pytest.raises(ConversionError, match=r"verify step of the text tower.*NaN/Inf.*first at op"):
        convert(DualEncoder.from_towers(text=TinyText(masked=True)), "text", IDS, CoreMLConfig("fp16"), tmp_path)
    assert digest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text_fp16.json", "text_fp16.mlpackage"]


# ---------------------------------------------------------------------------------------------
# Per-layer intermediates (the parity checker's divergence localization)
# ---------------------------------------------------------------------------------------------

N_LAYERS = 8  # inputs per localization test


def _tower(model, tower):
    return model.visual if tower == "image" else model.text


@pytest.fixture(scope="module")
def layer_refs(model, data):
    """Eager per-layer outputs of the first N_LAYERS test inputs, per tower, computed once."""
    from mobile_sdk.parity.localize import reference_intermediates

    cache = {}

    def get(tower):
        if tower not in cache:
            cache[tower] = reference_intermediates(_tower(model, tower), data[tower][1][:N_LAYERS])
        return cache[tower]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("tower", ["image", "text"])
def test_intermediates_of_fp32_package_match_eager_hooks(model, data, fp32, layer_refs, tower):
    """Every layer is found in the saved package and equals the eager module's output."""
    from mobile_sdk.parity.localize import layer_paths
    from mobile_sdk.parity.metrics import sqnr_db

    x = data[tower][1][:N_LAYERS]
    got = coreml.intermediates(model, tower, "fp32", x, data[tower][0], fp32[tower].path)
    ref = layer_refs(tower)
    assert set(got) == set(layer_paths(_tower(model, tower))) | {"embedding"} == set(ref)
    for layer, r in ref.items():
        assert got[layer].shape == r.shape and got[layer].dtype == np.float32, layer
        assert sqnr_db(r, got[layer]) > 60.0, (layer, sqnr_db(r, got[layer]))  # measured 111-133 dB


@pytest.mark.slow
@pytest.mark.parametrize("tower", ["image", "text"])
def test_intermediates_of_default_package(model, data, default, layer_refs, tower):
    """On the palettized default: a finite curve over every layer, and `embedding` is exactly what
    the runner returns."""
    from mobile_sdk.parity.localize import compare_layers

    x = data[tower][1][:N_LAYERS]
    art = default[tower]
    got = coreml.intermediates(model, tower, art.precision, x, data[tower][0], art.path)
    runner = CoreMLRunner(art.path)
    np.testing.assert_array_equal(got["embedding"], np.concatenate([runner(x[i:i + 1].numpy()) for i in range(len(x))]))
    curve = compare_layers(layer_refs(tower), got, 15.0)
    assert len(curve["layers"]) == len(got) and all(np.isfinite(c["sqnr_db"]) for c in curve["layers"]), curve
    assert curve["first_divergent_layer"] is None, curve  # pal6: every layer measured >= 30 dB


@pytest.mark.slow
def test_perturbed_block_is_localized(model, data, layer_refs, tmp_path):
    """A package converted from a model whose blocks.2 weights got noise is localized to blocks.2
    against the unperturbed reference (the layers before it stay exact)."""
    import copy

    from mobile_sdk.parity.localize import compare_layers

    k = 2
    bad = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in bad.visual.blocks[k].parameters():
            if p.dim() == 2:
                p.add_(torch.randn(p.shape, generator=g) * p.std())
    cal, x = data["image"]
    art = convert(bad, "image", cal[0], CoreMLConfig("fp32", verify=False), tmp_path)
    x = x[:N_LAYERS]
    got = coreml.intermediates(model, "image", "fp32", x, cal, art.path)
    result = compare_layers(layer_refs("image"), got, 30.0)
    assert result["first_divergent_layer"] == f"blocks.{k}", result
    by_layer = {c["layer"]: c["sqnr_db"] for c in result["layers"]}
    assert by_layer["blocks.1"] > 60.0 and by_layer[f"blocks.{k}"] < 25.0, by_layer  # measured 117 / 21 dB


def test_intermediates_need_the_artifact_and_a_known_precision():
    with pytest.raises(ConversionError, match="artifact_path"):
        coreml.intermediates(SimpleNamespace(), "text", "fp16", torch.zeros(1, 20, dtype=torch.int32), None, None)
    with pytest.raises(ConversionError, match="unknown Core ML precision"):
        coreml.intermediates(SimpleNamespace(), "text", "int8", torch.zeros(1, 20, dtype=torch.int32), None, "x")


def test_packages_describe_themselves(default):
    import coremltools as ct

    import mobile_sdk

    for tower, name in (("image", "pixels"), ("text", "ids")):
        a = default[tower]
        ml = ct.models.MLModel(str(a.path), skip_model_load=True)
        assert ml.author == f"mobile-sdk {mobile_sdk.__version__}" and ml.version == mobile_sdk.__version__
        assert ml.license == "Apache-2.0"
        assert f"{tower} tower" in ml.short_description
        assert "0..255" in ml.input_description[name] if tower == "image" else "token ids" in ml.input_description[name]
        assert "L2-normalized" in ml.output_description["embedding"]
        meta = ml.user_defined_metadata
        assert meta["mobile_sdk.tower"] == tower and meta["mobile_sdk.precision"] == a.precision
        if tower == "image":
            assert json.loads(meta["mobile_sdk.preprocess"])["size"] == [64, 64]
        assert a.extra["description"]["short_description"] == ml.short_description


def _repeated_fp16(n_values: int, shape) -> np.ndarray:
    """A weight as palmix leaves it: few distinct fp16 values, each repeated many times."""
    rng = np.random.default_rng(0)
    palette = np.unique((rng.normal(size=n_values) * 0.05).astype(np.float16))
    return rng.choice(palette, size=shape)


def test_unique_lut_counts_repeated_fp16_values_exactly():
    """NumPy's AVX-512 float16 quicksort misorders arrays like these (np.unique on the fp16 array
    found 32 values among 16 on an Ice Lake-class host); the palette is counted in float32."""
    for n_values, bits in ((8, 3), (16, 4), (40, 6)):
        w = _repeated_fp16(n_values, (128, 128))
        lut, idx = coreml.unique_lut(w)
        assert len(lut) == 2 ** bits and lut.dtype == np.float16 and idx.dtype == np.uint8
        np.testing.assert_array_equal(lut[idx].reshape(w.shape), w)
    with pytest.raises(ConversionError, match="more than an 8-bit palette"):
        coreml.unique_lut(np.arange(300, dtype=np.float16))


@pytest.mark.slow
def test_palmix_stores_a_large_repeated_weight_at_its_bits(tmp_path):
    """A 256x256 weight with 16 distinct values is stored as a 4-bit palette, whatever the host's
    NumPy sort does with float16."""
    from converters.mil import MilProgram

    ct = coreml._import_ct()
    fc = nn.Linear(256, 256, bias=False).eval()
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(_repeated_fp16(16, (256, 256)).astype(np.float32)))
    x = torch.randn(1, 256)
    ml = ct.convert(torch.export.export(fc, (x,)).run_decompositions({}), convert_to="mlprogram",
                    minimum_deployment_target=ct.target.iOS18, inputs=[ct.TensorType(name="x", shape=(1, 256))])
    ml = ct.optimize.coreml.palettize_weights(ml, coreml.unique_config(ml, {"weight": 4}))
    ml.save(str(tmp_path / "fc.mlpackage"))
    prog = MilProgram(tmp_path / "fc.mlpackage")
    assert list(prog.palettized.values()) == [4]
    np.testing.assert_allclose(prog(x.numpy()), fc(x).detach().numpy(), rtol=0, atol=2e-2)
