"""The numpy MIL interpreter (converters/mil.py): kernels against numpy / PyTorch references,
programs converted by coremltools from tiny torch modules, the errors it must raise, and
deliberately broken programs it must expose."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from converters.mil import KERNELS, _lut_to_dense
from mobile_sdk.errors import ConversionError, DataError

OP = SimpleNamespace(name="op", op_type="test")


def k(name, **a):
    return KERNELS[name](a, OP)


# ---------------------------------------------------------------------------------------------
# Kernels, called directly (no coremltools)
# ---------------------------------------------------------------------------------------------

def test_slice_by_index_masks_strides_and_squeeze():
    x = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    got = k("slice_by_index", x=x, begin=np.array([1, 0, 5]), end=np.array([4, 3, 0]), stride=np.array([2, 1, -2]),
            begin_mask=np.array([False, True, False]), end_mask=np.array([False, False, True]),
            squeeze_mask=None)
    np.testing.assert_array_equal(got, x[1:4:2, :3, 5::-2])
    got = k("slice_by_index", x=x, begin=np.array([2, -2, 0]), end=np.array([0, 0, 6]), stride=None,
            begin_mask=None, end_mask=np.array([False, True, False]), squeeze_mask=np.array([True, False, False]))
    np.testing.assert_array_equal(got, x[2, -2:, 0:6])


def test_matmul_transposes_and_broadcast():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 5, 4)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(k("matmul", x=x, y=y, transpose_x=False, transpose_y=True), x @ y.T, rtol=1e-5)
    np.testing.assert_allclose(k("matmul", x=np.swapaxes(x, 1, 2), y=y.T, transpose_x=True, transpose_y=False),
                               x @ y.T, rtol=1e-5)
    np.testing.assert_allclose(k("linear", x=x, weight=y, bias=np.ones(6, np.float32)), x @ y.T + 1, rtol=1e-5)


@pytest.mark.parametrize("stride, pad_type, pad, dil, groups", [
    (1, "valid", None, 1, 1),
    (2, "custom", [1, 1, 1, 1], 1, 1),
    (2, "custom", [0, 2, 1, 0], 2, 2),
    (1, "same", None, 1, 4),
    (2, "same", None, 2, 1),
    (2, "same_lower", None, 1, 1),
])
def test_conv2d_against_torch(stride, pad_type, pad, dil, groups):
    torch.manual_seed(0)
    x, w, b = torch.randn(1, 4, 9, 10), torch.randn(8, 4 // groups, 3, 2), torch.randn(8)
    got = k("conv", x=x.numpy(), weight=w.numpy(), bias=b.numpy(), strides=np.array([stride, stride]),
            pad_type=pad_type, pad=None if pad is None else np.array(pad), dilations=np.array([dil, dil]),
            groups=np.int32(groups))
    if pad_type in ("same", "same_lower"):  # explicit reference padding from the MIL definition
        pads = []
        for size, kk in zip((9, 10), (3, 2)):
            eff = (kk - 1) * dil + 1
            total = max((-(-size // stride) - 1) * stride + eff - size, 0)
            lo = total // 2 if pad_type == "same" else total - total // 2
            pads.append((lo, total - lo))
        pad = [pads[0][0], pads[0][1], pads[1][0], pads[1][1]]
    pad = pad or [0, 0, 0, 0]
    xp = F.pad(x, (pad[2], pad[3], pad[0], pad[1]))
    ref = F.conv2d(xp, w, b, stride=stride, dilation=dil, groups=groups).numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_conv1d_and_pools_against_torch():
    torch.manual_seed(0)
    x, w = torch.randn(2, 3, 11), torch.randn(5, 3, 3)
    got = k("conv", x=x.numpy(), weight=w.numpy(), strides=np.array([2]), pad_type="custom", pad=np.array([1, 1]),
            dilations=np.array([1]), groups=np.int32(1))
    np.testing.assert_allclose(got, F.conv1d(x, w, stride=2, padding=1).numpy(), rtol=1e-4, atol=1e-5)
    x = torch.randn(1, 3, 7, 8)
    got = k("max_pool", x=x.numpy(), kernel_sizes=np.array([3, 3]), strides=np.array([2, 2]), pad_type="custom",
            pad=np.array([1, 1, 1, 1]), ceil_mode=False)
    np.testing.assert_allclose(got, F.max_pool2d(x, 3, 2, 1).numpy())
    got = k("avg_pool", x=x.numpy(), kernel_sizes=np.array([3, 3]), strides=np.array([2, 2]), pad_type="custom",
            pad=np.array([1, 1, 1, 1]), exclude_padding_from_average=True, ceil_mode=False)
    np.testing.assert_allclose(got, F.avg_pool2d(x, 3, 2, 1, count_include_pad=False).numpy(), rtol=1e-5, atol=1e-7)


def test_norms_softmax_gelu_against_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16) * 3
    g, b = torch.randn(16), torch.randn(16)
    np.testing.assert_allclose(k("layer_norm", x=x.numpy(), axes=np.array([-1]), gamma=g.numpy(), beta=b.numpy(),
                                 epsilon=np.float32(1e-5)),
                               F.layer_norm(x, (16,), g, b, 1e-5).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(k("softmax", x=x.numpy(), axis=np.int32(1)), x.softmax(1).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(k("gelu", x=x.numpy(), mode="EXACT"), F.gelu(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(k("gelu", x=x.numpy(), mode="TANH_APPROXIMATION"),
                               F.gelu(x, approximate="tanh").numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConversionError, match="gelu.*'CUBIC'"):
        k("gelu", x=x.numpy(), mode="CUBIC")
    x4 = torch.randn(1, 3, 4, 4)
    mean, var = torch.randn(3), torch.rand(3) + 0.5
    np.testing.assert_allclose(k("batch_norm", x=x4.numpy(), mean=mean.numpy(), variance=var.numpy(), gamma=g[:3].numpy(),
                                 beta=b[:3].numpy(), epsilon=np.float32(1e-5)),
                               F.batch_norm(x4, mean, var, g[:3], b[:3], eps=1e-5).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(k("rsqrt", x=np.float32([4.0, 0.25]), epsilon=np.float32(0)), [0.5, 2.0])


def test_tensor_ops():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    # iOS17 reshape: each 0 copies the input dim aligned from the right, 1 where none is left.
    assert k("reshape", x=x, shape=np.array([0, -1])).shape == (3, 8)
    assert k("reshape", x=np.zeros((2, 50)), shape=np.array([1, 0, -1, 0])).shape == (1, 1, 2, 50)  # MIL's example
    np.testing.assert_array_equal(k("concat", values=[x, x + 100], axis=np.int32(1), interleave=True)[:, :2],
                                  np.stack([x[:, 0], x[:, 0] + 100], 1))
    parts = k("split", x=x, axis=np.int32(2), split_sizes=np.array([1, 3]), num_splits=None)
    assert [p.shape for p in parts] == [(2, 3, 1), (2, 3, 3)]
    assert k("expand_dims", x=x, axes=np.array([0, -1])).shape == (1, 2, 3, 4, 1)
    assert k("squeeze", x=x[:, :1, None], axes=np.array([1, 2])).shape == (2, 4)
    idx = np.array([[2, 0], [1, 1]], np.int32)
    np.testing.assert_array_equal(k("gather", x=x, indices=idx, axis=np.int32(1), batch_dims=np.int32(1)),
                                  np.stack([x[0, [2, 0]], x[1, [1, 1]]]))
    np.testing.assert_array_equal(k("gather_nd", x=x, indices=np.array([[1, 2], [0, 0]]), batch_dims=np.int32(0)),
                                  np.stack([x[1, 2], x[0, 0]]))
    with pytest.raises(DataError, match="out of range"):
        k("gather", x=x, indices=np.array([3]), axis=np.int32(1), batch_dims=np.int32(0))
    np.testing.assert_array_equal(k("cast", x=np.float32([-1.7, 2.9]), dtype="int32"), [-1, 2])
    np.testing.assert_array_equal(k("pad", x=x[0], pad=np.array([1, 0, 0, 2]), mode="reflect", constant_val=None),
                                  np.pad(x[0], [(1, 0), (0, 2)], mode="reflect"))


def test_lut_to_dense_per_grouped_channel_and_vector():
    # The worked example of coremltools' iOS18 constexpr_lut_to_dense docstring (two palettes,
    # one per 3-row block).
    indices = np.array([2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3]).reshape(6, 2)
    lut = np.array([1.0, 5.0, 9.0, 13.0, 2.0, 10.0, 18.0, 26.0], np.float16).reshape(2, 1, 4, 1)
    np.testing.assert_array_equal(_lut_to_dense(indices, lut),
                                  [[9, 13], [13, 1], [5, 1], [26, 2], [18, 10], [2, 26]])
    # Per-tensor vector palettization (VECTOR_SIZE 3 along axis 1): each index expands to 3 values.
    rng = np.random.default_rng(0)
    ind = rng.integers(0, 2, (2, 2, 2))
    lut = rng.standard_normal((1, 1, 1, 2, 3)).astype(np.float32)
    got = _lut_to_dense(ind, lut, vector_axis=1)
    ref = np.zeros((2, 6, 2), np.float32)
    for i in range(2):
        for j in range(2):
            for kk in range(2):
                ref[i, 3 * j:3 * j + 3, kk] = lut[0, 0, 0, ind[i, j, kk]]
    np.testing.assert_array_equal(got, ref)


# ---------------------------------------------------------------------------------------------
# Programs converted by coremltools from tiny modules
# ---------------------------------------------------------------------------------------------

class Kitchen(nn.Module):
    """One op family per output, so one conversion checks many kernels against eager PyTorch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.gconv = nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=3)
        self.conv1d = nn.Conv1d(4, 5, 3, padding=1)
        self.ln = nn.LayerNorm(8)
        self.lin = nn.Linear(8, 5)

    def forward(self, x):  # (1, 4, 8, 8)
        a = x[0]
        c = self.conv(x)
        parts = torch.cat([x, x * 2], 1).split([3, 5], dim=1)
        return (
            c,
            self.gconv(torch.relu(c)),
            self.conv1d(x.flatten(2)[:, :, :16]),
            self.ln(x),
            x.softmax(dim=1),
            F.gelu(x),
            # (Not F.gelu(approximate="tanh"): coremltools 9.0 converts it to gelu mode EXACT from
            # torch.export, a 2e-4 difference the interpreter faithfully reproduces.)
            torch.clamp(x, -0.5, 0.7),
            torch.bmm(a, a.transpose(1, 2)),
            torch.bmm(a.transpose(1, 2), a),
            x[:, 1:4:2, ::3, 2:],
            parts[1] - parts[0].sum(1, keepdim=True),
            x.mean(dim=(2, 3), keepdim=True) + x.amax(-1, keepdim=True),
            torch.rsqrt((x * x).sum(-1) + 1e-6),
            torch.sigmoid(x) * x + torch.tanh(x),
            F.max_pool2d(x, 3, stride=2, padding=1) + F.avg_pool2d(x, 3, stride=2, padding=1),
            self.lin(x),
            F.pad(x, (1, 2, 0, 1), mode="reflect"),
            x.permute(0, 2, 3, 1).reshape(1, 64, 4),
        )


