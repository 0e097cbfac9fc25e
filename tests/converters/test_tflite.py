"""TFLite / LiteRT on the shipped model: real onnx2tf conversion, the real LiteRT runtime, real data.

The towers are converted once per module (one onnx2tf run per tower serves fp32, fp16, int8 and int8_cpu),
offline: any download attempt fails the conversion.
"""

import hashlib
import logging
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from converters import tflite
from converters.tflite import TFLiteConfig, TFLiteRunner, check_onnx, convert, convert_many, inspect_tflite, verify
from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
from mobile_sdk.data.calibration import load_calibration
from mobile_sdk.data.tasks import build_tasks
from mobile_sdk.models.adapter import DualEncoder
from mobile_sdk.errors import ConversionError, DataError
from mobile_sdk.models.clip import l2_normalize
from mobile_sdk.tokenizer import Tokenizer


def _onnx2tf_import_error() -> str:
    """onnx2tf imports these at its top level (without declaring them); found without importing TF."""
    import importlib.util

    missing = [m for m in ("onnx2tf", "onnx_graphsurgeon", "sng4onnx", "psutil") if importlib.util.find_spec(m) is None]
    return f"No module named {', '.join(missing)}" if missing else ""


ONNX2TF_MISSING = _onnx2tf_import_error()
needs_onnx2tf = pytest.mark.skipif(bool(ONNX2TF_MISSING), reason=f"onnx2tf cannot be imported ({ONNX2TF_MISSING}); "
                                   f"install onnx-graphsurgeon, sng4onnx and psutil beside it")
PRECISIONS = ["fp32", "fp16", "int8", "int8_cpu", "int4w"]
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec:FutureWarning")


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_checkpoint())[0]


@pytest.fixture(scope="module")
def data():
    """Calibration inputs from calibration_data/, evaluation inputs from the test split (32 each)."""
    cal = load_calibration("calibration_data", 64, 32)
    tok = Tokenizer.from_file()
    test = build_tasks(n=32, tasks=("retrieval_i2t",))["retrieval"]
    return {
        "image": (torch.from_numpy(cal.images).permute(0, 3, 1, 2).float(),
                  torch.from_numpy(test.images).permute(0, 3, 1, 2).float()),
        "text": (torch.from_numpy(tok(cal.captions)), torch.from_numpy(tok([c[0] for c in test.captions]))),
    }


@pytest.fixture(scope="module")
def converted(model, data, tmp_path_factory):
    """{tower: (out_dir, {precision: Artifact})}, converted with downloads made impossible."""
    import requests

    def no_network(*args, **kwargs):
        raise requests.exceptions.ConnectionError(f"test is offline: {args}")

    cwd = os.getcwd()
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(requests, "get", no_network)
        for tower in ("image", "text"):
            cal = data[tower][0]
            d = tmp_path_factory.mktemp(f"tflite_{tower}")
            arts = convert_many(model, tower, cal[:1], [TFLiteConfig(p) for p in PRECISIONS], d,
                                calibration=[cal[i:i + 1] for i in range(len(cal))])
            out[tower] = (d, {a.precision: a for a in arts})
    assert os.getcwd() == cwd
    return out


def _cosines(model, tower, path, inputs):
    runner = TFLiteRunner(path)
    with torch.no_grad():
        ref = (model.visual if tower == "image" else model.text)(inputs).numpy()
    out = np.concatenate([runner(inputs[i:i + 1].numpy()) for i in range(len(inputs))])
    assert out.dtype == np.float32 and np.isfinite(out).all()
    return (ref * out).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)


