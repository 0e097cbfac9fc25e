"""Every export-time rewrite computes what the module it replaces computes."""

import numpy as np
import pytest
import torch

from converters.rewrites import (BandedDepthwise, ExplicitAttention, FusedQKV, MatmulLayerNorm, NotRotatable, PatchLinear, for_xnnpack,
                                 rotate_residual, spreading_rotation, unrotate_stream)
from mobile_sdk.models import create_model, list_models


def test_matmul_layer_norm_matches_layer_norm():
    torch.manual_seed(0)
    ln = torch.nn.LayerNorm(48)
    ln.weight.data.normal_()
    ln.bias.data.normal_()
    x = torch.randn(3, 7, 48) * 5 + 2
    assert torch.allclose(MatmulLayerNorm(ln)(x), ln(x), atol=2e-5)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("batch", [1, 3])
def test_rewritten_towers_match(name, batch):
    torch.manual_seed(0)
    model = create_model(name)
    pixels = torch.rand(batch, 3, 64, 64) * 255
    ids = torch.randint(0, model.cfg.text.vocab_size, (batch, 20), dtype=torch.int32)
    with torch.no_grad():
        for tower, x in ((model.visual, pixels), (model.text, ids)):
            new = for_xnnpack(tower)
            assert not any(isinstance(m, torch.nn.LayerNorm) for m in new.modules())
            assert not any(PatchLinear.applies(m) for m in new.modules())
            assert sum(isinstance(m, FusedQKV) for m in new.modules()) == len(tower.blocks)
            assert torch.allclose(new(x), tower(x), atol=1e-5)
            assert any(isinstance(m, torch.nn.LayerNorm) for m in tower.modules())  # original untouched


@pytest.mark.parametrize("cin,k,size,bias", [(3, 4, 16, True), (64, 4, 16, False), (8, 3, 10, True), (3, 2, 7, True)])
def test_patch_linear_matches_the_patchify_conv(cin, k, size, bias):
    """Kernel == stride convs, including sizes that leave a remainder the conv drops (10 / 3, 7 / 2)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(cin, 24, k, stride=k, bias=bias)
    assert PatchLinear.applies(conv)
    x = torch.randn(2, cin, size, size + k)
    with torch.no_grad():
        assert torch.allclose(PatchLinear(conv)(x), conv(x), atol=1e-5)


@pytest.mark.parametrize("conv", [torch.nn.Conv2d(3, 8, 3, stride=1, padding=1), torch.nn.Conv2d(3, 8, 4, stride=2),
                                  torch.nn.Conv2d(4, 8, 2, stride=2, groups=2), torch.nn.Conv2d(3, 8, 2, stride=2, padding=1),
                                  torch.nn.Conv2d(3, 8, 2, stride=2, dilation=2)])
def test_patch_linear_leaves_other_convs_alone(conv):
    assert not PatchLinear.applies(conv)


def test_pointwise_convs_stay_convs_unless_asked():
    """`pointwise_linear=False`: 1x1 stride-1 convs stay Conv2d (XNNPACK runs them as GEMMs in its
    NHWC layout, without the two transposes a Linear needs); patchify convs still become
    PatchLinear; the function is unchanged either way."""
    torch.manual_seed(0)
    tower = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 4, stride=4), torch.nn.Conv2d(16, 32, 1), torch.nn.GELU(),
                                torch.nn.Conv2d(32, 16, 1)).eval()
    x = torch.randn(2, 3, 16, 16)
    for pointwise, linears, convs in ((True, 3, 0), (False, 1, 2)):
        new = for_xnnpack(tower, pointwise_linear=pointwise)
        assert sum(isinstance(m, PatchLinear) for m in new.modules()) == linears
        assert sum(type(m) is torch.nn.Conv2d for m in new.modules()) == convs
        with torch.no_grad():
            assert torch.allclose(new(x), tower(x), atol=1e-5)


@pytest.mark.parametrize("k,pad,size,bias", [((7, 7), (3, 3), (16, 12), True), ((9, 9), (4, 4), (9, 11), False),
                                              ((7, 5), (0, 2), (12, 8), True), ((7, 7), (1, 0), (10, 10), True)])
def test_banded_depthwise_matches_the_depthwise_conv(k, pad, size, bias):
    """Row bands of <= 25 taps (7x7: 3 + 3 + 1 rows; 9x9: 2 x 4 + 1; 7x5: 5 + 2), any padding."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 6, k, padding=pad, groups=6, bias=bias)
    assert BandedDepthwise.applies(conv)
    banded = BandedDepthwise(conv)
    assert all(b.kernel_size[0] * b.kernel_size[1] <= 25 for b in banded.bands)
    x = torch.randn(2, 6, *size)
    with torch.no_grad():
        assert torch.allclose(banded(x), conv(x), atol=1e-5)
    tower = for_xnnpack(torch.nn.Sequential(conv, torch.nn.Conv2d(6, 6, 7, padding=3, groups=6, stride=2)))
    assert [type(m).__name__ for m in tower] == ["BandedDepthwise", "Conv2d"]  # stride 2 stays a conv


@pytest.mark.parametrize("conv", [torch.nn.Conv2d(6, 6, 5, padding=2, groups=6), torch.nn.Conv2d(6, 6, 7, padding=3),
                                  torch.nn.Conv2d(6, 12, 7, padding=3, groups=6), torch.nn.Conv2d(6, 6, 7, groups=6, dilation=2),
                                  torch.nn.Conv2d(6, 6, (1, 31), groups=6), torch.nn.Conv2d(6, 6, 7, padding="same", groups=6)])
