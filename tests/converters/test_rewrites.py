"""Every export-time rewrite computes what the module it replaces computes."""

import pytest
import torch

from converters.rewrites import MatmulLayerNorm, for_xnnpack
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
            assert torch.allclose(new(x), tower(x), atol=1e-5)
            assert any(isinstance(m, torch.nn.LayerNorm) for m in tower.modules())  # original untouched
