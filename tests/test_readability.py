"""Readability of the views (issue 11's screenshots): labels that do not collide, axes that show
the change, legends that name every line, scales not stretched by one outlier, columns that say
what they hold. Each test checks the figure's numbers, computed here independently."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from nasbench_lab import benchmarks, spaces
from nasbench_lab.search import Arena
from nasbench_lab.viz.alphas import alpha_panel, alpha_trajectories, weight_range
from nasbench_lab.viz.dag import dag_figure, wrap_arch
from nasbench_lab.viz.mcts import top_k_frequency
from nasbench_lab.viz.sampling import op_count_boxes, sampling_frequency
from nasbench_lab.viz.search import log_lower_edge, regret_figure


def _role(fig, role):
    return [t for t in fig.data if (t.meta or {}).get("role") == role]


def test_narrow_resolution_bands_take_turns_so_their_labels_never_touch():
    fig = dag_figure("pooling", "[1,1,8]")  # two one-layer bands side by side
    labels = {a.text: a.y for a in fig.layout.annotations}
    assert labels["<b>32×32</b>"] != labels["<b>16×16</b>"]  # on different lines
    wide = dag_figure("pooling", "[4,3,3]")
    assert len({a.y for a in wide.layout.annotations}) == 1  # wide bands keep one line
    pool = _role(fig, "pool")[0]
    assert pool.mode == "markers" and pool.name == "maxpool (resolution ÷2)"  # no "maxpoolmaxpool"
    assert list(pool.text) == ["maxpool", "maxpool"]  # still in the hover


def test_long_architecture_strings_wrap_and_the_darts_cell_spreads_out():
    nb201 = spaces.get("nb201").default()
    lines = wrap_arch(str(nb201), 48)
    assert "".join(lines) == str(nb201) and all(len(x) <= 48 for x in lines) and len(lines) > 1
    darts = spaces.get("darts")
    fig = dag_figure(darts, darts.default())
    assert "Genotype" not in fig.layout.title.text and "normal cell" in fig.layout.title.text
    nodes = _role(fig, "node")[0]
    pos = dict(zip(nodes.text, zip(nodes.x, nodes.y)))
    assert pos["c[k-2]"][0] == pos["c[k-1]"][0] and pos["c[k-2]"][1] != pos["c[k-1]"][1]  # inputs stacked
    assert len({pos[n][1] for n in "0123"}) == 2  # intermediate nodes zigzag
    # edge labels (not the concat edges) are apart from each other
    labels = _role(fig, "label")[0]
    pts = np.column_stack([labels.x, labels.y])
    gaps = [np.hypot(*(pts[i] - pts[j])) for i in range(len(pts)) for j in range(i)]
    assert len(labels.text) == 8 and min(gaps) > 0.15
    assert fig.layout.legend.y < 0  # the legend under the drawing, never over the title


def _snapshot(steps: int = 20) -> dict:
    """A DARTS-like snapshot on NB-201: 6 edges x 5 ops, weights drifting slowly around 0.2."""
    sp = spaces.get("nb201")
    rng = np.random.default_rng(0)
    w = np.full((6, 5), 0.2)
    history = []
    for _ in range(steps):
        w = np.clip(w + rng.normal(0, 0.004, w.shape), 0.01, None)
        w = w / w.sum(1, keepdims=True)
        history.append(w.tolist())
    ops = [sp.option_label(0, g) for g in sp.level_sizes[0]]
    return {"method": "darts", "space": "nb201", "arch": str(sp.default()), "step": steps, "total_steps": 100,
            "groups": {"cell": {"edges": ["0→1", "0→2", "1→2", "0→3", "1→3", "2→3"], "ops": ops}},
            "history": {"step": list(range(1, steps + 1)), "weights": {"cell": history},
                        "skip_count": [1] * steps, "table_acc": [None] * steps}}


def test_alpha_trajectories_use_the_weights_own_range_with_the_uniform_line():
    snap = _snapshot()
    weights = np.array(snap["history"]["weights"]["cell"])
    lo, hi = weight_range(snap, [("cell", e, "") for e in range(6)])
    assert lo < weights.min() < weights.max() < hi and hi - lo < 0.2  # not 0-1: the drift shows
    for fig in (alpha_trajectories(snap), alpha_panel(snap)):
        ranges = {tuple(fig.layout[a].range) for a in fig.layout if a.startswith("yaxis") and fig.layout[a].range
                  and len(fig.layout[a].range) == 2 and fig.layout[a].range[1] <= 1}
        assert (lo, hi) in ranges
        uniform = [s for s in fig.layout.shapes if s.type == "line" and s.y0 == pytest.approx(0.2)]
        assert len(uniform) == 6  # 1/K in each edge's subplot


def test_every_method_of_the_top_k_plot_is_named_and_identical_curves_share_a_label():
    truth = {"a": 1.0, "b": 0.9, "c": 0.1, "d": 0.0}
    w = [{"start": 0, "end": 10, "counts": {"a": 1, "c": 9}}, {"start": 10, "end": 20, "counts": {"a": 5, "d": 5}}]
    fig = top_k_frequency({"mcts": w, "mcts-reg": w, "uniform": []}, truth, k=2)
    assert len(fig.data) == 1 and fig.data[0].name == "mcts = mcts-reg" and fig.data[0].showlegend
    assert list(fig.data[0].y) == pytest.approx([0.1, 0.5])
    notes = [a.text for a in fig.layout.annotations]
    assert "mcts = mcts-reg" in notes and any("no sampling windows recorded: uniform" in n for n in notes)


def test_one_outlier_does_not_stretch_the_colour_scale():
    sp = spaces.get("pooling")
    bm = benchmarks.get("pooling", "digits")
    counts = {str(a): 10 for a in sp.enumerate()}
    fig = sampling_frequency(counts, sp, benchmark=bm)
    acc = np.sort(bm.table["acc"].to_numpy(float))
    q1, q3 = np.percentile(acc, [25, 75])
    inside = acc[(acc >= q1 - 3 * (q3 - q1)) & (acc <= q3 + 3 * (q3 - q1))]
    assert len(inside) < len(acc)  # the digits table has such an outlier
    scale = next(t for t in fig.data if t.meta["role"] == "colorbar").marker  # the colour bar's trace
    assert inside.min() > scale.cmin > acc.min() and scale.cmax >= inside.max()
    assert "outlier" in scale.colorbar.title.text
    bars = fig.data[0].marker.color  # best left: the outlier (worst) takes the scale's end
    assert bars[-1] == "rgb(68, 1, 84)" and bars[-2] != bars[-1] and len(set(bars)) == len(np.unique(acc.round(6)))


def test_log_axis_bands_stay_symmetric_instead_of_falling_to_the_floor():
    mean, hi = np.array([4.0, 1.0, 0.0]), np.array([8.0, 5.0, 0.0])
    assert log_lower_edge(mean, hi).tolist() == [2.0, 0.2, 0.0]  # mean²/hi; 0 stays 0
    curves = pd.DataFrame({"strategy": ["rea"] * 3, "x": [1, 2, 3], "mean": mean, "lo": mean - (hi - mean),
                           "hi": hi})
    fig = regret_figure(curves)
    band = _role(fig, "band")[0]
    assert list(band.y) == pytest.approx([8.0, 5.0, 1e-3, 1e-3, 0.2, 2.0])  # hi, then the lower edge back
    assert fig.layout.legend.y < 0  # under the plot: the title stays clear
    linear = regret_figure(curves, log_y=False)
    assert list(_role(linear, "band")[0].y) == pytest.approx([8.0, 5.0, 0.0, 0.0, -3.0, 0.0])


def test_op_count_boxes_share_one_accuracy_axis_with_its_unit():
    bm = benchmarks.get("nb201", "cifar10")
    fig = op_count_boxes(bm)
    sp = spaces.get("nb201")
    assert [t.meta["op"] for t in fig.data] == [sp.option_label(0, g) for g in sp.level_sizes[0]]
    conv = next(t for t in fig.data if t.meta["op"] == "nor_conv_3x3")
    arch = sp.parse(bm.table.index[0])
    assert conv.x[0] == sum(sp.option_label(0, g) == "nor_conv_3x3" for g in arch.genes)
    assert conv.y[0] == pytest.approx(bm.table["acc"].iloc[0])
    assert "(%)" in fig.layout.yaxis.title.text and fig.layout.yaxis2.matches in (None, "y")
    with pytest.raises(ValueError, match="expected a Benchmark"):
        op_count_boxes(None, "nb201")


def test_the_regret_table_names_a_proxy_score_as_one():
    arena = Arena("nb201", "cifar10", ["random"], seeds=1, budget=3, evaluator="proxy",
                  evaluator_options={"proxy_name": "naswot", "data": "digits", "batch_size": 8})
    arena.run()
    table = arena.regret_table()
    res = arena.results()
    last = res[res["query"] == 3]
    assert table["best_acc_mean"].iloc[0] == pytest.approx(last["incumbent_truth"].mean())  # a true accuracy
    assert table["best_acc_mean"].iloc[0] == pytest.approx(arena.optimum - table["regret_mean"].iloc[0])
    assert table["best_naswot_score_mean"].iloc[0] == pytest.approx(last["best_so_far"].mean())  # the score seen
    plain = Arena("nb201", "cifar10", ["random"], seeds=1, budget=3)
    plain.run()
    assert not [c for c in plain.regret_table().columns if re.match(r"best_.*_(score|acc)_mean", c)]
