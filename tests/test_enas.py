"""ENAS (Pham et al. 2018): the controller's probabilities, REINFORCE by hand, learning, the view."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from nasbench_lab import benchmarks, spaces
from nasbench_lab.training.samplers import get
from nasbench_lab.viz.enas import enas_panel, policy_heatmap, policy_history
from nasbench_lab.viz.panels import PanelContext, panel_figure

POOL = spaces.get("pooling")
NB201 = spaces.get("nb201")


def test_teacher_forced_log_prob_is_the_product_of_the_sampled_decisions():
    s = get("enas", POOL, seed=1)
    genes, probs, masks = s.controller.walk(s._valid, lambda p: int(np.flatnonzero(p > 0)[-1]))
    # the walk takes the last valid option every time: its log-probability, decision by decision
    want = sum(math.log(p[s.controller.index[level][g]]) for level, (p, g) in enumerate(zip(probs, genes)))
    logp, ent = s.controller.log_prob([genes], [masks])
    assert float(logp[0].detach()) == pytest.approx(want, rel=1e-5)
    want_h = sum(-sum(q * math.log(q) for q in p if q > 0) for p in probs)
    assert float(ent[0].detach()) == pytest.approx(want_h, rel=1e-5)
    # masked options (a third pooling, a missing one) get probability 0
    assert all(p[~m].sum() == 0 for p, m in zip(probs, masks))
    assert sum(genes) == POOL.num_poolings
    # logits = tanh_constant * tanh(z / temperature): bounded by 2.5
    h = torch.randn(1, s.controller.hidden) * 100
    assert float(s.controller.logits(h, 0).abs().max()) <= 2.5


def test_reinforce_step_by_hand():
    s = get("enas", NB201, seed=0, lr=0.01, baseline_decay=0.9, entropy_weight=0.0)
    a = tuple(s._draw(np.random.default_rng(0))[0])
    b = tuple(s._draw(np.random.default_rng(1))[0])
    ref = copy.deepcopy(s.controller)
    s.reinforce([(a, 0.5), (b, 0.7)])
    # baseline: the first reward, then 0.9 * 0.5 + 0.1 * 0.7; advantages 0 and 0.18
    assert s.baseline == pytest.approx(0.52)
    logp, _ = ref.log_prob([b], [s.masks(b)])
    loss = -(0.18 * logp[0]) / 2  # the mean over the two samples; a's advantage is 0
    grads = torch.autograd.grad(loss, list(ref.parameters()), allow_unused=True)
    for (name, p_new), p_old, g in zip(s.controller.named_parameters(), ref.parameters(), grads):
        g = torch.zeros_like(p_old) if g is None else g
        # Adam's first step: -lr * g / (|g| + eps) (bias-corrected moments are g and g^2). Where |g| is
        # near eps that ratio turns on rounding (the last bits of a 1e-9 gradient differ between CPUs),
        # so it is compared where the gradient is clear of eps; everywhere the step is at most lr.
        step = (p_new - p_old).detach()
        clear = g.abs() > 1e-6
        torch.testing.assert_close(step[clear], (-0.01 * g / (g.abs() + 1e-8))[clear], rtol=1e-4, atol=1e-6, msg=name)
        assert bool((step.abs() <= 0.01 * (1 + 1e-4)).all()), name
        assert int(clear.sum()) > 0 or not bool((g != 0).any()), name


def test_entropy_bonus_is_added_to_the_reward():
    s = get("enas", NB201, seed=0, entropy_weight=0.5)
    a = tuple(s._draw(np.random.default_rng(0))[0])
    _, ent = s.controller.log_prob([a], [s.masks(a)])
    s.reinforce([(a, 0.25)])
    assert s.baseline == pytest.approx(0.25 + 0.5 * float(ent[0]), rel=1e-6)


def test_controller_learns_the_best_cells_from_the_benchmark_reward():
    bench = benchmarks.get("nb201", "cifar10")
    s = get("enas", NB201, seed=0, lr=0.05)

    def policy_mean():  # expected benchmark accuracy under the policy, 200 draws
        rng = np.random.default_rng(5)
        return np.mean([bench.query(NB201.arch(s._draw(rng)[0])) for _ in range(200)])

    start = policy_mean()
    for _ in range(6):
        s.train_controller(lambda a: bench.query(a) / 100)
    assert policy_mean() > max(start + 3.0, 91.0)  # uniform: ~85 on these draws; the best cell: 94.37
    assert bench.query(s.mode()[0]) > 93.0
    assert s.updates == 30 and s.history[-1]["p_mode"] > s.history[0]["p_mode"]


def test_alternating_phases_and_online_mode_follow_the_schedule():
    class Trainer:  # the Trainer's side of the contract: step counts and a reward
        step_count, total_steps = 0, 100

        def __init__(self):
            self.calls = 0

        def reward(self, arch):
            self.calls += 1
            return 0.5

    s = get("enas", POOL, seed=0, controller_every=5, controller_steps=2, aggregate=3)
    tr = Trainer()
    for step in range(12):
        tr.step_count = step
        s.before_step(tr)
        s.observe(s.sample(), 0.4)
    assert tr.calls == 2 * 2 * 3 and s.updates == 4  # phases at steps 5 and 10
    online = get("enas", POOL, seed=0, controller_every=0, aggregate=4)
    for _ in range(10):
        online.observe(online.sample(), 0.4)
    assert online.updates == 2 and len(online.buffer) == 2


def test_select_scores_policy_samples_on_one_validation_batch():
    class Trainer:
        class cfg:
            val_batch_size = 4

        def fixed_val_batch(self, n):
            return "batch"

        def reward(self, arch, batch=None):
            assert batch == "batch"
            return POOL.layout(arch)[0] / 10

    s = get("enas", POOL, seed=0, select_samples=12)
    picked = s.select(Trainer(), k=3)
    assert len(picked) == 3 and [POOL.layout(a)[0] for a in picked] == sorted(
        (POOL.layout(a)[0] for a in picked), reverse=True)
    assert s.select() == [s.mode()[0]]


@pytest.mark.parametrize("bad,match", [({"aggregate": 0}, "aggregate"), ({"controller_every": -1}, "controller_every"),
                                       ({"lr": 0}, "lr"), ({"baseline_decay": 1.0}, "baseline_decay"),
                                       ({"entropy_weight": -1}, "entropy_weight")])
def test_bad_options(bad, match):
    with pytest.raises(ValueError, match=match):
        get("enas", POOL, **bad)


def test_panel_draws_the_snapshot():
    bench = benchmarks.get("nb201", "cifar10")
    s = get("enas", NB201, seed=0, controller_every=0, aggregate=4)
    rng = np.random.default_rng(0)
    for _ in range(24):
        a = s.sample()
        s.observe(a, bench.query(a) / 100 + 0.01 * rng.normal())
    snap = s.snapshot()
    json.loads(json.dumps(snap))
    fig = panel_figure(snap, PanelContext(NB201, bench, "enas"))
    heat = [t for t in fig.data if (t.meta or {}).get("role") == "policy"][0]
    np.testing.assert_allclose(np.asarray(heat.z, float), np.asarray(snap["probs"]))
    assert list(heat.x) == snap["options"][0] and list(heat.y) == snap["levels"]
    truth = [t for t in fig.data if (t.meta or {}).get("role") == "truth"][0]
    assert list(truth.y) == pytest.approx([bench.query(h["mode"]) for h in snap["history"]])
    base = [t for t in fig.data if (t.meta or {}).get("role") == "baseline"][0]
    assert list(base.y) == pytest.approx([h["baseline"] for h in snap["history"]])
    assert f"{bench.query(snap['mode']):.2f} %" in fig.layout.title.text
    # pooling: per-block pool / identity, the same two options everywhere
    p = get("enas", POOL).snapshot()
    f2 = policy_heatmap(p["levels"], p["options"], p["probs"], p["mode"])
    assert list(f2.data[0].x) == ["identity", "pool"] and len(f2.data[0].y) == 9
    # per-decision probabilities over training: the option each decision prefers at the end
    dec = [t for t in fig.data if (t.meta or {}).get("role") == "decision"]
    assert len(dec) == 6
    for t in dec:
        level = t.meta["level"]
        j = int(np.argmax(snap["history"][-1]["probs"][level]))
        assert list(t.y) == pytest.approx([h["probs"][level][j] for h in snap["history"]])
        assert t.name == f"{snap['levels'][level]}: {snap['options'][level][j]}"
    hist = policy_history(snap["history"], 6, bench, level_names=snap["levels"], options=snap["options"])
    assert len(hist.data) == 2 + 2 + 6 + 1
    with pytest.raises(ValueError, match="probs"):
        policy_heatmap(["a"], [["x", "y"]], [[1.0]])
    with pytest.raises(ValueError, match="history"):
        policy_history([{"step": 1}])
    assert enas_panel({"levels": []}).layout.annotations
