"""ExecuTorch + XNNPACK on the shipped model: real lowering, the real runtime, real data."""

import numpy as np
import pytest
import torch

from converters.executorch import ExecuTorchConfig, PteRunner, convert
from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
from mobile_sdk.data.calibration import load_calibration
from mobile_sdk.data.tasks import build_tasks
from mobile_sdk.errors import ConversionError, DataError
from mobile_sdk.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_checkpoint())[0]


@pytest.fixture(scope="module")
def data():
    """Calibration inputs from calibration_data/, evaluation inputs from the test split."""
    cal = load_calibration("calibration_data", 64, 16)
    tok = Tokenizer.from_file()
    test = build_tasks(n=12, tasks=("retrieval_i2t",))["retrieval"]
    return {
        "image": (torch.from_numpy(cal.images).permute(0, 3, 1, 2).float(),
                  torch.from_numpy(test.images).permute(0, 3, 1, 2).float()),
        "text": (torch.from_numpy(tok(cal.captions)), torch.from_numpy(tok([c[0] for c in test.captions]))),
    }


def _cosines(model, tower, artifact, inputs):
    runner = PteRunner(artifact.path)
    with torch.no_grad():
        ref = (model.visual if tower == "image" else model.text)(inputs).numpy()
    out = np.concatenate([runner(inputs[i:i + 1].numpy()) for i in range(len(inputs))])
    assert np.isfinite(out).all()
    return (ref * out).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("tower, precision, mean_min, row_min", [
    ("image", "fp32", 0.99999, 0.99999),
    ("text", "fp32", 0.99999, 0.99999),
    ("image", "int8", 0.995, 0.98),
    pytest.param("image", "int8_dynamic", 0.995, 0.98, marks=pytest.mark.heavy),  # the shipped parity suite covers it
    ("text", "int8_dynamic", 0.995, 0.98),
    pytest.param("text", "int8", 0.995, 0.98, marks=pytest.mark.heavy),  # static int8: the image tower's case covers it
    pytest.param("text", "int4w", 0.998, 0.99, marks=pytest.mark.heavy),  # 0.99928 mean on the test split
    ("image", "int4w", 0.998, 0.99),  # 4-bit grouped weights, the patch conv too (as a Linear): 0.9993 mean
])
def test_lower_run_and_match(model, data, tmp_path, tower, precision, mean_min, row_min):
    cal, test = data[tower]
    # no debug twin: localization's tests lower it (tests/parity/test_check.py)
    art = convert(model, tower, cal[:1], ExecuTorchConfig(precision, debug_twin=False), tmp_path,
                  calibration=[cal[i:i + 1] for i in range(len(cal))])
    assert art.path.name == f"{tower}_{precision}.pte" and art.path.with_suffix(".json").is_file()
    cos = _cosines(model, tower, art, test)
    assert cos.mean() >= mean_min and cos.min() >= row_min, (cos.mean(), cos.min())
    rep = art.extra["delegation"]
    assert rep["delegated_fraction"] >= 0.98, rep  # with the rewrites only the text embedding stays out
    assert set(rep["portable_ops"]) <= {"aten_embedding_default"}, rep
    assert rep["delegated_subgraphs"] == 1, rep  # one XNNPACK island (q / k / v fused into one Linear)
    assert not list(tmp_path.glob(".*"))  # no temp folders left behind
    if precision == "int4w":  # 4 bits a weight, plus one fp32 scale per 32 weights, the fp32 token embedding
        # (text) and the fp32 3x3 conv stem (image)
        fp32_bytes = 4 * sum(p.numel() for p in (model.visual if tower == "image" else model.text).parameters())
        assert art.extra["bytes"] < 0.25 * fp32_bytes, (art.extra["bytes"], fp32_bytes)


