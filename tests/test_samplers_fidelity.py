"""Issue 12: each sampler does what its section of the thesis says, checked against numbers
computed here independently (by hand, brute force, a second formula).

The defect each test guards is named in its docstring; the test fails on the code before the fix.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

from nasbench_lab import data, spaces
from nasbench_lab.training import Trainer
from nasbench_lab.training import representations as reps
from nasbench_lab.training.samplers import compare as cmp
from nasbench_lab.training.samplers import get
from nasbench_lab.training.samplers.density import update_prototypes
from nasbench_lab.training.samplers.mixture import ipf_log, kl_to_uniform
from nasbench_lab.training.samplers.tree import SearchTree

POOL = spaces.get("pooling")
ARCHS = POOL.enumerate()


def P(text: str):
    return POOL.parse(text)


@pytest.fixture(scope="module")
def digits():
    return data.get("digits", seed=0)


def _tiny(digits, method, space="pooling", steps=8, **options):
    return Trainer(space=space, dataset="digits", data=digits, steps=steps, batch_size=16, val_batch_size=16,
                   rank_at_end=False, augment=False, method=method, method_options=options)


# --------------------------------------------------------------------------- 1. per-layer pooling decisions
def test_default_pooling_tree_has_one_level_per_block_and_36_leaves():
    """Defect 1: the default tree of `pooling` took the 3 resolutions as levels."""
    tree = SearchTree.default(POOL)
    assert max(tree.depth) == 9  # one level per block: the stem never pools
    assert len(tree.leaves()) == 36 == math.comb(9, 2)
    assert {POOL.format(g) for g in tree.leaves()} == {str(a) for a in ARCHS}
    assert tree.label(tree.children[0][1]) == "block 1: pool"
    # every internal node branches on pool / identity, or is forced once the count is decided
    assert all(len(tree.children[i]) in (1, 2) for i in range(len(tree)) if not tree.is_leaf(i))


def test_per_layer_encodings_differ_exactly_where_a_pooling_moved():
    """Defect 1: the one-hot of layer counts put every pair of layouts at distance 4 or 6."""
    a, b, c = P("[4,3,3]"), P("[4,2,4]"), P("[5,2,3]")  # pools before blocks {4,7}, {4,6}, {5,7}
    for x, y, moved in ((a, b, {6, 7}), (a, c, {4, 5}), (b, c, {4, 5, 6, 7})):
        diff = {i + 1 for i, (g, h) in enumerate(zip(x.genes, y.genes)) if g != h}  # block numbers
        assert diff == moved
        onehot = np.abs(POOL.encode(x) - POOL.encode(y)).reshape(9, 2).sum(1)
        assert set(np.flatnonzero(onehot) + 1) == moved
    # Table 3.2's weighted encoding: weight gamma**level, early moves count more than late ones
    E = reps.encoding_vectors(POOL, [a, b, c], gamma=0.5)
    H = reps.pairwise(E, E, "hamming")
    assert H[0, 1] == pytest.approx(0.5**5 + 0.5**6)  # blocks 6 and 7 (levels 5, 6)
    assert H[0, 2] == pytest.approx(0.5**3 + 0.5**4)  # blocks 4 and 5
    late, early = P("[7,2,1]"), P("[1,3,6]")  # the same one-block move, late vs early
    assert reps.pairwise(*[reps.encoding_vectors(POOL, [late, P("[7,1,2]")], gamma=0.5)] * 2, "hamming")[0, 1] \
        < reps.pairwise(*[reps.encoding_vectors(POOL, [early, P("[2,2,6]")], gamma=0.5)] * 2, "hamming")[0, 1]
    # unweighted: the number of blocks whose decision differs
    U = reps.encoding_vectors(POOL, [a, b, c])
    assert reps.pairwise(U, U, "hamming")[1, 2] == pytest.approx(4.0)


def test_regularisation_shares_one_ema_per_block_and_choice():
    """Defect 1: Su et al.'s node communication tied per-resolution counts (different pooling positions).
    Issue 22: the tie is soft, one shared EMA G per (block, choice) blended into UCT's value."""
    s = get("mcts-reg", POOL, warmup=0.0, uct_warmup=0.0, total_steps=100, beta=0.9, reg_weight=0.3)
    tree = s.tree
    a, b = P("[4,3,3]"), P("[3,4,3]")  # pools {4,7} and {3,7}
    path_a = tree.path_to(a.genes)
    s.observe(a, 0.6)
    # "block 7: pool" (level 6, gene 1) has one shared value; nodes off the path keep their own C
    assert tree.shared[(6, 1)] == pytest.approx(0.6) and (6, 0) not in tree.shared
    eq = [j for j in tree.equivalent[(6, 1)] if j not in path_a]
    assert eq and all(not tree.valued[j] and tree.n[j] == 0 for j in eq)
    # the shared value follows its own EMA: 0.9 * 0.6 + 0.1 * 0.8 on the second update
    s.observe(b, 0.8)
    path_b = tree.path_to(b.genes)
    assert tree.shared[(6, 1)] == pytest.approx(0.9 * 0.6 + 0.1 * 0.8)
    # on b's path "block 7: pool" starts its own EMA at b's reward; UCT reads 0.7 C + 0.3 G
    j7 = path_b[7]
    assert tree.gene[j7] == 1 and tree.C[j7] == pytest.approx(0.8) and tree.n[j7] == 1
    assert tree.values([j7])[0] == pytest.approx(0.7 * 0.8 + 0.3 * (0.9 * 0.6 + 0.1 * 0.8))
    assert tree.values([j7], communicate=False)[0] == pytest.approx(0.8)  # the final choice: C alone