N_KITCHEN = 18


def _to_mlpackage(module, example, path, precision="fp32", outputs=None):
    import coremltools as ct

    ep = torch.export.export(module.eval(), (example,)).run_decompositions({})
    ml = ct.convert(ep, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                    compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                    inputs=[ct.TensorType(name="x", shape=tuple(example.shape),
                                          dtype=np.float32 if example.dtype == torch.float32 else np.int32)],
                    outputs=[ct.TensorType(name=n, dtype=np.float32) for n in outputs] if outputs else None)
    ml.save(str(path))
    return path


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    torch.manual_seed(0)
    module, x = Kitchen().eval(), torch.randn(1, 4, 8, 8)
    out = tmp_path_factory.mktemp("mil")
    names = [f"o{i}" for i in range(N_KITCHEN)]
    with torch.no_grad():
        ref = [t.numpy() for t in module(x)]
    return {"x": x.numpy(), "ref": ref, "names": names,
            "fp32": _to_mlpackage(module, x, out / "k32.mlpackage", "fp32", names),
            "fp16": _to_mlpackage(module, x, out / "k16.mlpackage", "fp16", names)}


@pytest.mark.slow
def test_fp32_program_matches_torch_op_by_op(kitchen):
    from converters.mil import MilProgram

    prog = MilProgram(kitchen["fp32"])
    wanted = {"conv", "layer_norm", "softmax", "gelu", "matmul", "slice_by_index", "concat", "split",
              "reduce_mean", "reduce_max", "reduce_sum", "rsqrt", "linear", "max_pool", "avg_pool", "pad",
              "transpose", "reshape", "relu", "tanh", "clip"}
    assert wanted <= set(prog.op_types), sorted(set(prog.op_types))
    out = prog.run(kitchen["x"])
    assert list(out) == kitchen["names"]
    for name, ref in zip(kitchen["names"], kitchen["ref"]):
        got = out[name]
        assert got.shape == ref.shape, name
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-5, err_msg=name)


