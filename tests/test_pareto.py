"""Pareto tools against brute force, NSGA-II, and the multi-objective arena (NSGA-II beats random
search in hypervolume on NAS-Bench-201 over 10 seeds)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasbench_lab.search.multiobjective import ParetoArena
from nasbench_lab.search.pareto import Objectives, crowding_distance, hypervolume, nondominated, pareto_ranks


def _dominates(a, b):
    return np.all(a <= b) and np.any(a < b)


def _brute_nd(F):
    return np.array([not any(_dominates(G, f) for G in F) for f in F])


def _brute_ranks(F):
    ranks, left, r = np.full(len(F), -1), set(range(len(F))), 0
    while left:
        front = {i for i in left if not any(_dominates(F[j], F[i]) for j in left)}
        for i in front:
            ranks[i] = r
        left -= front
        r += 1
    return ranks


def _brute_hv(F, ref):
    """Count unit cells of the integer grid dominated by a point (exact for integer points)."""
    cells = itertools.product(*(range(int(r)) for r in ref))
    return sum(any(np.all(f <= np.array(c)) for f in F) for c in cells)


@pytest.mark.parametrize("m", [2, 3])
def test_nondominated_ranks_and_hypervolume_match_brute_force(m):
    rng = np.random.default_rng(m)
    for _ in range(20):
        F = rng.integers(0, 6, size=(int(rng.integers(1, 12)), m)).astype(float)
        assert np.array_equal(nondominated(F), _brute_nd(F))
        assert np.array_equal(pareto_ranks(F), _brute_ranks(F))
        ref = [7.0] * m
        assert hypervolume(F, ref) == pytest.approx(_brute_hv(F, ref))


def test_crowding_distance_by_hand():
    F = np.array([[0.0, 4.0], [1.0, 2.0], [2.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(F)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx((2 - 0) / 4 + (4 - 1) / 4) and d[2] == pytest.approx((4 - 1) / 4 + (2 - 0) / 4)


def test_objectives_parse_and_scale():
    assert Objectives.parse("acc, flops") == ("acc", "flops")
    for bad in ("acc", "acc,acc", "acc,energy"):
        with pytest.raises(ValueError, match="objectives"):
            Objectives.parse(bad)
    o = Objectives(("acc", "flops"), (10.0, 0.0), (90.0, 100.0))
    assert np.allclose(o.scale([[90.0, 0.0], [10.0, 100.0], [50.0, 25.0]]), [[0, 0], [1, 1], [0.5, 0.25]])


def test_nsga2_beats_random_in_hypervolume_on_nb201_over_ten_seeds():
    arena = ParetoArena("nb201", "cifar10", ["random", "nsga2"], seeds=10, budget=300, objectives="acc,flops")
    arena.run()
    t = arena.hv_table().set_index("strategy")
    assert t.loc["nsga2", "hv_mean"] > t.loc["random", "hv_mean"]
    assert t.loc["nsga2", "p_vs_random"] < 0.05
    # the true front is what the table says: no table architecture dominates one of its points
    front = arena.table_front[arena.table_front["on_front"]]
    assert 0 < arena.true_hv <= 1 and len(front) >= 5
    assert (t["gap_mean"] >= -1e-12).all()
    curves = arena.hv_curves()
    assert set(curves["strategy"]) == {"random", "nsga2"} and len(curves) == 600


def test_pareto_arena_resumes_and_rejects_spaces_without_a_table():
    a = ParetoArena("nbmacro", "cifar10", ["random", "nsga2"], seeds=2, budget=30, objectives="acc,params")
    for _ in range(30):
        a.step()
    b = ParetoArena(**a.config())
    b.load_state_dict(a.state_dict())
    while not a.done:
        a.step()
        b.step()
    assert a.hv_table().equals(b.hv_table())
    with pytest.raises(ValueError, match="complete table|no benchmark|unknown"):
        ParetoArena("mobilenet", "cifar10", ["random"], seeds=1, budget=2)
