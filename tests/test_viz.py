"""Pure figure builders: real spaces, real benchmark tables, the numbers in the traces."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nasbench_lab import benchmarks, spaces
from nasbench_lab.viz.curves import ema_extend, smooth, training_curves
from nasbench_lab.viz.dag import dag_figure
from nasbench_lab.viz.ranking import ranking_scatter, tau_curve
from nasbench_lab.viz.sampling import accuracy_distribution, choice_counts, sampling_frequency
from nasbench_lab.viz.style import OP_COLORS, op_color

NB201_ARCH = "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"


def _role(fig, role):
    return [t for t in fig.data if (t.meta or {}).get("role") == role]


# ----------------------------------------------------------------------------- DAG
def test_nb201_cell_has_one_coloured_edge_per_op_and_faint_dashed_none_edges():
    fig = dag_figure("nb201", NB201_ARCH)
    edges = _role(fig, "edge")
    assert len(edges) == 6
    assert sorted((int(e.meta["source"]), int(e.meta["target"])) for e in edges) == \
        [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    by_pair = {(int(e.meta["source"]), int(e.meta["target"])): e for e in edges}
    # the string lists edges into node 1, 2, 3: |op~src| ...
    assert by_pair[(0, 1)].meta["op"] == "none"
    assert by_pair[(0, 2)].meta["op"] == "skip_connect"
    assert by_pair[(1, 2)].meta["op"] == "avg_pool_3x3"
    assert by_pair[(2, 3)].meta["op"] == "nor_conv_3x3"
    for e in edges:
        assert e.line.color == OP_COLORS[e.meta["op"]]
        if e.meta["op"] == "none":
            assert e.line.dash == "dash" and e.opacity < 0.5
        else:
            assert e.line.dash == "solid" and e.opacity == 1.0
    # one legend entry per op, even with two "none" edges
    legend = [e.name for e in edges if e.showlegend]
    assert sorted(legend) == sorted({"none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3"})
    nodes = _role(fig, "node")[0]
    assert list(nodes.x) == [0.0, 1.0, 2.0, 3.0]  # left to right in topological order
    labels = _role(fig, "label")[0]
    assert list(labels.text).count("none") == 2 and "conv 3x3" in labels.text
    # the string is in the title, wrapped at its '+' separators so it never runs off the figure
    lines = [re.sub(r"<[^>]+>", "", x) for x in fig.layout.title.text.split("<br>")[1:]]
    assert "".join(lines) == NB201_ARCH and len(lines) > 1 and all(len(x) <= 48 for x in lines)


def test_pooling_chain_has_resolution_bands_and_marks_the_two_poolings():
    sp = spaces.get("pooling")
    for arch, pools in (("[4,3,3]", [3.5, 6.5]), ("[1,1,8]", [0.5, 1.5]), ("[2,5,3]", [1.5, 6.5])):
        fig = dag_figure(sp, arch)
        layers = _role(fig, "layer")
        assert sum(len(t.x) for t in layers) == 10  # stem + 9 blocks
        assert sorted(_role(fig, "pool")[0].x) == pools
        assert list(_role(fig, "pool")[0].text) == ["maxpool", "maxpool"]
        bands = [s for s in fig.layout.shapes if s.type == "rect"]
        assert len(bands) == 3
        counts = [int(round(s.x1 - s.x0 + 0.1)) for s in bands]  # width = layers in the band
        assert counts == [int(c) for c in arch.strip("[]").split(",")]
        assert [a.text for a in fig.layout.annotations] == ["<b>32×32</b>", "<b>16×16</b>", "<b>8×8</b>"]
        # channels above the nodes: fixed by layer index, not by resolution
        text = [c for t in layers for c in t.text]
        assert sorted(text, key=int) == ["16"] * 4 + ["32"] * 3 + ["64"] * 3


def test_nbmacro_chain_marks_strided_layers_and_shares_colours_with_nb201():
    sp = spaces.get("nbmacro")
    arch = sp.parse("02120101")
    g = sp.graph(arch)
    fig = dag_figure(sp, arch)
    assert sum(len(t.x) for t in _role(fig, "layer")) == g.number_of_nodes() == 10
    drops = sum(1 for u, v in g.edges if g.nodes[u]["resolution"] != g.nodes[v]["resolution"])
    assert drops == 3
    assert len(_role(fig, "pool")[0].x) == drops
    assert list(_role(fig, "pool")[0].text) == ["stride 2"] * drops
    colours = {t.meta["op"]: t.marker.color for t in _role(fig, "layer")}
    assert colours["Identity"] == op_color("skip_connect")  # an identity is a skip, in every view
    assert colours["MB6_K5"] == OP_COLORS["MB6_K5"]
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 4  # 32, 16, 8, 4


def test_op_colours_are_fixed_and_unknown_ops_get_a_stable_colour():
    assert op_color("nor_conv_3x3") == OP_COLORS["nor_conv_3x3"]
    assert op_color("brand_new_op") == op_color("brand_new_op")
    assert op_color("brand_new_op").startswith("#")
    with pytest.raises(ValueError, match="pooling: cannot parse"):
        dag_figure("pooling", "[4,3")


# ----------------------------------------------------------------------------- curves
def test_training_curves_raw_and_smoothed_match_pandas_ewm():
    rng = np.random.default_rng(0)
    loss = list(2.3 * np.exp(-np.arange(200) / 60) + rng.normal(0, 0.1, 200))
    reward = list(np.clip(np.linspace(0.1, 0.8, 200) + rng.normal(0, 0.05, 200), 0, 1))
    fig = training_curves({"step": list(range(1, 201)), "loss": loss, "reward": reward}, smoothing=0.9)
    raw = {t.meta["metric"]: t for t in _role(fig, "raw")}
    sm = {t.meta["metric"]: t for t in _role(fig, "smooth")}
    assert set(raw) == set(sm) == {"loss", "reward"}
    np.testing.assert_allclose(raw["loss"].y, loss)
    expected = pd.Series(loss).ewm(alpha=0.1, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(sm["loss"].y, expected, rtol=1e-12)
    assert raw["loss"].opacity < 0.5 and sm["loss"].line.width > raw["loss"].line.width
    assert raw["loss"].line.color == sm["loss"].line.color != sm["reward"].line.color
    # smoothing removes most of the noise: the residual std shrinks
    assert np.std(np.diff(sm["loss"].y)) < 0.3 * np.std(np.diff(loss))
    # a live view extending chunk by chunk draws exactly the same line
    chunks, prev = [], None
    for lo in range(0, 200, 37):
        part = ema_extend(prev, loss[lo:lo + 37], 0.9)
        chunks += part
        prev = part[-1]
    np.testing.assert_allclose(chunks, smooth(loss, 0.9))


def test_training_curves_from_a_store_metrics_table_and_bad_input():
    df = pd.DataFrame({"loss": [2.0, 1.5, 1.2], "reward": [0.1, 0.3, 0.4]}, index=pd.Index([5, 10, 15], name="step"))
    fig = training_curves(df)
    assert list(_role(fig, "raw")[0].x) == [5, 10, 15]
    empty = training_curves(None)
    assert [len(t.x) for t in empty.data] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="smoothing"):
        training_curves(df, smoothing=1.0)
    with pytest.raises(ValueError, match="same length"):
        training_curves({"step": [1, 2], "loss": [1.0]})


# ----------------------------------------------------------------------------- ranking
def _pooling_ranking(noise: float, seed: int = 0) -> pd.DataFrame:
    bm = benchmarks.get("pooling", "cifar10")
    df = bm.frame()[["arch", "acc"]].rename(columns={"acc": "truth"})
    rng = np.random.default_rng(seed)
    df["estimate"] = df["truth"] + rng.normal(0, noise, len(df))
    return df


def test_ranking_scatter_title_carries_kendall_tau_and_highlights_the_true_top_k():
    df = _pooling_ranking(noise=1.0)
    fig = ranking_scatter(df, k=5)
    tau = stats.kendalltau(df["estimate"], df["truth"]).statistic
    assert f"Kendall τ = {tau:.3f}" in fig.layout.title.text and "n=36" in fig.layout.title.text
    top = _role(fig, "topk")[0]
    assert sorted(top.x) == sorted(df["truth"].nlargest(5))
    assert len(_role(fig, "all")[0].x) == 36 - 5
    sel = _role(fig, "selected")[0]
    assert sel.text[0] == df.loc[df["estimate"].idxmax(), "arch"]
    # a summary from rank_supernet (computed over every architecture) wins over the table
    df.attrs["summary"] = {"kendall_tau": 0.1234, "n": 36}
    assert "τ = 0.123" in ranking_scatter(df).layout.title.text


def test_ranking_scatter_without_truth_and_bad_input():
    df = pd.DataFrame({"arch": ["[4,3,3]", "[2,5,3]", "[1,1,8]"], "estimate": [60.0, 70.0, 50.0]})
    fig = ranking_scatter(df, k=1)
    assert "no ground truth" in fig.layout.title.text
    assert list(_role(fig, "topk")[0].y) == [70.0]
    with pytest.raises(ValueError, match="columns arch, estimate"):
        ranking_scatter(pd.DataFrame({"x": [1]}))
    tc = tau_curve([100, 200], [0.1, 0.3])
    assert list(tc.data[0].y) == [0.1, 0.3]


# ----------------------------------------------------------------------------- sampling
def test_sampling_frequency_bars_cover_the_whole_pooling_space_sorted_by_truth():
    sp = spaces.get("pooling")
    rng = np.random.default_rng(1)
    counts = Counter(str(sp.sample(rng)) for _ in range(50))  # 50 samples: some archs never drawn
    bm = benchmarks.get("pooling", "cifar10")
    fig = sampling_frequency(counts, sp, benchmark=bm)
    bars = _role(fig, "bars")[0]
    assert len(bars.x) == 36 and sum(bars.y) == 50
    assert 0 in bars.y
    truth = [bm.query(a) for a in bars.x]
    assert truth == sorted(truth, reverse=True)  # best architecture left
    assert list(bars.customdata) == truth
    # coloured by truth on Viridis, as CSS colours (numeric bar colours make plotly.js 3 warn per bar):
    # the best bar is the scale's top, the worst its bottom; the colour bar rides on its own trace
    assert bars.marker.color[0] == "rgb(253, 231, 37)" and bars.marker.color[-1] == "rgb(68, 1, 84)"
    assert len(set(bars.marker.color)) > 10
    scale = _role(fig, "colorbar")[0].marker
    assert scale.showscale and scale.colorscale[0][1] == "#440154" and scale.cmin < scale.cmax <= max(truth)
    assert fig.layout.shapes[0].y0 == pytest.approx(50 / 36)  # the uniform line
    unknown = _role(sampling_frequency({"[4,3,3]": 3, "[9,9,9]": 1}, benchmark=bm), "bars")[0]
    assert list(unknown.x) == ["[4,3,3]", "[9,9,9]"] and unknown.marker.color[1] == "#c8c8c8"  # no truth: grey
    by_count = sampling_frequency({"[4,3,3]": 3, "[1,1,8]": 7})
    assert list(_role(by_count, "bars")[0].x) == ["[1,1,8]", "[4,3,3]"]


def test_scale_colors_are_the_scale_at_each_value():
    from nasbench_lab.viz.style import NO_VALUE_COLOR, colorbar_trace, scale_colors

    # RdBu's ends and middle (plotly.colors.diverging.RdBu: 11 colours, the 6th at 0.5); past the ends clipped
    got = scale_colors([-1, 0, 1, 3, -7, None, float("nan")], "RdBu", -1, 1)
    assert got[:5] == ["rgb(103, 0, 31)", "rgb(247, 247, 247)", "rgb(5, 48, 97)", "rgb(5, 48, 97)", "rgb(103, 0, 31)"]
    assert got[5:] == [NO_VALUE_COLOR] * 2 and scale_colors([], "RdBu", 0, 1) == []
    bar = colorbar_trace("Viridis", 90.0, 94.0, "true acc %")
    assert bar["marker"]["cmin"] == 90.0 and bar["marker"]["showscale"] and bar["x"] == [None]


def test_sampling_frequency_heatmap_shares_per_level_for_nb201():
    sp = spaces.get("nb201")
    rng = np.random.default_rng(2)
    counts = Counter(str(sp.sample(rng)) for _ in range(400))
    fig = sampling_frequency(counts, sp)  # auto: too large for bars
    heat = _role(fig, "heatmap")[0]
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (6, 5)
    np.testing.assert_allclose(z.sum(axis=1), 1.0)
    levels, genes, raw = choice_counts(counts, sp)
    assert raw.sum() == 400 * 6
    np.testing.assert_allclose(z, raw / 400)
    assert list(heat.y) == levels and heat.text[0][1] == "skip_connect"
    with pytest.raises(ValueError, match="counts: expected a mapping"):
        sampling_frequency([1, 2, 3])
    with pytest.raises(ValueError, match="kind"):
        sampling_frequency(counts, sp, kind="pie")


def test_accuracy_distribution_marks_the_architecture_with_its_rank():
    bm = benchmarks.get("nb201", "cifar10")
    arch = spaces.get("nb201").default()
    fig = accuracy_distribution(bm, arch)
    hist = _role(fig, "hist")[0]
    assert len(hist.x) == len(bm) == 15625
    line = fig.layout.shapes[0]
    assert line.x0 == line.x1 == pytest.approx(bm.query(arch))
    note = fig.layout.annotations[0].text
    assert f"rank {bm.rank(arch)}/15625" in note and f"{bm.query(arch):.2f}%" in note
    top = 100 * np.mean(bm.table["acc"].to_numpy() >= bm.query(arch))
    assert f"top {top:.2g}%" in fig.layout.title.text
    best = accuracy_distribution(bm, bm.optimum[0])
    ties = int(np.sum(bm.table["acc"].to_numpy() >= bm.optimum[1]))  # isomorphic cells share the best value
    assert "rank 1/15625" in best.layout.annotations[0].text
    assert f"top {100 * ties / 15625:.2g}%" in best.layout.title.text
    plain = accuracy_distribution([90.0, 91.0, 92.5])
    assert len(_role(plain, "hist")[0].x) == 3
    with pytest.raises(ValueError, match="benchmark: expected a Benchmark"):
        accuracy_distribution(object())