@pytest.mark.slow
def test_fp16_program_and_fp16_emulation(kitchen):
    from converters.mil import MilProgram

    p16 = MilProgram(kitchen["fp16"])
    out = p16.run(kitchen["x"], keep_all=True)
    for name, ref in zip(kitchen["names"], kitchen["ref"]):
        np.testing.assert_allclose(out[name], ref, rtol=2e-2, atol=2e-2, err_msg=name)
    # The fp16 program's intermediate values lie on the float16 grid (fp16 storage between ops)...
    inner = [v for n, v in out.items() if v.dtype.kind == "f" and n not in kitchen["names"] and n != "x"]
    assert inner and all(np.array_equal(v, v.astype(np.float16).astype(np.float32)) for v in inner)
    # ...fp16=True forces the same rounding on the fp32 program, fp16=False lifts it from the fp16 one.
    forced = MilProgram(kitchen["fp32"], fp16=True).run(kitchen["x"], keep_all=True)
    assert all(np.array_equal(v, v.astype(np.float16).astype(np.float32)) for v in forced.values() if v.dtype.kind == "f")
    exact = MilProgram(kitchen["fp32"]).run(kitchen["x"])
    assert any(not np.array_equal(forced[n], exact[n]) for n in kitchen["names"])
    lifted = MilProgram(kitchen["fp16"], fp16=False).run(kitchen["x"], keep_all=True)
    assert any(not np.array_equal(v, v.astype(np.float16).astype(np.float32)) for v in lifted.values() if v.dtype.kind == "f")