def test_independent_sampler_is_the_product_over_blocks_restricted_to_valid_layouts():
    """Defect 1: the independent factors were per-resolution counts; now per block, restricted exactly."""
    s = get("independent", POOL, seed=0, total_steps=100, t_start=0.05, t_end=0.05)
    s.observe(P("[4,3,3]"), 0.9)  # block 4 pool, block 7 pool, others identity: 0.9
    s.observe(P("[1,1,8]"), 0.3)  # blocks 1 and 2 pool: 0.3
    # by hand: r[level][gene] for the observed pairs, unseen pairs = mean of the seen ones of the level
    vals = {}
    for level in range(9):
        seen = {}
        for arch, rew in ((P("[4,3,3]"), 0.9), (P("[1,1,8]"), 0.3)):
            g = arch.genes[level]
            seen[g] = rew if g not in seen else 0.95 * seen[g] + 0.05 * rew
        mean = np.mean(list(seen.values()))
        vals[level] = {g: seen.get(g, mean) for g in (0, 1)}
    score = np.array([sum(vals[lv][g] for lv, g in enumerate(a.genes)) for a in ARCHS])
    want = np.exp((score - score.max()) / 0.05)
    np.testing.assert_allclose(s.probabilities(), want / want.sum(), rtol=1e-9)
    assert str(s.select()[0]) == str(ARCHS[int(np.argmax(score))])


# --------------------------------------------------------------------------- 2. iterative tree
def _literal_merge(order: list[int]) -> tuple:
    """§4.3.3 by brute force: merge the two current nodes with the lowest average rank."""
    nodes = [((i,), [rank]) for rank, i in enumerate(order, start=1)]
    while len(nodes) > 1:
        nodes.sort(key=lambda n: np.mean(n[1]))
        (a, ra), (b, rb) = nodes[0], nodes[1]
        nodes = [((a, b), ra + rb)] + nodes[2:]
    return nodes[0][0]


def _nested(tree: SearchTree, node: int, archs) -> tuple:
    if tree.is_leaf(node):
        return (archs.index(tree.leaf[node]),)
    return tuple(_nested(tree, c, archs) for c in tree.children[node])


def test_the_greedy_merge_is_the_literal_lowest_average_rank_merge():
    """§4.3.3 read literally ("iteratively merges the two nodes with the lowest average ranks")."""
    rng = np.random.default_rng(0)
    sub = ARCHS[:7]
    scores = rng.random(7)
    order = [int(i) for i in np.argsort(-scores)]
    tree = SearchTree.from_scores(sub, scores, "greedy")
    genes = [a.genes for a in sub]

    def canon(t):
        return t[0] if len(t) == 1 and not isinstance(t[0], tuple) else frozenset(canon(c) for c in t)

    assert canon(_nested(tree, tree.root, genes)) == canon(_literal_merge(order))
    s = get("mcts-iterative", POOL, total_steps=100, merge="greedy")
    full = s.rebuild_from_scores(np.array([POOL.layout(a)[0] + 0.1 * POOL.layout(a)[1] for a in ARCHS]))
    assert max(full.depth) == 35  # a chain


def _mcts_pick(tree: SearchTree, acc: np.ndarray, steps: int, seed: int, noise: float) -> tuple:
    """Alg 4.1 lines 6-18 with a known reward per architecture (eq 3.2-3.4 at the pooling
    settings of App. I: T 0.02 -> 0.0025, lambda 0.5, beta 0.95), then the lambda = 0 pick."""
    rng = np.random.default_rng(seed)
    index = {a.genes: i for i, a in enumerate(ARCHS)}
    for t in range(steps):
        path = tree.descend(rng, 0.02 + (0.0025 - 0.02) * t / steps, 0.5)
        tree.update(path, acc[index[tree.leaf[path[-1]]]] + rng.normal(0, noise), 0.95)
    return tree.leaf[tree.descend(rng, 0.0025, 0.0, greedy=True)[-1]]


def test_the_default_rank_tree_finds_the_best_architectures_and_the_literal_chain_starves_them():
    """Defect (found on real runs: mcts-iterative's own picks had true ranks 36, 36, 27 of 36).

    The chain of the literal merge halves the visits per level, so its best leaves (deepest) are
    never reached in a run's budget and the lambda = 0 pick stops at the deepest visited leaf.
    The authors' code (mehravehj/Iterative_MCTS, build_balanced_rank_tree) halves the ranking
    instead; that tree is the default. Rewards are the true accuracies plus minibatch noise, the
    tree is built from a noisy ranking (a supernet's), 600 steps."""
    rng = np.random.default_rng(0)
    acc = rng.permutation(np.linspace(0.5, 0.8, len(ARCHS)))
    true_rank = (-acc).argsort().argsort() + 1
    index = {a.genes: i for i, a in enumerate(ARCHS)}
    assert get("mcts-iterative", POOL, total_steps=100).merge == "balanced"
    picks = {"balanced": [], "greedy": []}
    for seed in range(6):
        scores = acc + np.random.default_rng(100 + seed).normal(0, 0.03, len(ARCHS))
        for merge in picks:
            tree = SearchTree.from_scores(ARCHS, scores, merge)
            picks[merge].append(int(true_rank[index[_mcts_pick(tree, acc, 600, seed, 0.05)]]))
    assert max(picks["balanced"]) <= 3, picks  # measured: ranks 1-2
    assert min(picks["greedy"]) >= 20, picks  # measured: ranks 27-32, the deepest visited level


