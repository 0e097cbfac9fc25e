import dataclasses

import pytest
import torch

from mobile_sdk.errors import ConfigError
from mobile_sdk.models import CLIPConfig, count_parameters, create_model, list_models, model_config
from mobile_sdk.models.clip import TextConfig, VisionConfig


def test_registry():
    assert {"teacher", "student", "tiny"} <= set(list_models())
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create_model("nope")
    assert 4e6 <= count_parameters(create_model("teacher")) <= 8e6
    assert 1e6 <= count_parameters(create_model("student")) <= 2e6


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes_and_unit_norm(name):
    m = create_model(name)
    cfg = m.cfg
    px = torch.rand(3, 3, cfg.vision.image_size, cfg.vision.image_size) * 255
    ids = torch.randint(0, cfg.text.vocab_size, (3, cfg.text.context_length), dtype=torch.int32)
    img, txt, scale = m(px, ids)
    assert img.shape == txt.shape == (3, cfg.embed_dim)
    assert torch.allclose(img.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(txt.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert 0 < float(scale.detach()) <= 100


@pytest.mark.parametrize("name", list_models())
def test_export_friendly(name):
    """torch.export works with int32 ids, and the graphs have no -inf, argmax, gather or ReduceL2."""
    m = create_model(name)
    s = m.cfg.vision.image_size
    ep_img = torch.export.export(m.visual, (torch.rand(1, 3, s, s) * 255,))
    ep_txt = torch.export.export(m.text, (torch.zeros(1, m.cfg.text.context_length, dtype=torch.int32),))
    for ep in (ep_img, ep_txt):
        targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
        assert not any(("argmax" in t) or ("gather" in t) or ("linalg_vector_norm" in t) or ("full" in t)
                       for t in targets), targets
        for const in list(ep.state_dict.values()) + list(ep.constants.values()):
            if isinstance(const, torch.Tensor) and const.is_floating_point():
                assert torch.isfinite(const).all()


def test_normalization_is_inside_the_graph():
    m = create_model("tiny")
    s = m.cfg.vision.image_size
    px = torch.rand(2, 3, s, s) * 255
    # Same pixels, different dtype route: the model must not expect pre-normalized input.
    assert not torch.allclose(m.visual(px), m.visual(px / 255.0))


def test_text_is_padding_aware_but_deterministic(tokenizer):
    m = create_model("tiny")
    ids = torch.from_numpy(tokenizer(["a red circle", "a red circle", "a blue square"]))
    out = m.text(ids)
    assert torch.allclose(out[0], out[1]) and not torch.allclose(out[0], out[2])


def test_per_layer_config_builds_a_smaller_model():
    base = model_config("student")
    pruned = dataclasses.replace(base, vision=dataclasses.replace(base.vision, heads=(4, 2, 1),
                                                                  mlp_dim=(512, 256, 64)))
    assert count_parameters(create_model(pruned)) < count_parameters(create_model(base))
    assert CLIPConfig.from_dict(pruned.to_dict()) == pruned
    with pytest.raises(ValueError, match="heads"):
        dataclasses.replace(base.vision, heads=(1, 2))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        VisionConfig(width=8, depth=1, heads=1, head_dim=8, mlp_dim=8, image_size=30, patch_size=8)
    with pytest.raises(ValueError, match="unknown CLIPConfig fields"):
        CLIPConfig.from_dict({**base.to_dict(), "extra": 1})


def test_vision_readout_and_stem_options():
    with pytest.raises(ValueError, match="pool must be one of"):
        VisionConfig(width=8, depth=1, heads=1, head_dim=8, mlp_dim=8, pool="mean")
    with pytest.raises(ValueError, match="one stride"):
        VisionConfig(width=8, depth=1, heads=1, head_dim=8, mlp_dim=8, stem=(4, 8), stem_strides=(1,))
    with pytest.raises(ValueError, match="total stride"):
        VisionConfig(width=8, depth=1, heads=1, head_dim=8, mlp_dim=8, stem=(4, 8, 8, 8), patch_size=4)
    cfg = VisionConfig(width=8, depth=1, heads=1, head_dim=8, mlp_dim=8, stem=(4, 8), stem_strides=(1, 2),
                       patch_size=16, pool="tokens")
    assert cfg.stem_reduction == 2 and cfg.tokens == 16
    m = create_model(CLIPConfig(vision=cfg, text=TextConfig(width=8, depth=1, heads=1, head_dim=8, mlp_dim=8),
                                embed_dim=8))
    assert not hasattr(m.visual, "cls") and m.visual.pos.shape == (1, 16, 8)
    assert m.visual.proj.in_features == 16 * 8  # every token feeds the projection
    assert m.visual.stem[0].stride == (1, 1) and m.visual.patch.kernel_size == (8, 8)


def test_ln_pre_eps_keeps_flat_tokens_small():
    """`ln_pre_eps` reaches the LayerNorm before the blocks; a config without it (checkpoints from
    before the field) means the usual 1e-5; with eps 1 a near-constant token is not scaled up to unit
    variance (what a full-integer int8 graph cannot represent), an object-like token still is."""
    base = model_config("tiny")
    assert base.vision.ln_pre_eps == 1e-5
    old = base.to_dict()
    del old["vision"]["ln_pre_eps"]
    assert CLIPConfig.from_dict(old) == base
    assert model_config("teacher").vision.ln_pre_eps == model_config("student").vision.ln_pre_eps == 1.0
    m = create_model(dataclasses.replace(base, vision=dataclasses.replace(base.vision, ln_pre_eps=1.0)))
    ln = m.visual.ln_pre
    assert ln.eps == 1.0 and create_model(base).visual.ln_pre.eps == 1e-5
    torch.manual_seed(0)
    flat, obj = 0.1 * torch.randn(1, 1, ln.normalized_shape[0]), 10.0 * torch.randn(1, 1, ln.normalized_shape[0])
    with torch.no_grad():
        ln.weight.fill_(1.0), ln.bias.zero_()
        assert ln(flat).std() < 0.15 and ln(obj).std() > 0.9
        assert torch.nn.functional.layer_norm(flat, ln.normalized_shape, eps=1e-5).std() > 0.9


def test_text_token_readout():
    with pytest.raises(ValueError, match="text pool must be one of"):
        TextConfig(width=8, depth=1, heads=1, head_dim=8, mlp_dim=8, pool="cls")
    m = create_model("teacher")
    assert m.cfg.text.pool == "tokens"
    assert m.text.proj.in_features == m.cfg.text.width * m.cfg.text.context_length