@pytest.mark.slow
def test_keep_all_exposes_every_op_output(kitchen):
    from converters.mil import MilProgram

    prog = MilProgram(kitchen["fp32"])
    values = prog.run(kitchen["x"], keep_all=True)
    produced = [o for info in prog.ops if not info.op_type.startswith("constexpr_") for o in info.outputs]
    assert set(produced) <= set(values) and "x" in values
    assert list(values)[1:] == produced  # program order after the input
    for name in kitchen["names"]:
        np.testing.assert_array_equal(values[name], prog.run(kitchen["x"])[name])


@pytest.mark.slow
def test_bad_inputs_are_data_errors(kitchen):
    from converters.mil import MilProgram

    prog = MilProgram(kitchen["fp32"])
    with pytest.raises(DataError, match="expected shape"):
        prog(np.zeros((1, 4, 8, 9), np.float32))
    with pytest.raises(DataError, match="expected dtype"):
        prog(np.zeros((1, 4, 8, 8), np.int32))
    with pytest.raises(DataError, match="missing input 'x'"):
        prog.run({"y": kitchen["x"]})


@pytest.mark.slow
def test_unimplemented_op_is_named(kitchen, tmp_path, monkeypatch):
    from converters.mil import MilProgram

    from converters.mil import InterpreterUnsupported

    class Upsample(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    path = _to_mlpackage(Upsample(), torch.randn(1, 4, 8, 8), tmp_path / "upsample.mlpackage")
    with pytest.raises(InterpreterUnsupported, match="does not implement op type.*upsample_bilinear") as e:
        MilProgram(path)
    assert e.value.feature == "op upsample_bilinear"
    monkeypatch.delitem(KERNELS, "softmax")  # a kernel the tower programs need, removed
    with pytest.raises(ConversionError, match=r"does not implement op type\(s\) softmax"):
        MilProgram(kitchen["fp32"])


@pytest.mark.slow
def test_missing_and_corrupt_packages(kitchen, tmp_path):
    import shutil

    from converters.mil import MilProgram

    with pytest.raises(ConversionError, match="not found"):
        MilProgram(tmp_path / "nope.mlpackage")
    bad = tmp_path / "bad.mlpackage"
    shutil.copytree(kitchen["fp32"], bad)
    (spec,) = bad.rglob("model.mlmodel")
    spec.write_bytes(spec.read_bytes()[:200])
    with pytest.raises(ConversionError, match="cannot load"):
        MilProgram(bad)


class Mixer(nn.Module):
    """x -> (x @ W1^T) @ W2 over tokens; `bug` plants a permuted weight or a wrong transpose."""

    def __init__(self, bug=None):
        super().__init__()
        torch.manual_seed(1)
        w1, self.w2 = torch.randn(16, 16), nn.Parameter(torch.randn(8, 8))
        if bug == "permuted":  # output rows of the weight shuffled
            w1 = w1[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
        self.w1, self.bug = nn.Parameter(w1), bug

    def forward(self, x):  # (1, 8, 16)
        y = x @ self.w1.T  # (1, 8, 16)
        if self.bug == "transpose":
            y = y.reshape(1, 16, 8).transpose(1, 2).reshape(1, 8, 16)  # a wrong head split
        return (y.transpose(1, 2) @ self.w2).transpose(1, 2)


@pytest.mark.slow
@pytest.mark.parametrize("bug", ["permuted", "transpose"])
def test_broken_programs_disagree_with_eager(tmp_path, bug):
    """A program carrying a planted bug must NOT match the correct eager module: the interpreter
    computes what the program says, it does not echo the reference."""
    from converters.mil import MilProgram

    x = torch.randn(1, 8, 16)
    with torch.no_grad():
        ref = Mixer()(x).numpy().ravel()
    good = MilProgram(_to_mlpackage(Mixer(), x, tmp_path / "good.mlpackage"))(x.numpy()).ravel()
    bad_module = Mixer(bug)
    with torch.no_grad():
        bad_eager = bad_module(x).numpy().ravel()
    bad = MilProgram(_to_mlpackage(bad_module, x, tmp_path / "bad.mlpackage"))(x.numpy()).ravel()
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(good, ref) > 0.99999
    assert cos(bad, bad_eager) > 0.99999  # the interpreter reproduces the buggy program exactly...
    assert cos(bad, ref) < 0.9  # ...so the bug shows against the reference


@pytest.mark.slow
def test_nan_constant_is_localized(tmp_path):
    """torch.full(-inf).triu(1) folds to NaN constants under torch.export: the interpreter
    names the first op whose output is not finite."""
    from converters.mil import MilProgram

    class Masked(nn.Module):
        def forward(self, x):  # (1, 6, 6) scores
            return (x + torch.full((6, 6), float("-inf")).triu(1)).softmax(-1)

    x = torch.randn(1, 6, 6)
    with torch.no_grad():
        assert torch.isfinite(Masked()(x)).all()
    prog = MilProgram(_to_mlpackage(Masked(), x, tmp_path / "nan.mlpackage"))
    assert not np.isfinite(prog(x.numpy())).all()
    bad = prog.first_nonfinite(x.numpy())
    assert bad is not None and bad.op_type in ("add", "softmax"), bad


# ---------------------------------------------------------------------------------------------
# Kernels fixed or added after coremltools' own op tests ran against the interpreter
# (tests/coreml_optests); each checked here against PyTorch / numpy as well
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, axes", [((3, 3), [0]), ((2, 5, 4, 3), [1]), ((2, 5, 4, 3), [1, 3]),
                                         ((4, 6), [-1])])