@pytest.fixture(scope="module")
def text_fp32(model, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("et")
    return convert(model, "text", data["text"][0][:1], ExecuTorchConfig("fp32", debug_twin=False), out)


@pytest.mark.slow
def test_runner_rejects_bad_inputs(text_fp32):
    runner = PteRunner(text_fp32.path)
    with pytest.raises(DataError, match="expected shape"):
        runner(np.zeros((2, 20), np.int32))
    with pytest.raises(DataError, match="expected dtype int32"):
        runner(np.zeros((1, 20), np.int64))


@pytest.mark.slow
def test_missing_and_corrupt_programs(text_fp32, tmp_path):
    with pytest.raises(ConversionError, match="not found"):
        PteRunner(tmp_path / "nope.pte")
    bad = tmp_path / "bad.pte"
    bad.write_bytes(text_fp32.path.read_bytes()[:1000])
    with pytest.raises(ConversionError, match="cannot load"):
        PteRunner(bad)


def test_unknown_precision():
    with pytest.raises(ConversionError, match="unknown ExecuTorch precision"):
        ExecuTorchConfig("int4")


def test_static_int8_without_calibration_is_a_data_error(tmp_path):
    from mobile_sdk.models import create_model

    with pytest.raises(DataError, match="calibration"):
        convert(create_model("tiny"), "text", torch.zeros(1, 20, dtype=torch.int32), ExecuTorchConfig("int8"), tmp_path)
    assert not list(tmp_path.iterdir())


class _PointwiseTower(torch.nn.Module):
    """A conv tower with 1x1 convs between depthwise ones (FastViT's pattern), [0, 255] pixels in."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, 64, 4, stride=4)
        self.dw = torch.nn.Conv2d(64, 64, 3, padding=1, groups=64)
        self.up, self.down = torch.nn.Conv2d(64, 256, 1), torch.nn.Conv2d(256, 64, 1)
        self.head = torch.nn.Linear(64, 32)

    def forward(self, x):
        x = self.stem(x / 255.0)
        x = x + self.down(torch.nn.functional.gelu(self.up(self.dw(x))))
        return self.head(x.mean((2, 3), keepdim=True).flatten(1))


def test_int8_dynamic_quantizes_pointwise_convs_as_convs(tmp_path):
    """int8_dynamic keeps 1x1 convs as convs and still quantizes them (XNNPACK's dynamic 1x1
    convolution): one delegate, no portable op, about a quarter of fp32's bytes for those weights,
    and the output within int8's error of eager."""
    from mobile_sdk.models.adapter import DualEncoder

    tower = _PointwiseTower().eval()
    model = DualEncoder.from_towers(image=tower)
    x = torch.rand(1, 3, 32, 32) * 255
    arts = {p: convert(model, "image", x, ExecuTorchConfig(precision=p, debug_twin=False), tmp_path / p,
                       calibration=[x])
            for p in ("fp32", "int8_dynamic")}
    for a in arts.values():
        d = a.extra["delegation"]
        assert d["delegated_subgraphs"] == 1 and d["portable_nodes"] == 0, (a.precision, d["portable_ops"])
    pointwise = 4 * (64 * 256 * 2)  # fp32 bytes of the two 1x1 convs' weights
    saved = arts["fp32"].path.stat().st_size - arts["int8_dynamic"].path.stat().st_size
    assert saved > 0.6 * pointwise, (saved, pointwise)
    xs = torch.rand(8, 3, 32, 32) * 255
    with torch.no_grad():
        ref = tower(xs).numpy()
    out = np.concatenate([PteRunner(arts["int8_dynamic"].path)(xs[i:i + 1].numpy()) for i in range(len(xs))])
    cos = (ref * out).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)
    assert cos.min() > 0.995
    # ... as convs: the quantized graph's 1x1 conv2d nodes read per-channel int8 weights
    from converters import executorch as et
    from converters.rewrites import for_xnnpack

    gm = et._prepare(for_xnnpack(tower, pointwise_linear=et._pointwise_linear("int8_dynamic")), x, None,
                     "int8_dynamic")
    quantized = [n.args[1].args[0] for n in gm.graph.nodes if n.target == torch.ops.aten.conv2d.default
                 and "dequantize_per_channel" in str(n.args[1].target)]
    weights = [getattr(gm, w.target) for w in quantized]
    assert [(w.dtype, tuple(w.shape[2:])) for w in weights] == [(torch.int8, (1, 1))] * 2