def test_balanced_split_is_not_bottom_up_pairing_when_n_is_not_a_power_of_two():
    """Defect 2: the docstring called the halving and the bottom-up pairing the same tree."""
    tree = SearchTree.from_scores(ARCHS, np.arange(36.0), "balanced")

    def size(v):
        return 1 if tree.is_leaf(v) else sum(size(c) for c in tree.children[v])

    assert sorted(size(c) for c in tree.children[0]) == [18, 18]
    # bottom-up pairing of adjacent ranks, the odd cluster carried to the next round
    clusters = [1] * 36
    while len(clusters) > 2:
        nxt = [clusters[i] + clusters[i + 1] for i in range(0, len(clusters) - 1, 2)]
        clusters = nxt + ([clusters[-1]] if len(clusters) % 2 else [])
    assert sorted(clusters) == [4, 32]


# --------------------------------------------------------------------------- 3. learned tree: w_p then fresh w
def test_learned_tree_uses_the_warmup_supernet_then_trains_fresh_weights(digits):
    """Defect 3: Alg 3.1 line 24, the search supernet w starts from random weights (not w_p)."""
    torch.manual_seed(0)
    tr = _tiny(digits, "mcts-learned", warmup=0.25, uct_warmup=0.25, batch_size=16)
    for _ in range(2):
        tr.step()
    s = tr.sampler
    assert s.tree is None
    warm = {k: v.clone() for k, v in tr.net.state_dict().items()}
    D = reps.compute(tr, ARCHS, "functional", batch_size=16).distances()  # from w_p
    s.before_step(tr)  # step 2 of 8: the end of the warm-up
    assert s.tree is not None
    assert s.tree.parent == SearchTree.from_distances(D, ARCHS).parent  # the tree is w_p's
    now = tr.net.state_dict()
    conv = "layers.0.0.weight"
    assert not torch.equal(now[conv], warm[conv])
    bn = [k for k in now if k.endswith("running_var")]
    assert bn and all(torch.equal(now[k], torch.ones_like(now[k])) for k in bn)  # fresh BN statistics
    assert all(int(now[k]) == 0 for k in now if k.endswith("num_batches_tracked"))
    assert len(tr.optimizer.state) == 0 and tr.optimizer.param_groups[0]["lr"] == pytest.approx(tr.cfg.lr)
    assert tr.scheduler.T_max == 6  # the schedule restarts over the remaining steps
    # the option keeps the warm-up weights
    tr2 = _tiny(digits, "mcts-learned", warmup=0.25, uct_warmup=0.25, batch_size=16, fresh_weights=False)
    for _ in range(2):
        tr2.step()
    before = {k: v.clone() for k, v in tr2.net.state_dict().items()}
    tr2.sampler.before_step(tr2)
    assert all(torch.equal(before[k], v) for k, v in tr2.net.state_dict().items())


# --------------------------------------------------------------------------- 4. density sampler
def test_layer_cosine_by_hand():
    """Defect 4c: one global cosine let large layers dominate; §5.4.2 averages per-layer cosines."""
    m = reps.LayerCosine((0, 2, 4, 5))  # three layers of 2, 2 and 1 entries
    a = np.array([1.0, 0.0, 10.0, 0.0, 0.0])  # uses layers 1 and 2
    b = np.array([0.0, 1.0, 10.0, 1.0, 3.0])  # uses all three
    # layer 1: cos 0 -> 1; layer 2: cos(10,0 ; 10,1) ; layer 3: only b -> 1
    c2 = 100 / (10 * math.sqrt(101))
    assert reps.pairwise(a, b, m)[0, 0] == pytest.approx(((1 - 0) + (1 - c2) + 1) / 3)
    # the global cosine is dominated by the large layer
    assert reps.pairwise(a, b, "cosine")[0, 0] < 0.1
    assert reps.pairwise(a, a, m)[0, 0] == pytest.approx(0.0, abs=1e-12)
    z = np.zeros(5)
    assert reps.pairwise(z, a, m)[0, 0] == 1.0 and reps.mean_distances(np.stack([a, b, z]), m)[2] == 1.0


