"""Black-box strategies: validity, the defining rules of each method, and exact resumption."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hst
from scipy import stats

from nasbench_lab import benchmarks, spaces
from nasbench_lab.search import strategies
from nasbench_lab.search.arena import expected_best_of_n
from nasbench_lab.search.evaluators import EvalResult, Evaluator

POOL = spaces.get("pooling")
NB201 = spaces.get("nb201")
#: a fixed additive "accuracy" on NB-201: per edge, a score per op (conv3x3 best), plus an
#: interaction so the landscape is not trivially separable
_W = np.array([[0, 2, 5, 8, 3]] * 6, dtype=float) * np.linspace(1.0, 0.5, 6)[:, None]


def toy_acc(arch) -> float:
    g = arch.genes
    return 50.0 + float(sum(_W[i, x] for i, x in enumerate(g))) + (3.0 if g[0] == g[5] else 0.0)


class ToyEvaluator(Evaluator):
    """Additive toy accuracy on NB-201 (cheap, deterministic); fidelity adds a bias that shrinks."""

    name = "toy"

    def __init__(self, fidelities=None):
        self.space = NB201
        self.fidelities = fidelities

    def _evaluate(self, arch, fidelity):
        acc = toy_acc(arch)
        if fidelity is not None and fidelity != self.fidelities[-1]:
            acc -= 10.0 * (1 - fidelity / self.fidelities[-1]) * (1 + (arch.genes[1] % 2))
        return EvalResult(acc, 1.0 if fidelity is None else float(fidelity), fidelity)


def _pool_acc():
    bm = benchmarks.get("pooling", "cifar10")
    return {a: bm.query(a) for a in POOL.enumerate()}


def _opts(name):
    return {"fidelities": [1, 3, 9]} if name == "hyperband" else {}


# ----------------------------------------------------------------------------- validity
@settings(max_examples=4, deadline=None)
@given(seed=hst.integers(0, 2**31 - 1))
def test_every_strategy_asks_only_architectures_of_the_space(seed):
    pool_acc = _pool_acc()
    fast = {"bo": {"n_init": 4, "refit_every": 4, "epochs": 20, "n_random": 20},
            "boltzmann": {"n_init": 3}}
    for name in strategies.names():
        for space, budget in ((POOL, 25), (NB201, 12)):
            s = strategies.get(name, space, seed=seed, **{**_opts(name), **fast.get(name, {})})
            for _ in range(budget):
                arch = s.ask()
                assert arch.space == space.name
                assert space.parse(str(arch)) == arch  # valid genes, canonical string round-trips
                acc = pool_acc[arch] if space is POOL else toy_acc(arch)
                s.tell(arch, EvalResult(acc, 1.0, s.fidelity))
            assert s.n_told == budget and s.best_acc == max(s.seen.values())


def test_registry_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid names: random, rea, ls"):
        strategies.get("annealing", "pooling")
    with pytest.raises(ValueError, match="population_size, sample_size"):
        strategies.get("rea", "pooling", populaton_size=10)
    with pytest.raises(ValueError, match="needs an evaluator with fidelities"):
        strategies.get("hyperband", "pooling")
    with pytest.raises(ValueError, match="sample_size"):
        strategies.get("rea", "pooling", population_size=5, sample_size=6)


# ----------------------------------------------------------------------------- random search
def test_expected_best_of_n_matches_brute_force():
    vals = np.array([3.0, 1.0, 2.0, 2.0])
    for n in (1, 2, 3):
        grid = np.array(np.meshgrid(*[vals] * n)).reshape(n, -1)
        assert expected_best_of_n(vals, n) == pytest.approx(grid.max(axis=0).mean(), abs=1e-12)
    assert expected_best_of_n([1, 2, 3], 2) == pytest.approx(22 / 9)
    assert np.allclose(expected_best_of_n(vals, np.array([1, 2])), [2.0, expected_best_of_n(vals, 2)])


def test_random_search_mean_best_of_n_matches_the_exact_expectation():
    acc = _pool_acc()
    n, seeds = 4, 1500
    best = np.empty(seeds)
    for seed in range(seeds):
        s = strategies.get("random", POOL, seed=seed)
        for _ in range(n):
            a = s.ask()
            s.tell(a, acc[a])
        best[seed] = s.best_acc
    exact = expected_best_of_n(list(acc.values()), n)
    se = best.std(ddof=1) / math.sqrt(seeds)
    assert abs(best.mean() - exact) < 3 * se, (best.mean(), exact, se)
    assert exact < max(acc.values())


# ----------------------------------------------------------------------------- regularized evolution
def test_rea_removes_the_oldest_not_the_worst():
    s = strategies.get("rea", POOL, seed=0, population_size=4, sample_size=2)
    archs = POOL.enumerate()
    # the oldest member is the best one; the worst is the second oldest
    for a, acc in zip(archs[:4], (99.0, 10.0, 50.0, 60.0)):
        assert s.ask() in archs
        s.tell(a, acc)
    assert [m[1] for m in s.population] == [99.0, 10.0, 50.0, 60.0]
    child = s.ask()  # after the population is full: a mutation of a tournament winner
    assert any(child in POOL.neighbours(m[0]) for m in s.population)
    s.tell(archs[4], 20.0)
    assert [m[1] for m in s.population] == [10.0, 50.0, 60.0, 20.0]  # 99 (oldest) gone, 10 (worst) kept
    assert [m[2] for m in s.population] == [1, 2, 3, 4]
    s.tell(archs[5], 5.0)
    assert [m[1] for m in s.population] == [50.0, 60.0, 20.0, 5.0]


def test_rea_child_is_a_neighbour_of_a_tournament_winner():
    s = strategies.get("rea", NB201, seed=3, population_size=10, sample_size=10)
    for _ in range(10):
        a = s.ask()
        s.tell(a, toy_acc(a))
    best = max(s.population, key=lambda m: m[1])[0]  # tournament over everyone: the best wins
    for _ in range(5):
        assert NB201.distance(s.ask(), best) == 1


# ----------------------------------------------------------------------------- local search
@pytest.mark.parametrize("variant", ["first", "best"])
def test_local_search_stops_only_at_local_optima_and_never_requeries(variant):
    acc = _pool_acc()
    s = strategies.get("ls", POOL, seed=1, variant=variant)
    asked = []
    for _ in range(30):
        a = s.ask()
        asked.append(a)
        s.tell(a, acc[a])
    assert len(set(asked)) == len(asked)  # a deterministic table is never asked twice
    assert s.optima, "30 queries on 36 architectures reach at least one local optimum"
    for arch, value in s.optima:
        assert all(acc[nb] <= value for nb in POOL.neighbours(arch))


# ----------------------------------------------------------------------------- REINFORCE
def test_reinforce_probabilities_move_toward_a_rewarded_choice():
    s = strategies.get("reinforce", NB201, seed=0)
    p0 = s.probabilities()[0][3]
    for _ in range(150):
        a = s.ask()
        s.tell(a, 90.0 if a.genes[0] == 3 else 40.0)  # only edge 1 = conv3x3 is rewarded
    p = s.probabilities()
    assert p0 == pytest.approx(0.2)
    assert p[0][3] > 0.8
    # the unrewarded edges stay near uniform (no signal there)
    assert max(abs(v - 0.2) for level in p[1:] for v in level) < 0.35
    snap = s.snapshot()
    assert len(snap["history"]) == len(snap["history_steps"]) and snap["history"][0][0][3] == pytest.approx(0.2)


def test_reinforce_respects_constrained_levels():
    s = strategies.get("reinforce", POOL, seed=0)
    for _ in range(40):
        a = s.ask()
        # per-layer decisions with exactly two poolings: always a valid layout
        assert sum(a.genes) == POOL.num_poolings and sum(POOL.layout(a)) == POOL.depth
        s.tell(a, 90.0 if a.genes[0] == 1 else 80.0)  # rewarded: pool right after the stem
    assert s.probabilities()[0][1] > s.probabilities()[0][0]


# ----------------------------------------------------------------------------- BO
def test_bo_predictor_ranks_held_out_architectures_and_beats_random():
    ev = ToyEvaluator()
    rng = np.random.default_rng(123)
    held = list({NB201.sample(rng) for _ in range(150)})
    bo_best, rs_best, rhos = [], [], []
    for seed in range(3):
        bo = strategies.get("bo", NB201, seed=seed, n_init=10, refit_every=5, epochs=150)
        rs = strategies.get("random", NB201, seed=seed)
        for _ in range(30):
            for s in (bo, rs):
                a = s.ask()
                s.tell(a, ev.evaluate(a))
        mean, std = bo.predict(held)
        rhos.append(stats.spearmanr(mean, [toy_acc(a) for a in held]).statistic)
        assert (std >= 0).all() and std.mean() > 0
        bo_best.append(bo.best_acc)
        rs_best.append(rs.best_acc)
    assert min(rhos) > 0.5, rhos
    assert np.mean(bo_best) > np.mean(rs_best), (bo_best, rs_best)
    snap = bo.snapshot()
    assert len(snap["pred_mean"]) == len(snap["observed"]) == 20  # the 20 queries after the initial 10


def test_bo_acquisition_values():
    bo = strategies.get("bo", NB201, seed=0, acquisition="ei")
    bo.best_acc = 1.0
    ei = bo.acquisition_values(np.array([1.0, 2.0, 0.0]), np.array([1.0, 1e-12, 1e-12]))
    assert ei[0] == pytest.approx(stats.norm.pdf(0))  # mean = best: sigma * phi(0)
    assert ei[1] == pytest.approx(1.0) and ei[2] == pytest.approx(0.0)
    ucb = strategies.get("bo", NB201, seed=0, acquisition="ucb", kappa=2.0)
    assert ucb.acquisition_values(np.array([1.0]), np.array([0.5]))[0] == pytest.approx(2.0)


# ----------------------------------------------------------------------------- Boltzmann
def test_boltzmann_anneals_and_concentrates_on_predicted_good_architectures():
    s = strategies.get("boltzmann", NB201, seed=0, n_init=10, tau_start=1.0, tau_end=10.0, anneal_steps=40)
    assert s.tau() == 1.0
    first, last = [], []
    for i in range(60):
        a = s.ask()
        (first if i < 10 else last if i >= 40 else []).append(toy_acc(a))
        s.tell(a, toy_acc(a))
    assert s.tau() == pytest.approx(10.0)
    assert len(s.seen) == 60  # never asks an evaluated architecture again
    assert np.mean(last) > np.mean(first) + 5  # annealed sampling prefers predicted-good cells


# ----------------------------------------------------------------------------- MCTS
def test_uct_tries_unvisited_children_first():
    s = strategies.get("mcts", NB201, seed=0, c=0.5)
    firsts = []
    for _ in range(5):
        a = s.ask()
        firsts.append(a.genes[0])
        s.tell(a, toy_acc(a))
    assert sorted(firsts) == [0, 1, 2, 3, 4]  # each root child once before any repeat
    assert s.visits[()] == 5 and all(s.visits[(g,)] == 1 for g in range(5))


def test_uct_formula_matches_a_hand_computation():
    s = strategies.get("mcts", NB201, seed=0, c=0.7)
    # root visited 10 times; children 0..4 with visits and summed accuracies
    s.visits = {(): 10, (0,): 1, (1,): 2, (2,): 3, (3,): 4}
    s.totals = {(): 0.0, (0,): 60.0, (1,): 150.0, (2,): 240.0, (3,): 280.0}
    s.lo, s.hi = 50.0, 90.0
    scores = s.uct_scores(())
    assert scores[4] == math.inf  # unvisited
    for g, n, total in ((0, 1, 60.0), (1, 2, 150.0), (2, 3, 240.0), (3, 4, 280.0)):
        q = (total / n - 50.0) / 40.0
        assert scores[g] == pytest.approx(q + 0.7 * math.sqrt(math.log(10) / n))
    assert s.select_child(()) == 4
    s.visits[(4,)], s.totals[(4,)] = 1, 50.0
    # by hand, Q + 0.7 sqrt(ln 10 / n): 0: 0.25+1.062=1.312; 1: 0.625+0.751=1.376;
    # 2: 0.75+0.613=1.363; 3: 0.5+0.531=1.031; 4: 0+1.062=1.062 -> child 1
    assert s.select_child(()) == 1


def test_mcts_exhausts_a_small_space_without_repeats():
    acc = _pool_acc()
    s = strategies.get("mcts", POOL, seed=2)
    seen = []
    for _ in range(36):
        a = s.ask()
        seen.append(a)
        s.tell(a, acc[a])
    assert len(set(seen)) == 36 and () in s.exhausted
    s.tell(s.ask(), 1.0)  # then it starts afresh instead of failing


# ----------------------------------------------------------------------------- Hyperband
def test_hyperband_promotes_the_best_of_each_rung():
    ev = ToyEvaluator(fidelities=(1.0, 3.0, 9.0))
    s = strategies.get("hyperband", NB201, seed=0, fidelities=ev.fidelities, eta=3)
    assert [s.bracket_size(b) for b in (2, 1, 0)] == [9, 5, 3]
    for _ in range(60):
        a = s.ask()
        s.tell(a, ev.evaluate(a, s.fidelity))
    rungs = s.rungs
    assert [(r["bracket"], r["rung"], r["fidelity"], len(r["archs"])) for r in rungs[:6]] == [
        (2, 0, 1.0, 9), (2, 1, 3.0, 3), (2, 2, 9.0, 1), (1, 0, 3.0, 5), (1, 1, 9.0, 1), (0, 0, 9.0, 3)]
    for r, nxt in zip(rungs, rungs[1:]):
        if r["rung"] < r["bracket"]:
            k = max(1, len(r["archs"]) // 3)
            top = [a for a, _ in sorted(zip(r["archs"], r["acc"]), key=lambda t: -t[1])[:k]]
            assert r["promoted"] == top
            assert sorted(nxt["archs"]) == sorted(top)  # exactly the promoted go on, at the next fidelity
        else:
            assert r["promoted"] == []


def test_successive_halving_repeats_the_most_aggressive_bracket():
    ev = ToyEvaluator(fidelities=(1.0, 3.0, 9.0))
    s = strategies.get("hyperband", NB201, seed=0, fidelities=ev.fidelities, mode="sh")
    for _ in range(26):
        a = s.ask()
        s.tell(a, ev.evaluate(a, s.fidelity))
    assert [r["bracket"] for r in s.rungs] == [2, 2, 2, 2, 2, 2]


# ----------------------------------------------------------------------------- resumption
@pytest.mark.parametrize("name", strategies.names())
def test_checkpoint_resume_continues_identically(name):
    opts = {**_opts(name), **({"n_init": 5, "refit_every": 3, "epochs": 30, "n_random": 30} if name == "bo" else {}),
            **({"population_size": 8, "sample_size": 3} if name == "rea" else {}),
            **({"n_init": 4} if name == "boltzmann" else {})}
    ev = ToyEvaluator(fidelities=(1.0, 3.0, 9.0) if name == "hyperband" else None)
    s = strategies.get(name, NB201, seed=7, **opts)
    for _ in range(12):
        a = s.ask()
        s.tell(a, ev.evaluate(a, s.fidelity))
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)  # what a Run checkpoint does
    buf.seek(0)
    state = torch.load(buf, weights_only=False)

    def cont(strategy):
        out = []
        for _ in range(12):
            a = strategy.ask()
            r = ev.evaluate(a, strategy.fidelity)
            strategy.tell(a, r)
            out.append((str(a), strategy.fidelity, r.acc))
        return out

    expected = cont(s)
    fresh = strategies.get(name, NB201, seed=7, **opts)
    fresh.load_state_dict(state)
    assert cont(fresh) == expected
    assert fresh.best_acc == s.best_acc