def test_layer_norm_gamma_beta_on_any_axes(shape, axes):
    """gamma / beta have the shape x.shape[axes]: on non-trailing axes they must not broadcast
    from the right (which crashed for some shapes and silently mis-scaled (3, 3) over axis 0)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    pos = sorted(a % len(shape) for a in axes)
    g = rng.standard_normal([shape[a] for a in pos]).astype(np.float32)
    b = rng.standard_normal([shape[a] for a in pos]).astype(np.float32)
    bshape = [shape[i] if i in pos else 1 for i in range(len(shape))]
    mean = x.mean(axis=tuple(pos), keepdims=True)
    ref = (x - mean) / np.sqrt(x.var(axis=tuple(pos), keepdims=True) + 1e-5) * g.reshape(bshape) + b.reshape(bshape)
    got = k("layer_norm", x=x, axes=np.array(axes), gamma=g, beta=b, epsilon=np.float32(1e-5))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    if pos == [1] and len(shape) == 4:  # a channel LayerNorm over NCHW: torch's over NHWC, permuted back
        ref_t = F.layer_norm(torch.from_numpy(x).permute(0, 2, 3, 1), (shape[1],), torch.from_numpy(g),
                             torch.from_numpy(b)).permute(0, 3, 1, 2).numpy()
        np.testing.assert_allclose(got, ref_t, rtol=1e-4, atol=1e-5)


def test_prelu_against_torch():
    torch.manual_seed(0)
    for shape in [(2, 3, 5), (1, 4, 3, 3)]:
        x, alpha = torch.randn(shape), torch.rand(shape[1])
        np.testing.assert_allclose(k("prelu", x=x.numpy(), alpha=alpha.numpy()), F.prelu(x, alpha).numpy(), rtol=1e-6)


@pytest.mark.parametrize("stride, pad, dil, groups, out_pad", [
    (1, 0, 1, 1, 0), (2, 1, 1, 1, 1), (2, 0, 2, 2, 0), (3, 2, 1, 4, 2), (2, 1, 1, 8, 0),
])
def test_conv_transpose_against_torch(stride, pad, dil, groups, out_pad):
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 8, 5, 6), torch.randn(8, 3, 3, 2), torch.randn(3 * groups)  # w: (C_in, C_out / groups, kh, kw)
    ref = F.conv_transpose2d(x, w, b, stride=stride, padding=pad, output_padding=out_pad, dilation=dil, groups=groups)
    got = k("conv_transpose", x=x.numpy(), weight=w.numpy(), bias=b.numpy(), pad_type="custom",
            pad=np.array([pad] * 4), strides=np.array([stride] * 2), dilations=np.array([dil] * 2),
            groups=np.int32(groups), output_shape=np.array(ref.shape) if out_pad else None)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-4, atol=1e-4)
    x1, w1 = torch.randn(1, 4, 7), torch.randn(4, 3, 3)
    got = k("conv_transpose", x=x1.numpy(), weight=w1.numpy(), pad_type="valid", strides=np.array([stride]),
            dilations=np.array([dil]), groups=np.int32(1), pad=None, output_shape=None, bias=None)
    np.testing.assert_allclose(got, F.conv_transpose1d(x1, w1, stride=stride, dilation=dil).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size, kernel, stride, pad", [(7, 3, 2, 0), (8, 3, 2, 1), (6, 2, 2, 0), (9, 3, 3, 1),
                                                       (5, 2, 3, 1)])
def test_pool_ceil_mode_against_torch(size, kernel, stride, pad):
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size + 1)
    a = dict(x=x.numpy(), kernel_sizes=np.array([kernel] * 2), strides=np.array([stride] * 2), pad_type="custom",
             pad=np.array([pad] * 4), ceil_mode=True)
    np.testing.assert_allclose(k("max_pool", **a), F.max_pool2d(x, kernel, stride, pad, ceil_mode=True).numpy())
    for exclude in (False, True):
        ref = F.avg_pool2d(x, kernel, stride, pad, ceil_mode=True, count_include_pad=not exclude).numpy()
        np.testing.assert_allclose(k("avg_pool", exclude_padding_from_average=exclude, **a), ref, rtol=1e-5, atol=1e-6)


def _mb_package(build, specs, path):
    import coremltools as ct
    from coremltools.converters.mil.mil import Builder as mb

    prog = mb.program(input_specs=specs, opset_version=ct.target.iOS18)(build)
    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
               compute_precision=ct.precision.FLOAT32).save(str(path))
    return path


@pytest.mark.slow
def test_int_outputs_keep_the_declared_dtype(tmp_path):
    """real_div of int32 inputs is declared int32 (Core ML truncates); the kernel computes in
    float, the stored value must be int32 like the program says."""
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    from converters.mil import MilProgram

    spec = [mb.TensorSpec(shape=(2, 3), dtype=types.int32), mb.TensorSpec(shape=(2, 3), dtype=types.int32)]
    path = _mb_package(lambda x, y: mb.real_div(x=x, y=y, name="out"), spec, tmp_path / "div.mlpackage")
    prog = MilProgram(path)
    x, y = np.array([[10, 20, 30], [7, -7, 60]], np.int32), np.array([[11, 12, 13], [2, 2, 16]], np.int32)
    out = prog.run({"x": x, "y": y})["out"]
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.trunc(x / y).astype(np.int32))


@pytest.mark.slow
def test_flexible_input_shapes_are_refused_by_name(tmp_path):
    import coremltools as ct
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil import get_new_symbol

    from converters.mil import InterpreterUnsupported, MilProgram

    path = _mb_package(lambda x: mb.relu(x=x), [mb.TensorSpec(shape=(get_new_symbol(), 3))], tmp_path / "flex.mlpackage")
    with pytest.raises(InterpreterUnsupported, match="flexible shape") as e:
        MilProgram(path)
    assert e.value.feature == "flexible input shapes" and isinstance(e.value, ConversionError)
    del ct
