"""The thesis' samplers on hand-computed numbers: IPF, UCT, Boltzmann, trees, densities, prototypes.

No training here (see test_sampler_training.py): rewards are synthetic, distances hand-made.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasbench_lab import spaces
from nasbench_lab.training import representations as reps
from nasbench_lab.training.samplers import get, options_of, sampler_class
from nasbench_lab.training.samplers.density import (
    acceptance,
    debiased_probabilities,
    prototype_mean_distance,
    update_prototypes,
)
from nasbench_lab.training.samplers.mixture import MixtureSupernet, ipf, kl_to_uniform
from nasbench_lab.training.samplers.tree import SearchTree, uct

# Two busy cores are shared by several test runs: one intra-op thread avoids OpenMP
# oversubscription, which makes small convolutions tens of times slower.


POOL = spaces.get("pooling")
ARCHS = POOL.enumerate()


def _first(arch):
    """Layers at full resolution (the first count of the layout)."""
    return POOL.layout(arch)[0] if arch.space == POOL.name else arch.genes[0]


def _reward(arch, rng):
    # a smooth synthetic landscape: more layers at full resolution is better, plus noise
    return 0.5 + 0.05 * _first(arch) + 0.02 * rng.normal()


# --------------------------------------------------------------------------- IPF (eq 2.3 balancing)
def test_ipf_two_by_two_matches_the_closed_form():
    # Uniform margins keep the odds ratio: x^2 / (0.5 - x)^2 = (0.4 * 0.3) / (0.1 * 0.2) = 6.
    P, rounds, kl = ipf(np.array([[0.4, 0.1], [0.2, 0.3]]), tol=1e-12)
    x = 0.5 * math.sqrt(6) / (1 + math.sqrt(6))
    np.testing.assert_allclose(P, [[x / 1, 0.5 - x], [0.5 - x, x]], atol=1e-6)
    assert rounds > 1 and kl < 1e-12


def test_ipf_gives_uniform_marginals_on_a_skewed_softmax():
    rng = np.random.default_rng(3)
    a = rng.uniform(0.3, 0.9, size=(36, 4))
    a[:, 0] += 0.2  # model 0 looks better everywhere: the raw softmax would starve the others
    from scipy.special import softmax

    raw = softmax(a.ravel() / 0.05).reshape(a.shape)
    assert kl_to_uniform(raw.sum(0)) > 0.5
    P, rounds, kl = ipf(raw, tol=1e-4)
    np.testing.assert_allclose(P.sum(1), np.full(36, 1 / 36), atol=1e-12)  # rows exact
    assert kl < 1e-4
    np.testing.assert_allclose(P.sum(0), np.full(4, 0.25), atol=0.01)
    assert P.sum() == pytest.approx(1.0)
    # IPF only rescales rows and columns: every odds ratio of the softmax is kept
    def odds(M):
        return M[:, :1] * M[0, 1:] / (M[:, 1:] * M[0, :1])

    np.testing.assert_allclose(odds(P), odds(raw), rtol=1e-8)


def test_ipf_rejects_a_bad_matrix():
    with pytest.raises(ValueError, match="P:"):
        ipf(np.array([[-1.0, 1.0]]))


# --------------------------------------------------------------------------- UCT and Boltzmann (eq 3.2-3.4, 2.6)
def test_uct_values_and_sibling_softmax_by_hand():
    R = uct([0.5, 0.6], [4, 1], n_parent=5, lam=0.5)
    # 0.5 + 0.5*sqrt(ln 5 / 4) and 0.6 + 0.5*sqrt(ln 5 / 1)
    np.testing.assert_allclose(R, [0.81716, 1.23432], atol=1e-5)
    tree = SearchTree.from_scores(ARCHS[:2], [1.0, 0.0])  # root with two leaves
    left, right = tree.children[0]
    tree.n[0], tree.n[left], tree.n[right] = 5, 4, 1
    tree.C[left], tree.C[right] = 0.5, 0.6
    ch, p = tree.child_probabilities(0, temperature=0.1, lam=0.5)
    assert ch == [left, right]
    np.testing.assert_allclose(p, [0.01520, 0.98480], atol=1e-4)  # softmax(R / 0.1)
    # lambda = 0 (the final choice) uses C alone: softmax([5, 6]) -> 0.26894 / 0.73106
    _, p0 = tree.child_probabilities(0, temperature=0.1, lam=0.0)
    np.testing.assert_allclose(p0, [0.26894, 0.73106], atol=1e-4)


def test_tree_update_is_the_smoothed_accuracy_of_eq_3_4():
    tree = SearchTree.default(POOL)
    path = tree.path_to(POOL.parse("[4,3,3]").genes)
    tree.update(path, 0.8, beta=0.95)
    tree.update(path, 0.4, beta=0.95)
    assert [tree.n[i] for i in path] == [2] * 10  # the root and one node per block
    assert tree.C[path[-1]] == pytest.approx(0.95 * 0.8 + 0.05 * 0.4)  # first visit initialises


def test_unvisited_children_are_tried_first():
    tree = SearchTree.default(POOL)
    rng = np.random.default_rng(0)
    firsts = set()
    for _ in range(2):
        path = tree.descend(rng, 0.02, 0.5)
        firsts.add(path[1])
        tree.update(path, 0.5, 0.95)
    assert firsts == set(tree.children[0])  # block 1 pools, and does not: each once


def test_boltzmann_probabilities_and_inverse_temperature_schedule():
    s = get("boltzmann", POOL, t_start=1.0, t_end=0.01, total_steps=100)
    s.observe(ARCHS[0], 0.9)
    s.observe(ARCHS[1], 0.6)
    p = s.probabilities(temperature=0.1)
    assert p[0] / p[1] == pytest.approx(math.exp(3.0))  # exp((0.9 - 0.6) / 0.1)
    assert p[0] / p[5] == pytest.approx(math.exp(1.5))  # unseen = mean of the seen (0.75)
    s.observe(ARCHS[0], 0.4)
    assert s.eps[0] == pytest.approx(0.95 * 0.9 + 0.05 * 0.4)
    s.progress.step = 50  # eq 2.6: 1/T linear from 1 to 100 -> 50.5 halfway
    assert s.temperature == pytest.approx(1 / 50.5)
    s.schedule = "linear"
    assert s.temperature == pytest.approx(0.505)


def test_boltzmann_concentrates_on_the_best_as_it_cools():
    s = get("boltzmann", POOL, seed=1, total_steps=2000)
    rng = np.random.default_rng(0)
    seq = []
    for _ in range(2000):
        a = s.sample()
        seq.append(a)
        s.observe(a, _reward(a, rng))
    late = [_first(a) for a in seq[-300:]]
    assert np.mean(late) > 6.0  # the landscape favours many full-resolution layers (max 8)
    assert np.mean([_first(a) for a in seq[:100]]) < 4.5  # early: close to uniform (mean 3.33)


def test_independent_sampler_learns_per_level_preferences_in_a_constrained_space():
    s = get("independent", POOL, seed=0, total_steps=1500)
    rng = np.random.default_rng(1)
    for _ in range(1500):
        a = s.sample()
        assert sum(a.genes) == 2 and sum(POOL.layout(a)) == 10  # only valid layouts
        s.observe(a, _reward(a, rng))
    p0 = s.level_probabilities(0, temperature=s.t_end)
    assert int(np.argmax(p0)) == 0  # block 1 keeps the resolution (pooling there is the worst)
    assert _first(s.select()[0]) >= 7


# --------------------------------------------------------------------------- trees
def test_default_tree_has_exactly_the_space_leaves():
    tree = SearchTree.default(POOL)
    assert len(tree.leaves()) == 36
    assert set(tree.leaves()) == {a.genes for a in ARCHS}
    macro = SearchTree.default(spaces.get("nbmacro"))
    assert len(macro.leaves()) == 6561
    lazy = SearchTree.default(spaces.get("nbmacro"), lazy=True)
    assert len(lazy) == 1  # expands on visit only
    path = lazy.path_to((2, 2, 2, 1, 2, 2, 2, 0))
    assert len(path) == 9 and len(lazy) == 1 + 8 * 3


def test_learned_tree_separates_the_blocks_of_a_block_diagonal_distance_matrix():
    rng = np.random.default_rng(0)
    block = np.array([0] * 10 + [1] * 26)
    rng.shuffle(block)
    D = np.where(block[:, None] == block[None, :], 0.1, 1.0) + 0.05 * rng.random((36, 36))
    s = get("mcts-learned", POOL)
    tree = s.build_tree_from_distances(D)
    assert len(tree.leaves()) == 36
    below = []
    for child in tree.children[0]:
        stack, leaves = [child], set()
        while stack:
            v = stack.pop()
            if tree.leaf[v] is not None:
                leaves.add(tree.leaf[v])
            stack.extend(tree.children[v] or [])
        below.append(leaves)
    groups = [{ARCHS[i].genes for i in np.flatnonzero(block == b)} for b in (0, 1)]
    assert sorted(below, key=len) == sorted(groups, key=len)


def test_rank_trees_balanced_and_greedy():
    scores = np.arange(36, dtype=float)  # ARCHS[35] is the best
    bal = SearchTree.from_scores(ARCHS, scores, "balanced")
    first = bal.children[0][0]
    stack, leaves = [first], set()
    while stack:
        v = stack.pop()
        if bal.leaf[v] is not None:
            leaves.add(bal.leaf[v])
        stack.extend(bal.children[v])
    assert leaves == {a.genes for a in ARCHS[18:]}  # the better half under the first child
    assert max(bal.depth) == 6  # ceil(log2 36)
    greedy = SearchTree.from_scores(ARCHS, scores, "greedy")
    assert max(greedy.depth) == 35  # a chain: the worst architecture hangs off the root
    assert greedy.leaf[greedy.children[0][1]] == ARCHS[0].genes


def test_regularization_updates_the_shared_value_of_equivalent_nodes():
    s = get("mcts-reg", POOL, warmup=0.0, uct_warmup=0.0, total_steps=100)
    tree = s.tree
    a = POOL.parse("[4,3,3]")
    s.observe(a, 0.7)
    # "block 4 pools" has one shared value for all its nodes; off-path nodes keep no value of their own
    assert tree.shared[(3, 1)] == pytest.approx(0.7)
    eq = [j for j in tree.equivalent[(3, 1)] if j not in tree.path_to(a.genes)]
    assert eq and all(tree.n[j] == 0 and not tree.valued[j] for j in eq)
    plain = get("mcts", POOL, warmup=0.0, uct_warmup=0.0, total_steps=100)
    plain.observe(a, 0.7)
    assert plain.tree.shared == {} and plain.tree.reg_weight == 0.0


def test_mcts_phases_and_final_choice():
    s = get("mcts", POOL, seed=2, total_steps=1000)
    rng = np.random.default_rng(0)
    phases = []
    for _ in range(1000):
        phases.append(s.phase())
        a = s.sample()
        s.observe(a, _reward(a, rng))
    assert phases[0] == "warm-up" and phases[450] == "uct warm-up" and phases[-1] == "mcts"
    assert phases.count("warm-up") == 400 and phases.count("uct warm-up") == 250
    assert s.tree.n[0] == 600  # statistics only after the first warm-up
    assert s.temperature == pytest.approx(0.0025, rel=0.02)
    assert _first(s.select()[0]) >= 6  # lambda = 0 picks a high-C path
    assert 1 <= len(s.select(k=3)) <= 3  # distinct samples with lambda = 0 (fewer if the tree is sure)


# --------------------------------------------------------------------------- density (eq 5.5-5.10)
def test_density_softmax_favours_the_isolated_architecture():
    D = np.full((5, 5), 0.1)
    D[4, :] = D[:, 4] = 1.0
    np.fill_diagonal(D, 0.0)
    md = reps.mean_distance(D)
    np.testing.assert_allclose(md, [0.325] * 4 + [1.0])  # (3 * 0.1 + 1.0) / 4
    p = debiased_probabilities(md, temperature=1.0)  # z-scores -0.5 and 2.0
    assert p[4] == pytest.approx(math.exp(2.5) / (math.exp(2.5) + 4))
    p_raw = debiased_probabilities(md, temperature=1.0, normalize="none")
    assert p_raw[4] / p_raw[0] == pytest.approx(math.exp(0.675))
    assert debiased_probabilities(md, temperature=1e3).std() < 1e-3  # tau -> inf: uniform


def test_density_sampler_samples_sparse_architectures_more():
    s = get("density", POOL, seed=0, warmup=0.0, temperature=1.0, total_steps=400)
    X = reps.encoding_vectors(POOL, ARCHS, gamma=0.5)  # weighted: early poolings set layouts apart
    md = reps.mean_distances(X, "hamming")
    np.testing.assert_allclose(md, reps.mean_distance(reps.pairwise(X, X, "hamming")))
    s.set_mean_distances(md)
    counts = np.zeros(36)
    for _ in range(400):
        a = s.sample()
        counts[POOL.index(a)] += 1
        s.observe(a, 0.5)
    sparse, dense = np.argsort(md)[-6:], np.argsort(md)[:6]
    assert counts[sparse].sum() > 2 * counts[dense].sum()


def test_prototype_equations_on_a_hand_example():
    C = np.array([[0.0, 0.0], [1.0, 0.0]])
    r = np.array([0.0, 1.0])
    # "hamming" metric: half the squared Euclidean distance -> d = 0.5 and 1.0
    assert prototype_mean_distance(r, C, "hamming") == pytest.approx(1.5)  # sum / (K - 1)
    new = update_prototypes(C, r, lam=0.5, metric="hamming", assignment="printed")  # eq 5.8 as printed:
    np.testing.assert_allclose(new, [[0.0, 0.1], [0.6, 0.4]])  # beta = [0.25, 1] / 1.25 = [0.2, 0.8]
    # the default reads eq 5.8 inverted, fuzzy c-means (m = 2): u = [4, 1] / 5, beta = u^2 = [0.64, 0.04]
    new = update_prototypes(C, r, lam=0.5, metric="hamming")
    np.testing.assert_allclose(new, [[0.0, 0.32], [0.98, 0.02]])
    # eq 5.10: denser than the median -> accepted less than half the time
    assert acceptance(alpha=2.0, alpha_mid=1.0, temperature=0.5) == pytest.approx(1 / (1 + math.exp(2.0)))
    assert acceptance(alpha=0.5, alpha_mid=1.0, temperature=0.5) > 0.5


def test_cosine_and_hamming_distances():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    D = reps.pairwise(X, X, "cosine")
    np.testing.assert_allclose(D[0, 1], 1.0)
    np.testing.assert_allclose(D[0, 0], 0.0, atol=1e-12)
    assert D[2, 0] == 1.0  # a zero vector is orthogonal to everything
    E = reps.encoding_vectors(POOL, [POOL.parse("[4,3,3]"), POOL.parse("[4,2,4]"), POOL.parse("[5,2,3]")], gamma=0.5)
    H = reps.pairwise(E, E, "hamming")
    assert H[0, 1] == pytest.approx(0.5**5 + 0.5**6)  # blocks 6 and 7 differ (levels 5 and 6)
    assert H[0, 2] == pytest.approx(0.5**3 + 0.5**4)  # blocks 4 and 5


# --------------------------------------------------------------------------- mixture
def test_mixture_supernet_routes_each_architecture_to_its_model():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x, arch=None):
            return self.lin(x)

    s = get("mixture", POOL, models=3, total_steps=10)
    net = s.wrap_supernet(Net())
    assert isinstance(net, MixtureSupernet) and len(net.nets) == 3
    assert not torch.equal(net.nets[0].lin.weight, net.nets[1].lin.weight)  # fresh initialisations
    x = torch.randn(4, 3)
    a = s.sample()
    c, m = s.current
    assert torch.equal(net(x, a), net.nets[m](x))
    s.observe(a, 0.9)
    s.a[c] = [0.1, 0.2, 0.95]
    s.seen[c] = True
    s._P = None  # the joint is cached per step; we edited the accuracies by hand
    assert s.route(a) == 2 and torch.equal(net(x, a), net.nets[2](x))


def test_mixture_keeps_models_balanced_while_specialising():
    s = get("mixture", POOL, models=2, seed=0, total_steps=3000)
    rng = np.random.default_rng(0)
    for _ in range(3000):
        a = s.sample()
        c, m = s.current
        # model 0 is better on layouts with many full-resolution layers, model 1 on the others
        good = (m == 0) == (_first(a) >= 4)
        s.observe(a, 0.6 + 0.2 * good + 0.02 * rng.normal())
    share = s.counts.sum(0) / s.counts.sum()
    np.testing.assert_allclose(share, [0.5, 0.5], atol=0.1)  # balanced training
    P = s.joint()
    np.testing.assert_allclose(P.sum(0), [0.5, 0.5], atol=0.01)
    best = np.argmax(s.conditional(), 1)
    expected = np.array([0 if _first(a) >= 4 else 1 for a in ARCHS])
    assert (best == expected).mean() > 0.8
    assert s.tau == pytest.approx(1 / 200, rel=0.01)


# --------------------------------------------------------------------------- state
SAMPLERS = [
    ("uniform", {}), ("fair", {}), ("boltzmann", {}), ("independent", {}), ("mcts", {}), ("mcts-reg", {}),
    ("mcts-learned", {}), ("mcts-iterative", {}), ("mixture", {"models": 3}),
    ("density", {"representation": "encoding", "warmup": 0.1}),
    ("enas", {"controller_every": 0, "aggregate": 20}),
]


def _drive(s, n, rng, prepare=None):
    out = []
    for _ in range(n):
        if prepare:
            prepare(s)
        a = s.sample()
        out.append(str(a))
        s.observe(a, _reward(a, rng))
    return out


def _prepare(s):
    # what a trainer would do at the phase boundaries, with synthetic inputs
    if s.name == "mcts-learned" and s.tree is None and s.progress.frac() >= s.warmup:
        X = reps.encoding_vectors(POOL, ARCHS, gamma=0.5)
        s.build_tree_from_distances(reps.pairwise(X, X, "hamming"))
    if s.name == "mcts-iterative" and s._segment() + 1 > s.iteration:
        s.rebuild_from_scores(np.array([_first(a) + 0.1 * POOL.layout(a)[1] for a in ARCHS]))
    if s.name == "density" and s.mean_dist is None and s.progress.frac() >= s.warmup:
        s.set_mean_distances(reps.mean_distances(reps.encoding_vectors(POOL, ARCHS), "hamming"))


@pytest.mark.parametrize("name,options", SAMPLERS, ids=[n for n, _ in SAMPLERS])
def test_state_dict_resume_continues_identically(name, options):
    if "total_steps" in options_of(sampler_class(name)):
        options = {**options, "total_steps": 400}
    a = get(name, POOL, seed=4, **options)
    rng = np.random.default_rng(9)
    _drive(a, 260, rng, _prepare)
    # a checkpoint round trip: tensors and plain data only (checkpoints load with weights_only=True)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    rng_state = rng.bit_generator.state
    cont = _drive(a, 140, rng, _prepare)
    b = get(name, POOL, seed=123, **options)  # another seed: all must come from the state
    b.load_state_dict(state)
    rng.bit_generator.state = rng_state
    assert _drive(b, 140, rng, _prepare) == cont
    assert b.snapshot() == a.snapshot()


@pytest.mark.parametrize("name,bad,match", [
    ("mcts", {"lam": -1}, "lam"), ("mcts", {"warmup": 0.7, "uct_warmup": 0.4}, "warmup"),
    ("boltzmann", {"schedule": "cubic"}, "schedule"), ("mixture", {"models": 0}, "models"),
    ("density", {"representation": "pixels"}, "representation"), ("density", {"temperature": 0}, "temperature"),
    ("mcts-iterative", {"merge": "random"}, "merge"), ("mcts-learned", {"linkage": "ward"}, "linkage"),
])
def test_bad_options_raise_value_errors_naming_the_argument(name, bad, match):
    with pytest.raises(ValueError, match=match):
        get(name, POOL, **bad)


def test_regularization_needs_the_default_tree():
    tree = SearchTree.from_scores(ARCHS, np.arange(36.0))
    with pytest.raises(ValueError, match="default tree"):
        tree.regularize(tree.path_to(ARCHS[0].genes), 0.5, 0.95)
