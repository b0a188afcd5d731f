"""Budgets at the space level: parsing, membership, exact-uniform sampling inside a band (checked by
brute force on the enumerable spaces), pruning information for tree samplers, and speed."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from nasbench_lab import spaces
from nasbench_lab.spaces.budget import Budget, BudgetedSpace, BudgetError
from nasbench_lab.spaces.cost import cost_model


def test_parse_forms_and_errors():
    assert Budget.parse("flops:[0.99,1]*330M") == Budget.band("flops", 330e6)
    b = Budget.parse("flops:[270M, 280M]")
    assert (b.low, b.high) == (270e6, 280e6)
    assert Budget.parse("params<=5M") == Budget("params", 5e6, 0.0)
    assert Budget.parse({"metric": "flops", "target": 1e8, "band": [0.9, 1.0]}).low == pytest.approx(0.9e8)
    for bad in ("flops<5M", "cost<=5", "flops:[2,1]"):
        with pytest.raises(ValueError, match="budget"):
            Budget.parse(bad)
    with pytest.raises(ValueError, match="metric"):
        Budget("energy", 1.0)


def _all_costs(name: str, metric: str) -> tuple[list, np.ndarray]:
    # the cost model itself is checked against space.flops / params in test_benchmarks and test_mobilenet;
    # here it defines the band, and the brute force is over every architecture of the space
    sp = spaces.get(name)
    archs = sp.enumerate()
    model = cost_model(sp, metric)
    return archs, np.array([model(a.genes) for a in archs])


@pytest.mark.parametrize("name,spec", [("nbmacro", "params:[0.99,1]*2M"), ("nb201", "flops:[0.97,1]*120M"),
                                       ("pooling", "flops:[0,1]*30M")])
def test_sampling_is_uniform_over_exactly_the_in_band_architectures(name, spec):
    archs, costs = _all_costs(name, Budget.parse(spec).metric)
    bs = BudgetedSpace(name, spec)
    inside = {a for a, c in zip(archs, costs) if bs.budget.low <= c <= bs.budget.high}
    assert 0 < len(inside) < len(archs)
    assert all(bs.contains(a) == (a in inside) for a in archs[::7])
    draws = bs.sample_many(40 * len(inside), rng=1)
    assert set(draws) <= inside
    seen = Counter(draws)
    counts = np.array([seen[a] for a in inside])
    if len(inside) > 1:  # chi-square goodness of fit to the uniform distribution over the band
        assert stats.chisquare(counts).pvalue > 1e-3
    assert set(draws) == inside  # 40 draws per member: every one appears


def test_tree_view_never_prunes_a_feasible_subtree_and_prunes_the_empty_ones():
    sp = spaces.get("nbmacro")
    archs, costs = _all_costs("nbmacro", "params")
    bs = BudgetedSpace(sp, "params:[0.99,1]*2M")
    ok = {a.genes for a, c in zip(archs, costs) if bs.budget.low <= c <= bs.budget.high}
    pruned = 0
    for k in (1, 2, 3):
        for prefix in itertools.product(range(3), repeat=k):
            feasible = any(g[:k] == prefix for g in ok)
            if feasible:
                assert bs.can_reach(prefix)
            pruned += not bs.can_reach(prefix)
    assert pruned > 0  # the bounds do cut empty subtrees
    w = bs.option_weights(())
    assert set(w) == {0, 1, 2} and all(v >= sum(g[0] == o for g in ok) for o, v in w.items())


def test_mobilenet_thesis_budget_holds_its_band_and_stays_fast():
    sp = spaces.get("mobilenet")
    bs = Budget.band("flops", 280e6).bind(sp)  # Table 3.4's 280 MFLOPs: ~5e-5 of the space
    genes = bs.sample_genes(2000, rng=0)
    f = bs.cost.many(genes)
    assert f.min() >= 0.99 * 280e6 and f.max() <= 280e6
    # the closed form agrees with the space's own count on the drawn architectures
    assert all(bs.cost(g) == sp.flops(sp.arch(g)) for g in genes[:20])
    assert bs.accepted / bs.draws > 0.5
    # plain rejection from the whole space would accept almost nothing
    free = bs.cost.many(np.random.default_rng(0).integers(13, size=(20000, 21)))
    assert np.mean((free >= bs.budget.low) & (free <= bs.budget.high)) < 1e-3
    lo, hi = bs.cost.bounds((0,) * 21)
    assert lo == hi == sp.flops(sp.arch((0,) * 21))


def test_impossible_budgets_are_clear_errors():
    with pytest.raises(BudgetError, match="no architecture"):
        BudgetedSpace("nb201", "flops<=1k")
    with pytest.raises(ValueError, match="metric"):
        cost_model("nb201", "energy")