@pytest.mark.slow
@needs_onnx2tf
@pytest.mark.parametrize("tower", ["image", "text"])
@pytest.mark.parametrize("precision, mean_min, row_min", [
    ("fp32", 0.99999, 0.99999),
    ("fp16", 0.9999, 0.9999),
    ("int8", 0.99, 0.97),
    ("int8_cpu", 0.99, 0.97),
    ("int4w", 0.998, 0.99),  # 4-bit blockwise weights: 0.9992 mean on both towers
])
def test_convert_run_and_match(model, data, converted, tower, precision, mean_min, row_min):
    out_dir, arts = converted[tower]
    art = arts[precision]
    assert art.path == out_dir / f"{tower}_{precision}.tflite" and art.path.with_suffix(".json").is_file()
    cos = _cosines(model, tower, art.path, data[tower][1])
    assert cos.mean() >= mean_min and cos.min() >= row_min, (cos.mean(), cos.min())
    assert art.extra["flex_or_custom_ops"] == [] and art.extra["ops"]
    assert not list(out_dir.glob(".*")) and not list(out_dir.glob("*.npy"))  # no temp leftovers
    if precision == "int4w":  # 4 bits a Linear weight: well under half the fp32 file; names kept
        assert art.extra["bytes"] < 0.5 * arts["fp32"].extra["bytes"], (art.extra["bytes"], arts["fp32"].extra["bytes"])
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(art.path))
        assert [d["name"] for d in it.get_input_details()] == [{"image": "pixels", "text": "ids"}[tower]]
        assert [d["name"] for d in it.get_output_details()] == ["embedding"]


@pytest.mark.slow
@needs_onnx2tf
@pytest.mark.parametrize("tower", ["image", "text"])
def test_int8_is_full_integer(converted, tower):
    _, arts = converted[tower]
    art = arts["int8"]
    report = inspect_tflite(art.path)
    assert report["float_tensors"] == 0 and art.extra["float_tensors"] == 0
    assert set(report["tensor_dtypes"]) <= {"int8", "int32", "bool"}, report["tensor_dtypes"]
    verify(report, "int8")
    assert art.inputs[0].dtype == ("int8" if tower == "image" else "int32")
    assert art.outputs[0].dtype == "int8" and art.outputs[0].scale > 0
    # The check can fail: the fp32 file of the same tower is refused as int8.
    with pytest.raises(ConversionError, match="not full-integer"):
        verify(inspect_tflite(arts["fp32"].path), "int8")


@pytest.mark.slow
@needs_onnx2tf
def test_residual_rotation_is_what_makes_the_int8_text_tower_accurate(model, data, converted, tmp_path):
    """The same text tower converted without `residual_rotation`: its outlier channels share one
    int8 scale per tensor with the rest, and the full-integer error (1 - cosine) is many times
    larger (shipped student: 0.0069 vs 0.0004 on the prompts of make demo)."""
    cal = data["text"][0]
    plain = convert(model, "text", cal[:1], TFLiteConfig("int8", residual_rotation=False), tmp_path,
                    calibration=[cal[i:i + 1] for i in range(len(cal))])
    assert plain.extra["residual_rotation"] is False
    rotated = converted["text"][1]["int8"]
    err_plain = 1.0 - _cosines(model, "text", plain.path, data["text"][1]).mean()
    err_rotated = 1.0 - _cosines(model, "text", rotated.path, data["text"][1]).mean()
    assert err_rotated < err_plain / 3.0, (err_rotated, err_plain)


def test_flex_ops_are_refused():
    report = {"flex_or_custom_ops": ["CUSTOM:FlexArgMax"], "float_tensors": 0, "float_tensor_names": []}
    with pytest.raises(ConversionError, match="FlexArgMax"):
        verify(report, "fp32")


@pytest.mark.slow
@needs_onnx2tf
def test_image_int8_input_is_pixel_minus_128(converted, data):
    _, arts = converted["image"]
    spec = arts["int8"].inputs[0]
    assert (spec.layout, spec.shape, spec.scale, spec.zero_point) == ("NHWC", (1, 64, 64, 3), 1.0, -128)
    assert arts["fp32"].inputs[0].layout == "NHWC" and arts["fp32"].inputs[0].dtype == "float32"
    runner = TFLiteRunner(arts["int8"].path)
    pixels = data["image"][1][:1].numpy()  # NCHW float32, integer values in [0, 255]
    runner(pixels)
    fed = runner.interpreter.get_tensor(runner.interpreter.get_input_details()[0]["index"])
    assert np.array_equal(fed.astype(np.int16), pixels.transpose(0, 2, 3, 1).astype(np.int16) - 128)


