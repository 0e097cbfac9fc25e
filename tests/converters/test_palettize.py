"""Calibrated mixed-bit palettization (converters/palettize.py): each piece against the simpler
method it replaces, on data where the difference is known to exist."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from converters import palettize as P
from mobile_sdk.errors import ConversionError, DataError


def _correlated(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) * torch.logspace(0, -2, d, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix.T


def test_kmeans_palette_is_small_sorted_and_fp16_exact():
    v = np.random.default_rng(0).standard_normal(5000) * 0.02
    for nbits in (3, 4, 6):
        pal = P.kmeans_palette(v, nbits)
        assert len(pal) <= 2 ** nbits and np.all(np.diff(pal) > 0)
        assert np.array_equal(pal, pal.astype(np.float16).astype(np.float64))
    err = {b: np.mean((v - P._nearest(torch.from_numpy(v), torch.from_numpy(P.kmeans_palette(v, b))).numpy()) ** 2)
           for b in (3, 4, 6)}
    assert err[3] > err[4] > err[6] > 0


def test_gptq_rounding_keeps_the_layer_output_closer_than_nearest_rounding():
    """Same palette, same weights: rounding with error feedback through H = E[x x^T] leaves a
    smaller output error on held-out inputs of the same distribution than nearest rounding."""
    torch.manual_seed(0)
    w = torch.randn(32, 64, dtype=torch.float64) * 0.05
    x_fit, x_test = _correlated(4000, 64, 1), _correlated(2000, 64, 1)
    h = x_fit.T @ x_fit / len(x_fit)
    pal = P.kmeans_palette(w.numpy(), 3)
    near = P._nearest(w, torch.from_numpy(pal))
    gptq = P.gptq_round(w, h, pal)
    assert set(np.unique(gptq.numpy())) <= set(pal)
    err = lambda q: float(((x_test @ (w - q).T) ** 2).mean())  # noqa: E731
    assert err(gptq) < 0.7 * err(near), (err(gptq), err(near))


def test_allocation_spends_bits_where_the_error_falls_most_and_stays_in_budget():
    sizes = {"sensitive": 1000, "tolerant": 1000, "big": 8000}
    errors = {"sensitive": {3: 1e-2, 4: 3e-3, 6: 2e-4, 8: 1e-5},
              "tolerant": {3: 1e-5, 4: 5e-6, 6: 1e-6, 8: 1e-7},
              "big": {3: 1e-3, 4: 2e-4, 6: 2e-5, 8: 1e-6}}
    bits = P.allocate(sizes, errors, 3.5)
    assert bits["sensitive"] == 8 and bits["tolerant"] == 3
    assert sum(sizes[k] * b for k, b in bits.items()) <= 3.5 * sum(sizes.values())
    assert P.allocate(sizes, errors, 3.0) == {k: 3 for k in sizes}
    assert P.allocate(sizes, errors, 8.0) == {k: 8 for k in sizes}


class _Tower(nn.Module):
    """A conv stem feeding Linears: the stem is the sensitive part, as on the shipped student."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(8, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 6 * 6, 64)
        self.out = nn.Linear(64, 64)

    def forward(self, x):
        return self.out(torch.relu(self.fc(torch.relu(self.stem(x)).flatten(1))))


def test_palettize_mixed_rounds_every_weight_within_its_bits_and_the_mean():
    tower = _Tower()
    x = torch.randn(96, 8, 6, 6)
    with torch.no_grad():
        ref = tower(x)
    plan = P.palettize_mixed(tower, list(x.split(1)), mean_bits=4.0)
    weights = P.palettizable(tower)
    assert set(plan["nbits"]) == set(weights) == {"stem.weight", "fc.weight", "out.weight"}
    for name, p in weights.items():
        assert len(torch.unique(p.data)) <= 2 ** plan["nbits"][name], name
        assert torch.equal(p.data, p.data.half().float()), name  # fp16-exact: Core ML stores them as they are
    assert plan["mean_bits"] <= 4.0 and plan["nbits"]["stem.weight"] > 3  # 2304 weights that matter most per bit
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(tower(x), ref).mean().item()
    assert cos > 0.995
    assert all(plan["sensitivity"][n]["3"] > plan["sensitivity"][n]["8"] for n in weights)


def test_palettize_mixed_refuses_what_it_cannot_do():
    with pytest.raises(DataError, match="at least 8"):
        P.palettize_mixed(_Tower(), [torch.randn(1, 8, 6, 6)] * 4)
    with pytest.raises(ConversionError, match="mean_bits"):
        P.palettize_mixed(_Tower(), [torch.randn(1, 8, 6, 6)] * 8, mean_bits=2.0)
    with pytest.raises(ConversionError, match="no weight"):
        P.palettize_mixed(nn.Linear(4, 4), [torch.randn(1, 4)] * 8)


class _Table(nn.Module):
    """A tower that is one big token table read row by row (a wide vocabulary on a narrow tower)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.tok = nn.Embedding(1024, 8)
        self.fc = nn.Linear(8, 256)

    def forward(self, ids):
        return self.fc(self.tok(ids)).flatten(1)


def test_palettize_mixed_warns_when_the_plan_drifts_and_names_the_weight(caplog):
    """At a mean of 3 bits the table (80% of the weights) stays at 3 bits and the rounded tower
    drifts: the plan reports the measured cosine and a warning names the table and the mean that
    lifts it; at 6 bits neither."""
    ids = [torch.randint(0, 1024, (1, 4), generator=torch.Generator().manual_seed(i)) for i in range(64)]
    with caplog.at_level("WARNING", logger=P.log.name):
        low = P.palettize_mixed(_Table(), ids, mean_bits=3.0)
    assert low["nbits"]["tok.weight"] == 3 and low["cosine_mean"] < P.WARN_COSINE
    (msg,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "tok.weight" in msg and "would give it 4" in msg
    need = float(msg.split("a mean of ")[1].split()[0])
    caplog.clear()
    with caplog.at_level("WARNING", logger=P.log.name):
        ok = P.palettize_mixed(_Table(), ids, mean_bits=6.0)
    assert ok["nbits"]["tok.weight"] >= 4 and ok["cosine_mean"] > P.WARN_COSINE
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert 3 < need <= 6.0