def test_gradient_distances_are_mean_per_layer_cosines_on_a_real_supernet(digits):
    """Defect 4c on pooling (every layer shared) and NB-Macro (layers not shared count 1)."""
    for space in ("pooling", "nbmacro"):
        torch.manual_seed(0)
        tr = _tiny(digits, "uniform", space=space)
        tr.step()
        archs = [tr.space.sample(np.random.default_rng(i)) for i in range(3)]
        r = reps.compute(tr, archs, "gradient", batch_size=8)
        x, y = tr.fixed_val_batch(8)
        net = copy.deepcopy(tr.net).train()  # a copy: its BN statistics may move, the trainer's do not
        params = [p for p in net.parameters() if p.requires_grad]
        grads = [torch.autograd.grad(torch.nn.functional.cross_entropy(net(x, a), y), params, allow_unused=True)
                 for a in archs]
        # layers = the modules owning parameters, in parameter order
        index = {id(p): i for i, p in enumerate(params)}
        layers = [[index[id(p)] for p in m.parameters(recurse=False)] for m in net.modules()
                  if any(True for _ in m.parameters(recurse=False))]

        def block(g, layer, params=params):
            return torch.cat([(g[i] if g[i] is not None else torch.zeros_like(params[i])).reshape(-1)
                              for i in layer]).double()

        for i in range(3):
            for j in range(3):
                d = []
                for layer in layers:
                    u, v = block(grads[i], layer), block(grads[j], layer)
                    nu, nv = float(u.norm()), float(v.norm())
                    if nu == 0 and nv == 0:
                        continue  # neither path uses the layer
                    d.append(1.0 if nu == 0 or nv == 0 else 1.0 - float(u @ v) / (nu * nv))
                assert r.distances()[i, j] == pytest.approx(np.mean(d), abs=1e-5), (space, i, j)
        if space == "nbmacro":
            assert any(float(block(grads[0], L).norm()) == 0 for L in layers)  # unused ops exist


def test_prototypes_follow_every_uniform_candidate_accepted_or_not():
    """Defect 4b: Alg 5.2 lines 12-19 update the prototypes with every drawn architecture."""

    class Stub:  # the encoding representation needs only the space
        space = POOL

    s = get("density", POOL, seed=3, variant="prototypes", representation="encoding", prototypes=3,
            initial_samples=12, warmup=0.0, max_tries=6, temperature=0.05, proto_lr=0.2, total_steps=10)
    s.init_prototypes(Stub())
    C = s.prototypes.copy()
    while s.tried == s.accepted and s.tried < 50:  # until some candidate was rejected
        s._draw(Stub())
    tried = [r["arch"] for r in s.recent]
    assert len(tried) == s.tried > s.accepted >= 1 and not all(r["accepted"] for r in s.recent)
    for a in tried:  # by hand, from the KMeans prototypes, in the order drawn
        C = update_prototypes(C, reps.encoding_vectors(POOL, [P(a)])[0], 0.2, "hamming")
    np.testing.assert_allclose(s.prototypes, C)


@pytest.fixture(scope="module")
def nb201_trainer(digits):
    torch.manual_seed(0)
    tr = Trainer(space="nb201", dataset="digits", data=digits, steps=4, batch_size=8, val_batch_size=8,
                 rank_at_end=False, augment=False, method="uniform")
    tr.step()
    return tr


@pytest.mark.parametrize("representation", reps.KINDS)
@pytest.mark.parametrize("variant", ["numerable", "prototypes"])
def test_density_on_nb201_for_every_representation_and_variant(nb201_trainer, representation, variant):
    """Defect 4a: prototypes + gradient crashed above ~20k parameters (sketched batch, raw singles)."""
    tr = nb201_trainer
    n_params = sum(p.numel() for p in tr.net.parameters())
    assert n_params > 1_000_000  # the NAS-Bench-201 supernet (1.7M with 10 classes)
    opts = dict(seed=0, variant=variant, representation=representation, warmup=0.0, batch_size=8,
                total_steps=4, prototypes=3, initial_samples=12, max_tries=2)
    s = get("density", tr.space, **opts)
    if variant == "numerable":
        s.archs = s.archs[:4]  # the code path of Alg 5.1 on a slice (15,625 forward passes are not a unit test)
        probs = s.estimate(tr)
        assert probs.shape == (4,) and np.isclose(probs.sum(), 1.0) and np.isfinite(s.mean_dist).all()
        return
    s.before_step(tr)  # KMeans on 12 samples, then uniform candidates against the prototypes
    assert s.prototypes.shape[0] == 3 and s.pending is not None and np.isfinite(s.prototypes).all()
    if representation == "gradient":
        assert s.sketch is not None  # 12 x 1.7M floats: sketched, and the single candidates too
        assert s.prototypes.shape[1] == len(s.pending[1]) == s.metric.bounds[-1]
    s.sample()
    s.observe(s.pending[0], 0.5) if s.pending else None