@pytest.mark.slow
@needs_onnx2tf
@pytest.mark.parametrize("tower", ["image", "text"])
def test_int8_cpu_runs_as_one_xnnpack_partition(converted, tower):
    _, arts = converted[tower]
    assert arts["int8_cpu"].extra["xnnpack_partitions"] == 1
    assert arts["fp32"].extra["xnnpack_partitions"] == 1
    assert arts["int8"].extra["xnnpack_partitions"] > 1  # full-integer softmax, GELU, LayerNorm split it
    assert arts["int8_cpu"].extra["float_tensors"] > 0  # the float islands
    assert arts["int8_cpu"].outputs[0].dtype == "int8"
    if tower == "image":  # the first 3x3 conv sums 27 products: float (3x faster in XNNPACK here), the rest int8
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(arts["int8_cpu"].path))
        dtype = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
        shape = {t["index"]: tuple(t["shape"]) for t in it.get_tensor_details()}
        convs = [(int(np.prod(shape[op["inputs"][1]][1:])), dtype[op["inputs"][1]]) for op in it._get_ops_details()
                 if op["op_name"] == "CONV_2D"]
        assert [d for k, d in convs if k <= tflite.SHORT_CONV] == [np.float32], convs
        assert len(convs) > 1 and all(d == np.int8 for k, d in convs if k > tflite.SHORT_CONV), convs


@pytest.mark.slow
@needs_onnx2tf
def test_runner_rejects_bad_inputs(converted, data):
    text = TFLiteRunner(converted["text"][1]["int8"].path)
    ids = data["text"][1][:1].numpy()
    assert np.array_equal(text(ids.astype(np.int64)), text(ids))  # any integer dtype is fine
    with pytest.raises(DataError, match="expected input shape"):
        text(np.zeros((2, 20), np.int32))
    with pytest.raises(DataError, match="integer token ids"):
        text(ids.astype(np.float32))
    image = TFLiteRunner(converted["image"][1]["fp32"].path)
    with pytest.raises(DataError, match=r"expected input shape \(1, 3, 64, 64\)"):
        image(np.zeros((1, 64, 64, 3), np.float32))  # NHWC is the artifact's layout, not the caller's
    with pytest.raises(DataError, match="float32"):
        image(np.zeros((1, 3, 64, 64), np.uint8))
    # a kernel that refuses at run time (LiteRT raises RuntimeError) is a typed, explained error
    def refuse():
        raise RuntimeError("tflite/kernels/div.cc:262 data[i] != zero_point was not true.")

    text.interpreter.invoke = refuse
    with pytest.raises(ConversionError, match=r"LiteRT could not run text_int8.tflite: .*div.cc"):
        text(ids)


