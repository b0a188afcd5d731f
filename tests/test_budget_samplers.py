"""Every one-shot sampler under a budget (issue 17, thesis §3.5.4): all draws inside the band, the tree
samplers' visits only on feasible leaves and no starvation, no change when the band holds the whole
space, and clear errors. Membership is checked against the cost computed here, arch by arch."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from nasbench_lab import spaces
from nasbench_lab.spaces.budget import Budget, BudgetError
from nasbench_lab.spaces.cost import cost_model
from nasbench_lab.training import samplers
from nasbench_lab.training.trainer import Trainer, TrainerConfig

NUMERABLE_ONLY = {"boltzmann", "mixture", "mcts-learned", "mcts-iterative"}


def _opts(name: str, steps: int) -> dict:
    if name in ("uniform", "fair"):
        return {}
    o: dict = {"total_steps": steps}
    if name.startswith("mcts"):
        o.update(warmup=0.0, uct_warmup=0.0)
    if name == "density":
        o.update(warmup=0.0)
    return o


def _prepare(s, rng: np.random.Generator) -> None:
    """Build what a trainer would build at the end of the warm-up (trees, densities) from made-up numbers."""
    n = len(s.in_band_archs()) if s.space.numerable else 0
    if s.name == "mcts-learned":
        X = rng.normal(size=(n, 3))
        s.build_tree_from_distances(np.linalg.norm(X[:, None] - X[None], axis=-1))
    elif s.name == "mcts-iterative":
        s.rebuild_from_scores(rng.random(n))
    elif s.name == "density" and s.variant == "numerable":
        s.set_mean_distances(rng.random(n) + 0.5)


@cache
def _median_band(space: str, metric: str = "flops", lo: float = 0.99) -> tuple[Budget, np.ndarray]:
    sp = spaces.get(space)
    cm = cost_model(sp, metric)
    g = np.array([sp.sample(i).genes for i in range(400)]) if not sp.numerable else \
        np.array([a.genes for a in sp.enumerate()])
    c = cm.many(g)
    return Budget.band(metric, float(np.median(c)), lo, 1.0), c


def _draw(name: str, space: str, budget, n: int, seed: int = 0):
    sp = spaces.get(space)
    s = samplers.get(name, sp, seed=seed, budget=budget, **_opts(name, n))
    _prepare(s, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    out = []
    for _ in range(n):
        a = s.sample()
        out.append(a)
        s.observe(a, float(rng.random()))
    return s, out


@pytest.mark.parametrize("name", samplers.names())
def test_every_sampler_stays_inside_the_band_on_pooling_and_nb201(name):
    for space, lo, n in (("pooling", 0.8, 40 if name != "enas" else 6), ("nb201", 0.99, 20 if name != "enas" else 3)):
        budget, _ = _median_band(space, lo=lo)
        s, draws = _draw(name, space, budget, n)
        cm = cost_model(space, "flops")
        costs = np.array([cm(a.genes) for a in draws])
        assert np.all((costs >= budget.low) & (costs <= budget.high)), (space, name, costs.min(), costs.max())
        assert not s.band.covers_all and s.band.size < spaces.get(space).size


@pytest.mark.parametrize("name", [n for n in samplers.names() if n not in NUMERABLE_ONLY | {"density"}])
def test_large_space_samplers_hold_the_thesis_band_on_mobilenet(name):
    budget, _ = _median_band("mobilenet")  # [0.99, 1] x the median FLOPs: about 1e-3 of the space
    s, draws = _draw(name, "mobilenet", budget, 30 if name != "enas" else 3)
    cm = cost_model("mobilenet", "flops")
    costs = np.array([cm(a.genes) for a in draws])
    assert np.all((costs >= budget.low) & (costs <= budget.high))


def test_mcts_tree_visits_only_feasible_leaves_and_does_not_starve_under_a_narrow_band():
    budget, c = _median_band("mobilenet", lo=0.999)  # a 0.1% band
    s, draws = _draw("mcts", "mobilenet", budget, 150)
    tree, cm = s.tree, cost_model("mobilenet", "flops")
    assert tree.n[tree.root] == 150  # every draw was observed, none rejected
    visited = [tree.leaf[i] for i in range(len(tree)) if tree.is_leaf(i) and tree.n[i] > 0]
    assert sum(tree.n[i] for i in range(len(tree)) if tree.is_leaf(i)) == 150
    assert all(budget.low <= cm(g) <= budget.high for g in visited)
    # the tree's children are feasible options only: every expanded child can reach the band
    for i in range(1, len(tree)):
        if tree.children[i] and tree.n[i]:
            assert all(s.band.can_reach(tree._prefix[c]) for c in tree.children[i])
    # and the visit counts are consistent: a parent's visits are the sum of its children's
    for i in range(len(tree)):
        if tree.children[i] and tree.n[i]:
            assert tree.n[i] == sum(tree.n[c] for c in tree.children[i])


def test_mcts_numerable_tree_has_exactly_the_in_band_leaves():
    budget, c = _median_band("nb201", lo=0.97)
    s = samplers.get("mcts", spaces.get("nb201"), budget=budget)
    inside = {a.genes for a, v in zip(spaces.get("nb201").enumerate(), c) if budget.low <= v <= budget.high}
    reachable, stack = set(), [s.tree.root]
    while stack:
        i = stack.pop()
        if s.tree.is_leaf(i):
            reachable.add(s.tree.leaf[i])
        stack.extend(s.tree.children[i] or [])
    assert reachable == inside and 0 < len(inside) < 15625


@pytest.mark.parametrize("name", samplers.names())
def test_a_band_holding_the_whole_space_changes_no_draw(name):
    for space in ("pooling", "nb201") if name in ("uniform", "fair", "independent", "mcts") else ("pooling",):
        n = 20 if name != "enas" else 3
        _, c = _median_band(space)
        whole = Budget("flops", float(c.max()) * 2, 0.0)
        _, with_budget = _draw(name, space, whole, n)
        _, without = _draw(name, space, None, n)
        assert with_budget == without, (name, space)


def test_fair_is_strictly_fair_over_the_in_band_architectures_of_pooling():
    budget, c = _median_band("pooling", lo=0.5)
    archs = spaces.get("pooling").enumerate()
    inside = {a for a, v in zip(archs, c) if budget.low <= v <= budget.high}
    s, draws = _draw("fair", "pooling", budget, 2 * len(inside))
    assert set(draws[:len(inside)]) == inside and set(draws[len(inside):]) == inside  # one window each


def test_budget_errors_are_clear():
    sp = spaces.get("nb201")
    with pytest.raises(BudgetError, match="no architecture"):
        samplers.get("uniform", sp, budget="flops:[10G,20G]")
    with pytest.raises(ValueError, match="budget: cannot parse"):
        samplers.get("mcts", sp, budget="flops about 300M")
    with pytest.raises(ValueError, match="budget"):
        TrainerConfig(budget="flops<300M").validate()
    with pytest.raises(ValueError, match="budget"):
        TrainerConfig(budget=330).validate()


def test_trainer_reports_the_budget_metric_of_every_step_inside_the_band():
    budget, _ = _median_band("pooling", lo=0.8)
    t = Trainer(space="pooling", method="mcts", steps=4, batch_size=16, val_batch_size=16, rank_at_end=False,
                budget=budget.to_dict() | {"options": {}}, method_options={"warmup": 0.0, "uct_warmup": 0.0})
    steps = [t.step() for _ in range(4)]
    cm = cost_model("pooling", "flops")
    for st in steps:
        assert st["flops"] == cm(spaces.get("pooling").parse(st["arch"]).genes)
        assert budget.low <= st["flops"] <= budget.high


def test_dashboard_plots_the_budget_metric_of_each_step_against_the_band():
    import time

    from nasbench_lab.runs import Run
    from nasbench_lab.viz.budget import budget_figure
    from nasbench_lab.widgets.dashboard import RunDashboard

    budget, _ = _median_band("pooling", lo=0.8)
    job = Trainer(space="pooling", method="uniform", steps=20, batch_size=16, val_batch_size=16, rank_at_end=False,
                  budget=f"flops:[{budget.low!r},{budget.high!r}]")
    run = Run(job, store=False)
    dash = RunDashboard(run, auto_refresh=False)
    run.step(5)
    deadline = time.monotonic() + 60
    while run.progress[0] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.stop()
    dash.refresh(force_slow=True)
    steps = [e.step for e in run.events.since(0, kinds="step")]
    values = [e.data["flops"] for e in run.events.since(0, kinds="step")]
    assert len(steps) == 5 and all(budget.low <= v <= budget.high for v in values)
    live = {t.meta["role"]: t for t in dash.budget_fig.data}
    static = {t.meta["role"]: t for t in budget_figure(steps, values, dash.budget).data}
    assert list(live["inside"].y) == list(static["inside"].y) and len(live["inside"].y) == 5
    assert len(live["outside"].y) == 0
    rect = dash.budget_fig.layout.shapes[0]
    assert (rect.y0, rect.y1) == (budget.low / 1e6, budget.high / 1e6)
    dash.close()