# --------------------------------------------------------------------------- 5. mixture in log space
def test_mixture_ipf_stays_finite_with_32_models_and_a_wide_spread():
    """Defect 5: softmax then linear IPF underflowed for M >= 16 (NaN rows read as converged)."""
    s = get("mixture", POOL, models=32, seed=0, total_steps=100)
    rng = np.random.default_rng(0)
    # layouts from 10 % to 90 % accurate, models within 5 points of each other on each
    s.a = np.linspace(0.1, 0.9, 36)[:, None] + 0.05 * rng.random((36, 32))
    s.seen[:] = True
    s.progress.step = 100  # tau_end = 1 / (100 M) = 1/3200
    assert s.tau == pytest.approx(1 / 3200)
    with np.errstate(invalid="ignore"):  # the linear-space softmax: whole rows underflow to 0 (then 0/0)
        from scipy.special import softmax

        assert (softmax((s.a / s.tau).ravel()).reshape(36, 32).sum(1) == 0).sum() == 25
    P = s.joint()
    assert np.isfinite(P).all()
    np.testing.assert_allclose(P.sum(1), 1 / 36, rtol=1e-9)
    assert kl_to_uniform(P.sum(0)) < s.ipf_tol
    cond = s.conditional()
    assert np.isfinite(cond).all() and np.allclose(cond.sum(1), 1.0)
    # IPF rescales rows and columns only: log odds ratios are those of a / tau (checked in log space)
    L = s._logP
    lor = L[1:, 1:] - L[1:, :1] - L[:1, 1:] + L[0, 0]
    want = (s.a[1:, 1:] - s.a[1:, :1] - s.a[:1, 1:] + s.a[0, 0]) / s.tau
    np.testing.assert_allclose(lor, want, rtol=1e-7, atol=1e-6)
    s._P = None
    a = s.sample()
    assert a in ARCHS and 0 <= s.current[1] < 32
    # a NaN never reads as converged
    assert math.isnan(kl_to_uniform(np.array([0.5, np.nan])))
    with pytest.raises(ValueError, match="logits"):
        ipf_log(np.array([[np.nan, 0.0]]))


def _spread_mixture(models, **options):
    """36 layouts, rewards spread uniformly over [0, 1], at the end of the run (tau = 1/(100 M))."""
    s = get("mixture", POOL, models=models, seed=0, total_steps=100, **options)
    s.a = np.random.default_rng(0).random((36, models))
    s.seen[:] = True
    s.progress.step = 100
    return s


def test_mixture_warns_when_ipf_stops_at_its_cap_and_the_cap_is_an_option(caplog):
    """Issue 22 item 5: IPF stopped silently at 1000 rounds, p(m) up to 11 % off uniform."""
    s = _spread_mixture(32, ipf_max_iter=1000)
    with caplog.at_level("WARNING", logger="nasbench_lab.training.samplers"):
        P = s.joint()
    assert s._ipf_iter == 1000 and s._ipf_kl == pytest.approx(1.165e-3, rel=1e-3)
    dev = np.abs(P.sum(0) * 32 - 1).max()
    assert dev > 0.10  # p(m) of some model more than 10 % off 1/M
    (w,) = s.pop_warnings()
    assert w["rule"] == "ipf-cap" and w["rounds"] == 1000 and w["max_iter"] == 1000
    assert w["kl"] == pytest.approx(s._ipf_kl) and w["p_model_max_deviation"] == pytest.approx(dev)
    assert "ipf_max_iter" in w["message"] and "IPF stopped at its cap of 1000 rounds" in caplog.text
    assert s.snapshot()["ipf"]["capped"] == 1
    s.a[0, 0] += 0.01  # the next step's fit is capped too: counted, not warned about again
    s.steps += 1
    s.joint()
    assert s.ipf_capped == 2 and s.pop_warnings() == []
    # the thesis' threshold with a higher cap (the default): 1,746 rounds at M = 32, 2,695 at M = 64
    for models, rounds in ((32, 1746), (64, 2695)):
        hi = _spread_mixture(models)
        assert hi.ipf_max_iter == 10000
        P = hi.joint()
        assert hi._ipf_iter == rounds and kl_to_uniform(P.sum(0)) < 1e-4
        assert hi.ipf_capped == 0 and hi.pop_warnings() == []
    with pytest.raises(ValueError, match="ipf_max_iter: expected a positive integer"):
        get("mixture", POOL, ipf_max_iter=0)


def test_trainer_emits_the_samplers_warnings_as_events(digits):
    tr = _tiny(digits, "mixture", steps=4, models=2, ipf_tol=1e-15, ipf_max_iter=1)
    events = []
    tr.bind(lambda kind, step=None, **d: events.append((kind, step, d)))
    for _ in range(4):
        tr.step()
    warnings = [(step, d) for kind, step, d in events if kind == "warning"]
    assert len(warnings) == 1 and tr.sampler.ipf_capped >= 1
    step, d = warnings[0]
    assert d["source"] == "mixture" and d["rule"] == "ipf-cap" and d["max_iter"] == 1 and d["kl"] > 1e-15


# --------------------------------------------------------------------------- 6. the reward pass
def test_reward_pass_changes_no_state_of_the_supernet(digits):
    """Defect 6: the reward ran in train mode and put validation batches into the BN statistics."""
    torch.manual_seed(0)
    tr = _tiny(digits, "uniform")
    bn = tr.net.layers[0][1]  # the stem's BatchNorm
    seen = []
    handle = bn.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach().clone()))
    tr.step()
    handle.remove()
    assert len(seen) == 2  # the training forward, then the reward forward
    # running mean after one step = momentum * mean of the *training* batch only
    want = 0.1 * seen[0].mean(dim=(0, 2, 3))
    torch.testing.assert_close(bn.running_mean, want, rtol=1e-5, atol=1e-6)
    assert all(int(m.num_batches_tracked) == 1 for m in tr.net.modules() if hasattr(m, "num_batches_tracked"))
    before = {k: v.clone() for k, v in tr.net.state_dict().items()}
    r = tr.reward(P("[4,3,3]"))
    assert 0.0 <= r <= 1.0 and tr.net.training
    assert all(torch.equal(before[k], v) for k, v in tr.net.state_dict().items())
    # outputs() and gradients() are read-only too (num_batches_tracked was counted by the old freeze)
    tr.outputs(P("[4,3,3]"), tr.fixed_val_batch(8)[0])
    tr.gradients(P("[4,3,3]"))
    assert all(torch.equal(before[k], v) for k, v in tr.net.state_dict().items())
    assert all(p.grad is None or p.grad.abs().sum() >= 0 for p in tr.net.parameters())