@pytest.mark.slow
@needs_onnx2tf
def test_missing_and_corrupt_files(converted, tmp_path):
    with pytest.raises(ConversionError, match="not found"):
        TFLiteRunner(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(converted["text"][1]["fp32"].path.read_bytes()[:1000])
    with pytest.raises(ConversionError, match="cannot load"):
        TFLiteRunner(bad)
    with pytest.raises(ConversionError, match="cannot read"):
        inspect_tflite(bad)


def test_unknown_precision_and_bad_options():
    with pytest.raises(ConversionError, match="unknown TFLite precision"):
        TFLiteConfig("int4")
    with pytest.raises(ConversionError, match="calibration_percentile"):
        TFLiteConfig("int8", calibration_percentile=50)
    assert tflite.DEFAULT_PRECISION == "int8" and set(tflite.PRECISIONS) == {"fp32", "fp16", "int8", "int8_cpu", "int4w"}


@pytest.mark.parametrize("calibration", [None, []])
def test_int8_without_calibration_is_a_data_error(tmp_path, calibration):
    from mobile_sdk.models import create_model

    with pytest.raises(DataError, match="calibration"):
        convert(create_model("tiny"), "text", torch.zeros(1, 20, dtype=torch.int32), TFLiteConfig("int8"), tmp_path,
                calibration=calibration)
    assert not list(tmp_path.iterdir())


def test_calibration_must_look_like_the_example(tmp_path):
    from mobile_sdk.models import create_model

    ids = torch.zeros(1, 20, dtype=torch.int32)
    for bad in (torch.zeros(2, 20, dtype=torch.int32), torch.zeros(1, 20, dtype=torch.int64)):
        with pytest.raises(DataError, match="calibration input 1"):
            convert(create_model("tiny"), "text", ids, TFLiteConfig("int8"), tmp_path, calibration=[ids, bad])
    assert not list(tmp_path.iterdir())


def test_onnx2tf_sample_comes_from_our_images(data):
    sample = tflite._onnx2tf_sample("image", [data["image"][0][:3]])
    assert sample.shape == (20, 128, 128, 3) and sample.dtype == np.float32
    assert 0.0 <= sample.min() and sample.max() <= 1.0
    # nearest upsampling of calibration image 0, cycled to 20 images
    assert np.allclose(sample[0, ::2, ::2], data["image"][0][0].numpy().transpose(1, 2, 0) / 255.0)
    assert np.array_equal(sample[3], sample[0])


# --- the onnx2tf pitfalls, on tiny towers --------------------------------------------------------
class TinyText(torch.nn.Module):
    """ids -> embedding -> linear -> x * rsqrt(sum x^2): the text tower's ends, in miniature."""

    def __init__(self, normalize=l2_normalize, mask: float | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.tok, self.mix, self.proj = torch.nn.Embedding(37, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 8)
        self.normalize = normalize
        if mask is not None:
            self.register_buffer("mask", torch.triu(torch.full((20, 32), mask), 1))
        else:
            self.mask = None

    def forward(self, ids):
        x = self.tok(ids)
        if self.mask is not None:
            x = x + self.mask
        return self.normalize(self.proj(self.mix(x)[:, :1].flatten(1)))  # pools token 0, as the towers do


class TinyImage(torch.nn.Module):
    """pixels in [0, 255] -> patch conv -> class-token slice -> linear -> L2 norm, in miniature."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.patch, self.proj = torch.nn.Conv2d(3, 32, 4, stride=4), torch.nn.Linear(32, 8)

    def forward(self, pixels):
        x = self.patch(pixels / 255.0).flatten(2).transpose(1, 2)  # (B, 16, 32)
        return l2_normalize(self.proj(x[:, :1].flatten(1)))


def _export(module, example, path):
    tflite._export_onnx(module.eval(), example, path, "ids")
    return path


IDS = torch.randint(0, 37, (1, 20), dtype=torch.int32)


def test_reduce_l2_is_refused(tmp_path):
    path = _export(TinyText(normalize=lambda x: torch.nn.functional.normalize(x, dim=-1)), IDS, tmp_path / "m.onnx")
    with pytest.raises(ConversionError, match="ReduceL2"):
        check_onnx(path, "text")
    out = tmp_path / "out"
    with pytest.raises(ConversionError, match=r"ONNX check: .*ReduceL2") as e:
        convert(DualEncoder.from_towers(text=TinyText(normalize=lambda x: torch.nn.functional.normalize(x, dim=-1))), "text",
                IDS, TFLiteConfig("fp32"), out)
    assert "--- last" in str(e.value)  # the captured log's tail comes with the error
    assert not list(out.glob("*.tflite")) and not list(out.glob("*.json")) and not list(out.glob(".*"))


def test_int64_ids_are_refused(tmp_path):
    path = _export(TinyText(), IDS.long(), tmp_path / "m.onnx")
    with pytest.raises(ConversionError, match="must be int32"):
        check_onnx(path, "text")
    with pytest.raises(DataError, match="int32"):
        convert(DualEncoder.from_towers(text=TinyText()), "text", IDS.long(), TFLiteConfig("fp32"), tmp_path / "out")


def test_duplicate_tensor_names_are_refused(tmp_path):
    path = tmp_path / "m.onnx"  # naming the output after nn.Embedding's Gather output duplicates the name
    torch.onnx.export(TinyText().eval(), (IDS,), str(path), input_names=["ids"], output_names=["embedding"],
                      dynamo=True, external_data=False)
    with pytest.raises(ConversionError, match=r"names several tensors \['embedding'\]"):
        check_onnx(path, "text")


@pytest.mark.parametrize("value", [float("-inf"), -1e31])
def test_infinite_mask_constants_are_refused(tmp_path, value):
    path = _export(TinyText(mask=value), IDS, tmp_path / "m.onnx")
    with pytest.raises(ConversionError, match=r"constant '.*' .*infinite"):
        check_onnx(path, "text")
    assert check_onnx(_export(TinyText(mask=-30.0), IDS, tmp_path / "ok.onnx"), "text")  # a finite mask is fine


@pytest.mark.slow
@needs_onnx2tf
def test_onnx2tf_gets_a_copy_and_a_private_working_dir(tmp_path):
    path = _export(TinyText(), IDS, tmp_path / "m.onnx")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    work = tmp_path / "work"
    work.mkdir()
    cwd = os.getcwd()
    with tflite.captured_output(tmp_path / "log.txt"):
        saved = tflite._run_onnx2tf(path, work, "text", None, False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # onnx2tf rewrote only its copy
    assert (work / "onnx2tf_input.onnx").is_file() and (saved / "saved_model.pb").is_file()
    assert os.getcwd() == cwd


@pytest.mark.slow
@needs_onnx2tf
def test_image_conversion_is_offline_only_thanks_to_our_sample_file(tmp_path, monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise requests.exceptions.ConnectionError("offline")

    monkeypatch.setattr(requests, "get", no_network)
    pixels = torch.rand(1, 3, 16, 16) * 255
    path = tmp_path / "m.onnx"
    tflite._export_onnx(TinyImage().eval(), pixels, path, "pixels")
    for name, works in (("not_what_onnx2tf_looks_for.npy", False), (tflite.ONNX2TF_SAMPLE_FILE, True)):
        work = tmp_path / f"work_{works}"
        work.mkdir()
        monkeypatch.setattr(tflite, "ONNX2TF_SAMPLE_FILE", name)
        with tflite.captured_output(tmp_path / "log.txt"):
            if works:
                assert (tflite._run_onnx2tf(path, work, "image", [pixels], False) / "saved_model.pb").is_file()
            else:  # without the file onnx2tf goes for the network, which is not there
                with pytest.raises(ConversionError, match="ConnectionError: offline"):
                    tflite._run_onnx2tf(path, work, "image", [pixels], False)
        assert (work / name).is_file() and not (tmp_path / name).exists() and not os.path.exists(name)


@pytest.mark.slow
@needs_onnx2tf
def test_output_goes_to_the_log_not_the_console(tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="converters.tflite")
    # check_ops makes onnx2tf print a line per op: all of it must land in the log
    art = convert(DualEncoder.from_towers(text=TinyText()), "text", IDS, TFLiteConfig("fp32", check_ops=True), tmp_path)
    printed = capfd.readouterr()
    assert "onnx_output_name" not in printed.out + printed.err and "torch.onnx" not in printed.out + printed.err
    log_file = tmp_path / "text_fp32.log"
    assert art.extra["log"] == log_file.name and "[torch.onnx]" in log_file.read_text()  # beside the artifact
    assert any("onnx2tf / TensorFlow output" in r.getMessage() for r in caplog.records)  # shown at DEBUG
    check = art.extra["onnx2tf_check"]  # onnx2tf's per-op float check, read back from the log
    assert check["checked"] > 5 and check.get("matches") == check["checked"], check
    runner = TFLiteRunner(art.path)
    with torch.no_grad():
        assert np.allclose(runner(IDS.numpy()), TinyText().eval()(IDS).numpy(), atol=1e-5)


def test_per_op_summary_reads_unmatched_ops(tmp_path):
    log_file = tmp_path / "x.log"
    log_file.write_text(
        "\x1b[32mINFO:\x1b[0m onnx_output_name: add shape: (1, 2) dtype: float32 validate_result: \x1b[7m Matches \x1b[0m\n"
        "INFO: onnx_output_name: val_3 shape: (1, 2) dtype: float32 validate_result:  Unmatched  max_abs_error: 0.25\n"
        "INFO: onnx_output_name: v shape: (1, 2) dtype: float32 validate_result:  Skipped (Deleted or Shape Unmatched)\n")
    assert tflite._per_op_summary(log_file) == {"checked": 3, "matches": 1, "unmatched": 1, "skipped": 1,
                                                "worst_unmatched": {"val_3": 0.25}}


# --- per-layer intermediates (the parity checker's divergence localization) --------------------
N_LAYERS = 8  # inputs per localization test


def _tower(model, tower):
    return model.visual if tower == "image" else model.text


def _calibration(data, tower):
    cal = data[tower][0]
    return [cal[i:i + 1] for i in range(len(cal))]


@pytest.fixture(scope="module")
def layer_refs(model, data):
    """Eager per-layer outputs of the first N_LAYERS test inputs, per tower, computed once (eager
    torch is slow in a process that has imported TensorFlow)."""
    from mobile_sdk.parity.localize import reference_intermediates

    cache = {}

    def get(tower):
        if tower not in cache:
            cache[tower] = reference_intermediates(_tower(model, tower), data[tower][1][:N_LAYERS])
        return cache[tower]
    return get


@pytest.mark.slow
@needs_onnx2tf
@pytest.mark.parametrize("tower", ["image", "text"])
def test_intermediates_of_fp32_model_match_eager_hooks(model, data, converted, layer_refs, tower):
    """Every layer is found in the .tflite by structure and equals the eager module's output (the
    text tower's rotated residual stream rotated back, compared mean-free as the parity checker does)."""
    from mobile_sdk.parity.localize import compare_layers, layer_paths

    x = data[tower][1][:N_LAYERS]
    art = converted[tower][1]["fp32"]
    assert art.extra["residual_rotation"] == (tower == "text")
    got = tflite.intermediates(model, tower, "fp32", x, _calibration(data, tower), art.path)
    ref = layer_refs(tower)
    assert set(got) == set(layer_paths(_tower(model, tower))) | {"embedding"} == set(ref)
    for layer, r in ref.items():
        assert got[layer].shape == r.shape and got[layer].dtype == np.float32, layer
    curve = compare_layers(ref, got, 60.0)  # measured 128-134 dB
    assert curve["first_divergent_layer"] is None, curve


@pytest.mark.slow
@needs_onnx2tf
@pytest.mark.parametrize("tower", ["image", "text"])
@pytest.mark.parametrize("precision", ["int8", "int8_cpu"])
def test_intermediates_of_int8_models(model, data, converted, layer_refs, tower, precision):
    """Full-integer and float-island int8: the same layers map (int8 tensors dequantized), the
    curve is finite and `embedding` is exactly what the runner returns."""
    from mobile_sdk.parity.localize import compare_layers, layer_paths

    x = data[tower][1][:N_LAYERS]
    art = converted[tower][1][precision]
    got = tflite.intermediates(model, tower, precision, x, _calibration(data, tower), art.path)
    assert set(got) == set(layer_paths(_tower(model, tower))) | {"embedding"}
    runner = TFLiteRunner(art.path)
    np.testing.assert_array_equal(got["embedding"], np.concatenate([runner(x[i:i + 1].numpy()) for i in range(len(x))]))
    curve = compare_layers(layer_refs(tower), got, 15.0)
    sqnr = {c["layer"]: c["sqnr_db"] for c in curve["layers"]}
    assert len(sqnr) == len(got) and all(np.isfinite(v) for v in sqnr.values()), sqnr
    assert all(v > 5.0 for v in sqnr.values()), sqnr
    # int8 keeps the residual stream far above noise (measured 21-31 dB); the float reference would not
    assert min(sqnr[f"blocks.{i}"] for i in range(len(_tower(model, tower).blocks))) > 15.0, sqnr


@pytest.mark.slow
@needs_onnx2tf
def test_perturbed_block_is_localized(model, data, layer_refs, tmp_path):
    """A .tflite converted from a model whose text blocks.1 weights got noise is localized to
    blocks.1 against the unperturbed reference (blocks.0 stays exact)."""
    import copy

    from mobile_sdk.parity.localize import compare_layers

    k = 1
    bad = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in bad.text.blocks[k].parameters():
            if p.dim() == 2:
                p.add_(torch.randn(p.shape, generator=g) * p.std())
    cal, x = data["text"]
    art = convert(bad, "text", cal[:1], TFLiteConfig("fp32"), tmp_path)
    x = x[:N_LAYERS]
    got = tflite.intermediates(model, "text", "fp32", x, None, art.path)
    result = compare_layers(layer_refs("text"), got, 30.0)
    assert result["first_divergent_layer"] == f"blocks.{k}", result
    by_layer = {c["layer"]: c["sqnr_db"] for c in result["layers"]}
    assert by_layer["blocks.0"] > 60.0 and by_layer[f"blocks.{k}"] < 25.0, by_layer


def test_layer_mapping_refuses_graphs_it_does_not_understand():
    ops = [{"index": 0, "op_name": "FULLY_CONNECTED", "inputs": [0, 1, 2], "outputs": [3]}]
    with pytest.raises(ConversionError, match="found 0 LayerNorms, expected 7"):
        tflite.layer_tensors(ops, ["blocks.0", "blocks.1", "blocks.2", "ln_final"])
    with pytest.raises(ConversionError, match="artifact_path"):
        tflite.intermediates(SimpleNamespace(), "text", "int8", torch.zeros(1, 20, dtype=torch.int32), None, None)


@pytest.mark.slow
@needs_onnx2tf
@pytest.mark.parametrize("tower", ["image", "text"])
def test_tensors_and_signature_carry_the_manifest_names(converted, tower):
    from ai_edge_litert.interpreter import Interpreter

    name = {"image": "pixels", "text": "ids"}[tower]
    for precision, art in converted[tower][1].items():
        it = Interpreter(model_path=str(art.path))
        assert [d["name"] for d in it.get_input_details()] == [name], precision
        assert [d["name"] for d in it.get_output_details()] == ["embedding"], precision
        # the int8 models come with a signature (onnx2tf's float files have none)
        assert it.get_signature_list() in ({}, {"serving_default": {"inputs": [name], "outputs": ["embedding"]}})
        if precision.startswith("int8"):
            assert it.get_signature_list(), precision
        names = [d["name"] for d in it.get_tensor_details()]
        assert names.count("embedding") == 1 and names.count(name) == 1, precision
        assert (art.inputs[0].name, art.outputs[0].name) == (name, "embedding")
        assert set(art.extra["description"]["inputs"]) == {name}


class _DepthwiseImage(torch.nn.Module):
    """pixels -> conv -> 7x7 depthwise (FastViT's token mixer) -> mean -> linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, 16, 4, stride=4)
        self.dw = torch.nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.proj = torch.nn.Linear(16, 8)

    def forward(self, pixels):
        x = self.stem(pixels / 255.0)
        return self.proj((x + self.dw(x)).mean((2, 3)))


@pytest.mark.slow
@needs_onnx2tf
def test_large_depthwise_convs_reach_litert_as_bands(tmp_path):
    """A 7x7 depthwise conv goes to LiteRT as row bands of at most 25 taps (XNNPACK's depthwise
    kernels stop there), the function unchanged; the model stays one XNNPACK partition."""
    tower = _DepthwiseImage().eval()
    pixels = torch.rand(1, 3, 32, 32) * 255
    art = convert(DualEncoder.from_towers(image=tower), "image", pixels, TFLiteConfig("fp32"), tmp_path)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(art.path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    shapes = {t["index"]: tuple(t["shape"]) for t in it.get_tensor_details()}
    taps = [int(np.prod(shapes[op["inputs"][1]][1:3])) for op in it._get_ops_details() if op["op_name"] == "DEPTHWISE_CONV_2D"]
    assert len(taps) == 3 and max(taps) <= 25, taps  # 3x7 + 3x7 + 1x7
    assert art.extra["xnnpack_partitions"] == 1
    runner = tflite.load(art.path)
    xs = torch.rand(4, 1, 3, 32, 32) * 255
    with torch.no_grad():
        for x in xs:
            np.testing.assert_allclose(runner(x.numpy()), tower(x).numpy(), rtol=1e-4, atol=1e-4)


class _LayerScaledImage(torch.nn.Module):
    """A residual block whose branch is scaled by 1e-5 (a layer scale at its initial value)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, 16, 4, stride=4)
        self.branch = torch.nn.Conv2d(16, 16, 1)
        self.proj = torch.nn.Linear(16, 8)

    def forward(self, pixels):
        x = self.stem(pixels / 255.0)
        x = x + 1e-5 * self.branch(torch.nn.functional.gelu(x))
        return self.proj(x.mean((2, 3)))


@pytest.mark.slow
@needs_onnx2tf
def test_int8_cpu_keeps_out_of_range_adds_in_float(tmp_path):
    """An int8 ADD whose inputs' scales are far from its output's (here 1e-5) is one XNNPACK does
    not take; int8_cpu keeps it in float, so the model stays one partition."""
    tower = _LayerScaledImage().eval()
    cal = [torch.rand(1, 3, 32, 32) * 255 for _ in range(8)]
    art = convert(DualEncoder.from_towers(image=tower), "image", cal[0], TFLiteConfig("int8_cpu"), tmp_path,
                  calibration=cal)
    assert art.extra["xnnpack_partitions"] == 1
    assert art.extra["ops"].get("ADD", 0) >= 1 and art.extra["ops"].get("DEQUANTIZE", 0) >= 1
