"""Zero-cost proxies on real models: finite scores, exact baselines, NASWOT by hand, correlations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy import stats

from nasbench_lab import benchmarks, proxies, spaces
from nasbench_lab.proxies import measures
from nasbench_lab.search.evaluators import ProxyEvaluator

POOL = spaces.get("pooling")
NB201 = spaces.get("nb201")



@pytest.fixture(scope="module")
def batch():
    # small images keep real models cheap on a busy CPU; every space here pools at most to 4x4
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 16, 16, generator=g)
    y = torch.tensor([0, 3, 5, 7, 8, 9])  # 10 classes inferred
    return x, y


def test_names_and_errors(batch):
    assert proxies.names() == ["grad_norm", "snip", "grasp", "fisher", "synflow", "jacov", "naswot", "params", "flops"]
    with pytest.raises(ValueError, match="valid names: grad_norm"):
        proxies.score("zen", POOL, "[4,3,3]", batch)
    with pytest.raises(ValueError, match="needs a batch"):
        proxies.score("snip", POOL, "[4,3,3]")
    with pytest.raises(ValueError, match="images"):
        proxies.score("snip", POOL, "[4,3,3]", (batch[0][0], batch[1]))


@pytest.mark.parametrize("space", ["pooling", "nb201"])
def test_params_and_flops_proxies_equal_the_space(space, batch):
    sp = spaces.get(space)
    for arch in (sp.default(), sp.sample(3)):
        assert proxies.score("params", sp, arch, batch) == sp.params(arch, 10)
        assert proxies.score("flops", sp, arch) == sp.flops(arch, 10)
        model = sp.model(arch, num_classes=10)
        assert proxies.score("params", sp, arch, batch) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("space,archs", [
    ("pooling", ["[4,3,3]", "[1,1,8]"]),
    ("nb201", ["|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
               "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"]),
])
def test_every_proxy_is_finite_and_reproducible_on_real_models(space, archs, batch):
    sp = spaces.get(space)
    state = torch.get_rng_state()
    values = {}
    for arch in archs:
        for name in proxies.names():
            v = proxies.score(name, sp, arch, batch)
            assert math.isfinite(v), (space, arch, name, v)
            values[(arch, name)] = v
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
    a = archs[0]
    assert proxies.score("snip", sp, a, batch) == values[(a, "snip")]  # same seed, same model, same score
    assert proxies.score("snip", sp, a, batch, seed=1) != values[(a, "snip")]
    for name in ("grad_norm", "snip", "fisher", "synflow", "params", "flops"):
        assert values[(a, name)] > 0, name
    if space == "nb201":
        # the second cell is a skip straight to the output, every conv gone: fewer parameters,
        # fewer paths, and synflow collapses by orders of magnitude
        assert values[(archs[1], "params")] < values[(a, "params")]
        assert values[(archs[1], "synflow")] < values[(a, "synflow")] / 100


def test_naswot_on_hand_made_relu_codes():
    codes = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    # K = N_A - Hamming: d12 = 2, d13 = 3, d23 = 3
    k = np.array([[4, 2, 1], [2, 4, 1], [1, 1, 4]], float)
    assert np.array_equal(measures.naswot_kernel(codes), k)
    assert measures.naswot_from_codes(codes) == pytest.approx(math.log(44.0))  # det K = 44
    # two layers add their kernels
    two = [torch.tensor(codes[:, :2]), torch.tensor(codes[:, 2:])]
    assert measures.naswot_from_codes(two) == pytest.approx(math.log(44.0))
    # identical codes for two images: singular kernel -> the finite floor, below any real score
    assert measures.naswot_from_codes(np.array([[1, 0], [1, 0], [0, 1]])) == measures.NASWOT_FLOOR < 0


def test_relu_codes_from_a_tiny_network():
    lin = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    net = nn.Sequential(lin, nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [-1.0, 2.0], [-1.0, -1.0]])
    (c,) = measures.relu_codes(net, x)
    assert c.tolist() == [[True, False, False], [False, True, True], [False, False, False]]
    # codes 100, 011, 000: Hamming 3, 1, 2 -> K = [[3,0,2],[0,3,1],[2,1,3]], det = 3*8 + 2*(0-6) = 12
    assert measures.naswot(net, (x, torch.zeros(3, dtype=torch.long))) == pytest.approx(math.log(12.0))


def test_jacov_of_known_jacobians():
    jac = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0], [2.0, 3.0, 1.0]])
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    assert measures.jacov_from_jacobians(jac) == pytest.approx(-np.sum(np.log(np.clip(v, 0, None) + 1e-5)
                                                                      + 1 / (np.clip(v, 0, None) + 1e-5)))
    flat = measures.jacov_from_jacobians(np.zeros((3, 3)))  # output ignores the input: worst score
    assert math.isfinite(flat) and flat < measures.jacov_from_jacobians(jac)


def test_correlation_is_consistent_with_scipy(batch):
    bm = benchmarks.get("pooling", "cifar10")
    res = proxies.correlation("flops", POOL, bm, archs=POOL.enumerate(), batch=batch)
    flops = [POOL.flops(a, 10) for a in POOL.enumerate()]
    truth = [bm.query(a) for a in POOL.enumerate()]
    assert res["n"] == 36
    assert res["spearman"] == pytest.approx(stats.spearmanr(flops, truth).statistic)
    assert res["kendall"] == pytest.approx(stats.kendalltau(flops, truth).statistic)
    assert res["spearman"] > 0.3  # fewer downsamplings early = more compute = better, on this table
    some = proxies.correlation("naswot", POOL, bm, archs=5, batch=batch, seed=1)
    assert some["n"] == 5 and -1 <= some["kendall"] <= 1
    df = proxies.frame(["flops", "naswot"], POOL, bm, archs=6, batch=batch)
    assert list(df.columns) == ["arch", "truth", "flops", "naswot"] and len(df) == 6
    assert np.allclose(df["truth"], [bm.query(a) for a in df["arch"]])
    assert df.attrs["correlation"]["flops"]["spearman"] == pytest.approx(
        stats.spearmanr(df["flops"], df["truth"]).statistic)


def test_proxy_evaluator_scores_and_caches(batch):
    ev = ProxyEvaluator(POOL, "naswot", data=None, batch_size=8)
    r1 = ev.evaluate("[4,3,3]")
    r2 = ev.evaluate("[4,3,3]")
    assert r1 == r2 and math.isfinite(r1.acc) and r1.cost_s >= 0
    assert ev.truth(POOL.parse("[4,3,3]")) != ev.truth(POOL.parse("[4,3,3]"))  # no benchmark: NaN
    with pytest.raises(ValueError, match="valid: grad_norm"):
        ProxyEvaluator(POOL, "zen")