# --------------------------------------------------------------------------- 7. fair on DARTS
def test_fair_on_darts_is_per_edge_fair_within_each_node_window():
    """Defect 7: `fair` on DARTS raised an unrelated enumerate() error."""
    darts = spaces.get("darts")
    s = get("fair", darts, seed=0)
    archs = [s.sample() for _ in range(490)]  # node 5's window: C(5, 2) input pairs x 7 x 7 ops
    genes = np.array([a.genes for a in archs])
    # node 2 (inputs 0, 1 only): every pair of ops once per 49 steps
    first = genes[:49, 0:4]
    assert {(a, oa, b, ob) for a, oa, b, ob in first} == {(0, i, 1, j) for i in range(1, 8) for j in range(1, 8)}
    # node 5 of the normal cell (levels 12..15): every (input edge, op) exactly 28 times in its window
    node = genes[:, 12:16]
    counts = {}
    for a, oa, b, ob in node:
        for e, o in ((a, oa), (b, ob)):
            counts[(e, o)] = counts.get((e, o), 0) + 1
    assert len(counts) == 5 * 7 and set(counts.values()) == {28}

    class Big(type(POOL)):  # a constrained space too large to enumerate, with no decision blocks
        max_enumerable = 10

    with pytest.raises(ValueError, match="fair: space 'pooling' is neither a product"):
        get("fair", Big("resnet20"))


def _fair_trainer(digits, space="nb201", steps=10, **options):
    """Plain SGD (no momentum, no weight decay, constant lr) so an update is -lr x the gradient."""
    return Trainer(space=space, dataset="digits", data=digits, steps=steps, batch_size=8, val_batch_size=8,
                   rank_at_end=False, augment=False, method="fair", method_options=options, momentum=0.0,
                   weight_decay=0.0, nesterov=False, schedule="constant", lr=0.05)


def test_fairnas_sums_the_gradients_of_the_m_paths_of_a_window_into_one_update(digits):
    """Issue 22 item 6, FairNAS Alg. 1: m models on one minibatch, gradients accumulated, one update."""
    torch.manual_seed(0)
    tr = _fair_trainer(digits)
    s = tr.sampler
    assert s.update == "sum" and s.paths_per_update == 5  # NB-201: 5 operations on every edge
    ref = copy.deepcopy(tr.net)  # the weights before the update, for the independent gradients
    theta0 = {n: p.detach().clone() for n, p in tr.net.named_parameters()}
    batches = []
    draw = tr._next_batch

    def recording(split):
        out = draw(split)
        if split == "train":
            batches.append(out)
        return out

    tr._next_batch = recording
    archs = []
    for j in range(5):
        archs.append(tr.space.parse(tr.step()["arch"]))
        moved = any(not torch.equal(p, theta0[n]) for n, p in tr.net.named_parameters())
        assert moved == (j == 4)  # no optimizer step before the window's last path
    assert len(batches) == 1  # the five paths share one training minibatch
    x, y = batches[0]
    # every edge's five operations, each on exactly one path of the update
    genes = np.array([a.genes for a in archs])
    assert all(sorted(genes[:, e]) == [0, 1, 2, 3, 4] for e in range(6))
    # the m per-path gradients, computed here on a copy of the weights
    params = dict(ref.named_parameters())
    ref.train()
    grads = []
    for a in archs:
        loss = torch.nn.functional.cross_entropy(ref(x, a), y)
        grads.append(dict(zip(params, torch.autograd.grad(loss, list(params.values()), allow_unused=True))))
    lr = tr.cfg.lr
    for n, p in tr.net.named_parameters():
        got = [g[n] for g in grads if g[n] is not None]
        want = theta0[n] - lr * sum(got) if got else theta0[n]
        torch.testing.assert_close(p.detach(), want, rtol=1e-4, atol=1e-6)
    # an operation's weights get a gradient from the one path that holds it, and from no other
    ops = [tr.space.option_label(0, g) for g in range(5)]
    checked = 0
    for n in params:
        if ".edges." not in n:
            continue
        edge, op = n.split(".edges.")[1].split(".")[:2]
        users = [i for i, g in enumerate(grads) if g[n] is not None]
        holder = [i for i, a in enumerate(archs) if a.genes[int(edge)] == ops.index(op)]
        assert len(holder) == 1 and set(users) <= set(holder)
        checked += bool(users)
    assert checked > 100  # most operation weights did get their one gradient (a few sit behind 'none' edges)
    # the per-path update (one step per path) is another trajectory
    torch.manual_seed(0)
    per = _fair_trainer(digits, update="per-path")
    assert per.sampler.paths_per_update == 1
    [per.step() for _ in range(5)]
    assert any(not torch.equal(p, q) for p, q in zip(per.net.parameters(), tr.net.parameters()))


