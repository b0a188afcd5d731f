"""The samplers' live views draw what the snapshots say (numbers checked in the figures)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasbench_lab import benchmarks, spaces
from nasbench_lab.training import representations as reps
from nasbench_lab.training.samplers import get
from nasbench_lab.viz.density import (
    density_correlation,
    density_projection,
    density_vs_accuracy,
    distribution_figure,
)
from nasbench_lab.viz.mcts import dendrogram, mcts_panel, top_k_frequency, tree_figure, tree_links, truth_map
from nasbench_lab.viz.mixture import marginal_history, mixture_heatmap, model_accuracy
from nasbench_lab.viz.panels import PanelContext, panel_figure
from nasbench_lab.viz.ranking import kendall_panel

POOL = spaces.get("pooling")
ARCHS = POOL.enumerate()
BENCH = benchmarks.get("pooling", dataset="cifar10")
CTX = PanelContext(POOL, BENCH, "test")


def _run(name, steps=300, seed=0, **options):
    s = get(name, POOL, seed=seed, total_steps=steps, **options)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        if name == "mcts-learned" and s.tree is None and s.progress.frac() >= s.warmup:
            X = reps.encoding_vectors(POOL, ARCHS, gamma=0.5)
            s.build_tree_from_distances(reps.pairwise(X, X, "hamming"))
        if name == "density" and s.mean_dist is None and s.progress.frac() >= s.warmup:
            X = reps.encoding_vectors(POOL, ARCHS, gamma=0.5)
            s.set_mean_distances(reps.mean_distances(X, "hamming"), X[:, :2])
        a = s.sample()
        s.observe(a, BENCH.query(a) / 100 + 0.02 * rng.normal())
    return s


@pytest.mark.parametrize("name", ["boltzmann", "independent", "mcts", "mcts-reg", "mcts-learned", "mixture", "density",
                                  "enas"])
def test_every_snapshot_is_plain_data_and_draws_its_panel(name):
    snap = _run(name, **({"controller_every": 0} if name == "enas" else {})).snapshot()
    json.loads(json.dumps(snap))  # plain data, storable as is
    fig = panel_figure(snap, CTX)
    assert fig is not None and len(fig.data) >= 1
    assert snap["panel"].split(":")[0] in ("nasbench_lab.viz.mcts", "nasbench_lab.viz.density",
                                            "nasbench_lab.viz.mixture", "nasbench_lab.viz.enas")


def test_icicle_sizes_are_visit_counts_and_colours_smoothed_rewards():
    s = _run("mcts")
    nodes = s.snapshot()["nodes"]
    fig = tree_figure(nodes)
    tr = fig.data[0]
    assert tr.type == "icicle" and tr.branchvalues == "total"
    assert tr.values[0] == s.tree.n[0] == 180  # 300 steps minus the 40% warm-up
    by_id = {r["id"]: r for r in nodes}
    assert list(tr.marker.colors)[1] == pytest.approx(by_id[int(tr.ids[1])]["C"])
    # each parent's visits are the sum of its children's (every visit walks root -> leaf)
    kids: dict[int, int] = {}
    for r in nodes:
        if r["parent"] >= 0:
            kids[r["parent"]] = kids.get(r["parent"], 0) + r["n"]
    assert all(by_id[p]["n"] == n for p, n in kids.items())
    assert tree_figure(nodes, "sunburst").data[0].type == "sunburst"


def test_node_link_hover_shows_uct_values():
    s = _run("mcts")
    nodes = s.snapshot()["nodes"]
    fig = tree_links(nodes, max_depth=1)
    pts = [t for t in fig.data if t.meta["role"] == "nodes"][0]
    assert len(pts.x) == 1 + 2  # the root and the two choices of block 1 (pool, identity)
    row = [r for r in nodes if r["depth"] == 1 and r["n"] > 0][0]
    want = row["C"] + 0.5 * np.sqrt(np.log(nodes[0]["n"]) / row["n"])
    assert row["uct"] == pytest.approx(want)
    assert any(f"UCT R = {want:.4f}" in h for h in pts.hovertext)


def test_dendrogram_labels_leaves_with_ground_truth():
    s = _run("mcts-learned")
    snap = s.snapshot()
    truth = truth_map(BENCH, [str(a) for a in ARCHS])
    fig = dendrogram(snap["nodes"], truth)
    leaves = [t for t in fig.data if t.meta["role"] == "leaves"][0]
    assert len(leaves.x) == 36
    ticks = list(fig.layout.xaxis.ticktext)
    assert "[7,1,2] (92.0)" in ticks  # the best pooling layout, with its CIFAR-10 accuracy
    assert sorted(leaves.marker.color) == pytest.approx(sorted(truth.values()))
    panel = mcts_panel(snap, CTX)
    assert any(t.meta and t.meta.get("role") == "leaves" for t in panel.data)


def test_top_k_frequency_by_hand():
    truth = {"a": 1.0, "b": 0.9, "c": 0.1, "d": 0.0}
    windows = [{"start": 0, "end": 10, "counts": {"a": 1, "c": 9}},
               {"start": 10, "end": 20, "counts": {"a": 5, "b": 3, "d": 2}}]
    fig = top_k_frequency({"x": windows}, truth, k=2)
    assert list(fig.data[0].y) == pytest.approx([0.1, 0.8])
    assert list(fig.data[0].x) == [10, 20]


def test_density_views():
    s = _run("density", temperature=1.0)
    snap = s.snapshot()
    fig = density_projection(snap["archs"], snap["density"], coords=snap["coords"], counts=snap["counts"])
    assert list(fig.data[0].marker.color) == pytest.approx(snap["density"])
    assert max(fig.data[0].marker.size) == pytest.approx(30.0)  # the most sampled architecture
    X = reps.encoding_vectors(POOL, ARCHS, gamma=0.5)
    assert len(density_projection(snap["archs"], snap["density"], representations=X).data[0].x) == 36
    with pytest.raises(ValueError, match="coords"):
        density_projection(snap["archs"], snap["density"])
    truth = truth_map(BENCH, snap["archs"])
    fig = density_vs_accuracy(snap["archs"], snap["density"], {"ground truth": truth, "debiased": snap["counts"]})
    order = np.argsort(snap["density"], kind="stable")
    ys = np.asarray(fig.data[0].y)
    t = np.array([truth[snap["archs"][i]] for i in order])
    np.testing.assert_allclose(ys, (t - t.mean()) / t.std())
    fig = density_correlation(snap["density"], 2 * np.asarray(snap["density"]))
    assert "Pearson 1.00" in fig.layout.title.text


def test_distribution_figure_orders_by_truth():
    s = _run("boltzmann")
    snap = s.snapshot()
    truth = truth_map(BENCH, snap["archs"])
    fig = distribution_figure(snap["archs"], snap["p"], snap["counts"], truth)
    assert fig.data[0].x[0] == "[7,1,2]"
    assert sum(fig.data[1].y) == pytest.approx(1.0)


def test_mixture_views():
    s = _run("mixture", models=3)
    snap = s.snapshot()
    fig = mixture_heatmap(snap["archs"], snap["p"])
    Z = np.asarray(fig.data[0].z, float)
    np.testing.assert_allclose(Z.sum(1), 1.0)  # p(m|c) rows
    joint = np.asarray(mixture_heatmap(snap["archs"], snap["p"], conditional=False).data[0].z, float)
    np.testing.assert_allclose(joint.sum(0), 1 / 3, atol=0.01)  # balanced model marginals
    fig = model_accuracy(snap["archs"], snap["value"], snap["p"], snap["seen"])
    assert len(fig.data) == 3
    fig = marginal_history(snap["history"])
    kl_after = [t for t in fig.data if t.meta["role"] == "kl_after"][0]
    assert max(kl_after.y) < 1e-4
    with pytest.raises(ValueError, match="rows"):
        mixture_heatmap(snap["archs"][:5], snap["p"])


def test_kendall_panel_from_periodic_rankings():
    snap = {"rankings": [{"step": 10, "kendall_tau": 0.1, "kendall_tau_top10": -0.2},
                         {"step": 20, "kendall_tau": 0.3, "kendall_tau_top10": 0.4}]}
    fig = kendall_panel(snap)
    assert list(fig.data[0].y) == [0.1, 0.3] and list(fig.data[1].y) == [-0.2, 0.4]