def test_banded_depthwise_leaves_other_convs_alone(conv):
    assert not BandedDepthwise.applies(conv)


def test_fused_qkv_attention_matches_multihead_attention():
    """for_xnnpack's one q / k / v projection, with and without a causal mask, self and cross attention."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    mask = torch.full((6, 6), float("-inf")).triu(1)
    x, y = torch.randn(2, 6, 32), torch.randn(2, 6, 32)
    for m in (None, mask):
        fused = for_xnnpack(torch.nn.Sequential(ExplicitAttention.from_mha(mha, m)))[0]
        assert isinstance(fused.proj_in, FusedQKV)
        with torch.no_grad():
            torch.testing.assert_close(fused(x, attn_mask=m)[0], mha(x, x, x, attn_mask=m, need_weights=False)[0],
                                       atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(fused(x, y, y)[0], mha(x, y, y, need_weights=False)[0], atol=1e-5, rtol=1e-5)


class _Portable(torch.nn.Module):
    """The ops XNNPACK leaves on portable kernels, as CLIP towers write them."""

    def __init__(self):
        super().__init__()
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 8))
        self.keep = torch.nn.Parameter(torch.ones(5, 5).tril(), requires_grad=False)

    def forward(self, x):  # (1, 4, 8)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (1, 5, 8)
        s = (x @ x.transpose(1, 2)) * self.keep
        s = s - s.amin(dim=-1, keepdim=True)
        y = (s @ x).unsqueeze(0).squeeze(0)
        return y[:, 0] + y[:, -1] + s.amin(-1).sum(-1, keepdim=True)


def test_xnnpack_pass_rewrites_portable_ops_to_the_same_values():
    """The edge pass ExecuTorch lowering runs: every op of _Portable that XNNPACK would leave out
    becomes ops it takes, and the program computes the same values."""
    from executorch.exir import to_edge

    from converters.executorch import xnnpack_pass

    torch.manual_seed(0)
    x = torch.randn(1, 4, 8)
    m = _Portable().eval()
    edge = to_edge(torch.export.export(m, (x,)))

    def ops(e):
        return [str(n.target) for n in e.exported_program().graph_module.graph.nodes if n.op == "call_function"]

    left_out = ("expand_copy", "select_copy", "amin", "squeeze_copy", "unsqueeze_copy")
    assert {o for o in left_out if any(f"aten.{o}." in t for t in ops(edge))} == set(left_out)
    after = edge.transform([xnnpack_pass()])
    assert not [t for t in ops(after) if any(f"aten.{o}." in t for o in left_out)]
    for x in (x, torch.randn(1, 4, 8) * 10):
        torch.testing.assert_close(after.exported_program().module()(x), m(x))


# --- residual rotation (TFLite text towers) ----------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 32, 96, 128, 192])
def test_spreading_rotation_is_orthogonal_keeps_ones_and_spreads(n):
    q = spreading_rotation(n)
    assert torch.allclose(q @ q.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(q @ torch.ones(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64), atol=1e-12)
    if n >= 32:  # every channel is spread over the whole width (an identity would have entries 1)
        assert q.abs().max() * n ** 0.5 < 4.0


def _random_affine(tower):
    torch.manual_seed(1)
    for m in tower.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return tower


@pytest.mark.parametrize("name", list_models())
def test_rotated_text_towers_match(name):
    model = create_model(name)
    tower = _random_affine(model.text)  # random LayerNorm affines, so that the folding is exercised
    ids = torch.randint(0, model.cfg.text.vocab_size, (4, model.cfg.text.context_length), dtype=torch.int32)
    with torch.no_grad():
        new = rotate_residual(tower)
        assert torch.allclose(new(ids), tower(ids), atol=1e-5)
    assert all(not m.elementwise_affine for m in new.modules() if isinstance(m, torch.nn.LayerNorm))
    assert tower.ln_final.elementwise_affine  # original untouched
    with pytest.raises(NotRotatable, match="text towers"):
        rotate_residual(model.visual)


def _peak_to_rms(x) -> float:
    """What one int8 scale per tensor has to cover, in units of the tensor's RMS."""
    return float(np.abs(x).max() / np.sqrt(np.mean(np.square(x))))


def test_rotation_spreads_the_shipped_text_towers_outlier_channels():
    """On the shipped student's captions: the rotated stream is the centred stream in another basis
    (unrotate_stream gives it back), and its peak per tensor, relative to its RMS, is far lower."""
    from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
    from mobile_sdk.data.calibration import load_calibration
    from mobile_sdk.parity.localize import reference_intermediates
    from mobile_sdk.tokenizer import Tokenizer

    model, _ = load_checkpoint(default_checkpoint())
    ids = torch.from_numpy(Tokenizer.from_file()(load_calibration("calibration_data", limit=64).captions))
    before = reference_intermediates(model.text, ids)
    after = reference_intermediates(rotate_residual(model.text), ids)
    width = model.cfg.text.width
    for i in range(len(model.text.blocks)):
        x, r = before[f"blocks.{i}"].astype(np.float64), after[f"blocks.{i}"]
        centred = x - x.mean(-1, keepdims=True)
        np.testing.assert_allclose(unrotate_stream(r, width), centred, atol=1e-4)
        assert _peak_to_rms(r) < 0.6 * _peak_to_rms(centred), (i, _peak_to_rms(r), _peak_to_rms(centred))