def test_fairnas_update_resumes_mid_window_and_keeps_the_schedule(digits):
    torch.manual_seed(0)
    tr = Trainer(space="nbmacro", dataset="digits", data=digits, steps=8, batch_size=8, val_batch_size=8,
                 rank_at_end=False, augment=False, method="fair")
    assert tr.sampler.update == "sum" and tr.sampler.paths_per_update == 3  # NB-Macro: 3 options per layer
    [tr.step() for _ in range(4)]  # one update, then one path of the next
    assert tr.scheduler.last_epoch == 3 and tr._accumulated == 1
    state = copy.deepcopy(tr.state_dict())
    rest = [tr.step() for _ in range(4)]  # the last step ends a short window: 8 = 3 + 3 + 2
    assert tr.scheduler.last_epoch == 8 and tr._accumulated == 0
    again = Trainer(space="nbmacro", dataset="digits", data=digits, steps=8, batch_size=8, val_batch_size=8,
                    rank_at_end=False, augment=False, method="fair", seed=1)
    again.load_state_dict(state)
    resumed = [again.step() for _ in range(4)]
    assert [m["arch"] for m in resumed] == [m["arch"] for m in rest]
    for p, q in zip(again.net.parameters(), tr.net.parameters()):
        torch.testing.assert_close(p, q)


def test_fair_update_rule_where_fairnas_does_not_define_m():
    pool = get("fair", POOL)
    assert pool.update == "per-path" and pool.paths_per_update == 1  # one block: the whole layout
    assert get("fair", POOL, update="sum").paths_per_update == 36  # every layout once per update
    assert get("fair", POOL, update="sum", budget="flops:[26M,27M]").paths_per_update == 2
    darts = spaces.get("darts")
    assert get("fair", darts).update == "per-path"
    with pytest.raises(ValueError, match="update: 'sum' .* choice blocks differ in length \\(49 to 490"):
        get("fair", darts, update="sum")
    with pytest.raises(ValueError, match="update: expected one of"):
        get("fair", POOL, update="mean")
    # the pooling docstring's numbers: each block pools in 8 of the 36 layouts of a window
    genes = np.array([a.genes for a in ARCHS])
    assert list(genes.sum(0)) == [8] * 9 and genes.sum() == 72 and (1 - genes).sum() == 252


# --------------------------------------------------------------------------- 8. final choice of the trees
def _trained_tree(steps=400, seed=0):
    from nasbench_lab import benchmarks

    bench = benchmarks.get("pooling", "cifar10")
    s = get("mcts", POOL, seed=seed, total_steps=steps, warmup=0.0, uct_warmup=0.1, t_start=0.02, t_end=0.02)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        a = s.sample()
        s.observe(a, bench.query(a) / 100 + 0.01 * rng.normal())
    return s


def test_tree_select_k_samples_architectures_with_lambda_zero():
    """Defect 8: select(k > 1) took the k most probable leaves instead of sampling with lambda = 0."""
    s = _trained_tree()
    draws = s.final_samples(4000)
    logp = s.tree.leaf_log_probabilities(s.temperature, 0.0)  # eq 3.2 with lambda = 0, visited only
    freq = {g: draws.count(g) / len(draws) for g in set(draws)}
    assert set(freq) <= set(logp)
    for g, lp in logp.items():
        assert freq.get(g, 0.0) == pytest.approx(math.exp(lp), abs=0.03)

    class Judge:  # a trainer stand-in: validation accuracy = the layout's first count
        def evaluate(self, a):
            return float(POOL.layout(a)[0])

    picked = s.select(Judge(), k=3)
    assert len({str(a) for a in picked}) == 3 and all(a.genes in logp for a in picked) and picked.note is None
    assert [POOL.layout(a)[0] for a in picked] == sorted((POOL.layout(a)[0] for a in picked), reverse=True)
    greedy = s.select()[0]  # k = 1: the most probable path (App. I §1.1)
    assert len(s.select()) == 1 and greedy.genes in logp


def test_distinct_draws_is_sampling_until_k_differ():
    """select(k)'s law: drawing with replacement until k differ = Gumbel-top-k, checked by frequency."""
    from nasbench_lab.training.samplers.common import distinct_draws

    p = np.array([0.5, 0.3, 0.15, 0.05])
    rng = np.random.default_rng(0)
    n = 20000
    draws = [tuple(distinct_draws(np.log(p), 2, rng)) for _ in range(n)]
    first = np.bincount([d[0] for d in draws], minlength=4) / n
    np.testing.assert_allclose(first, p, atol=0.012)
    # the second index, given the first: p_j / (1 - p_i)
    for i, j in ((0, 1), (1, 0), (2, 3)):
        assert draws.count((i, j)) / n == pytest.approx(p[i] * p[j] / (1 - p[i]), abs=0.01)
    # exp(-800) underflows to 0: the order still follows the log-probabilities
    assert list(distinct_draws(np.array([-900.0, 0.0, -800.0, -1000.0]), 3, rng)) == [1, 2, 0]
    assert len(distinct_draws(np.zeros(2), 5, rng)) == 2


def _peaked_tree(steps=300):
    """Noiseless rewards, 0.9 at [4,3,3] and 0.1 less per gene away from it: at T = t_end = 0.0025
    the lambda = 0 policy puts all but ~1e-28 of its mass on [4,3,3]."""
    best = P("[4,3,3]")
    s = get("mcts", POOL, seed=0, total_steps=steps, warmup=0.0, uct_warmup=0.2)
    for _ in range(steps):
        a = s.sample()
        s.observe(a, 0.9 - 0.1 * sum(x != y for x, y in zip(a.genes, best.genes)))
    return s


def test_select_k_from_a_nearly_deterministic_tree_gives_k_distinct_architectures():
    """Issue 22 item 4: at the final temperature repeated lambda = 0 draws find one leaf only."""
    s = _peaked_tree()
    assert s.temperature == pytest.approx(0.0025)
    logp = s.tree.leaf_log_probabilities(s.temperature, 0.0)
    ranked = sorted(logp, key=lambda g: -logp[g])
    assert logp[ranked[0]] > -1e-12 and logp[ranked[1]] < -60  # the runner-up: p < 1e-26
    assert len(set(s.final_samples(600, distinct=3))) == 1  # what select(k=3) returned before
    picked = s.select(None, 3)
    assert [a.genes for a in picked] == ranked[:3] and picked.note is None and picked.asked == 3
    assert str(picked[0]) == "[4,3,3]"

    class Judge:  # validation accuracy: prefers the third
        def evaluate(self, a):
            return 1.0 if a.genes == ranked[2] else 0.5

    assert [a.genes for a in s.select(Judge(), 3)][0] == ranked[2]
    with pytest.raises(ValueError, match="k: expected a positive"):
        s.select(None, 0)


def test_select_says_why_fewer_than_k_exist():
    # a tree that has seen two architectures: lambda = 0 does not explore the other 34
    s = get("mcts", POOL, seed=0, total_steps=100, warmup=0.0, uct_warmup=0.0)
    seen = [s.sample() for _ in range(2)]
    for a in seen:
        s.observe(a, 0.5)
    picked = s.select(None, 3)
    assert {str(a) for a in picked} == {str(a) for a in seen} and len(picked) == 2
    assert "visited only 2 architectures" in picked.note
    # a budget holding two layouts (26.657 MFLOPs each): only two exist
    b = get("mcts", POOL, seed=0, total_steps=20, warmup=0.0, uct_warmup=0.0, budget="flops:[26M,27M]")
    for _ in range(20):
        b.observe(b.sample(), 0.5)
    picked = b.select(None, 3)
    assert len(picked) == 2 and "only 2 architectures exist inside the budget" in picked.note
    assert "no statistics yet" in get("mcts", POOL).select(None, 3).note
    mix = get("mixture", POOL, models=2, total_steps=10)
    assert len(mix.select(None, 40)) == 36 and "only 36 configurations" in mix.select(None, 40).note
    assert mix.select(None, 3).note is None


def test_compare_includes_independent_and_mcts_reg():
    """Defect 8: compare's method list left out two of the thesis' samplers."""
    assert {"independent", "mcts-reg"} <= set(cmp.THESIS_METHODS) and "enas" in cmp.METHODS
    import argparse

    parser = argparse.ArgumentParser()
    cmp.add_arguments(parser)
    assert parser.parse_args([]).methods == list(cmp.METHODS)


# --------------------------------------------------------------------------- checkpoints
def _legacy(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_old_pooling_checkpoints_convert_or_fail_clearly():
    """Layouts stored as genes by the per-resolution version: converted where they name
    architectures, refused with a clear error where statistics were per resolution."""
    fair = get("fair", POOL, seed=0)
    old = {**fair.state_dict(), "window": [[4, 3, 3], [7, 1, 2]]}
    del old["queues"]
    fair.load_state_dict(_legacy(old))
    assert [str(fair.sample()) for _ in range(2)] == ["[4,3,3]", "[7,1,2]"]
    learned = get("mcts-learned", POOL, total_steps=10)
    learned.build_tree_from_distances(np.ones((36, 36)) - np.eye(36))
    st = learned.state_dict()
    st["tree"]["leaf"] = [None if g is None else list(POOL.layout(POOL.arch(g))) for g in st["tree"]["leaf"]]
    fresh = get("mcts-learned", POOL, total_steps=10)
    fresh.load_state_dict(_legacy(st))
    assert set(fresh.tree.leaves()) == {a.genes for a in ARCHS}
    mcts = get("mcts", POOL)
    st = mcts.state_dict()
    st["tree"]["prefix"] = [p[:3] for p in st["tree"]["prefix"]]  # a 3-level (per-resolution) tree
    with pytest.raises(ValueError, match="per-layer pooling decisions"):
        get("mcts", POOL).load_state_dict(st)
    ind = get("independent", POOL)
    st = {**ind.state_dict(), "value": [[0.0] * 8, [0.0] * 8, [0.0]]}
    with pytest.raises(ValueError, match="independent: this checkpoint"):
        get("independent", POOL).load_state_dict(st)
