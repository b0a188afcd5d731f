"""The views a teacher found hard to read (issue 29), asserted on the figures themselves.

Each test builds the figure from real data (benchmark tables, samplers fed with benchmark
rewards, a short real DARTS run) and checks the property the screenshot showed wrong: tick
sizes, axis direction and range, legend size, distinct colours, where a title sits.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_sampler_views import CTX, _run

from nasbench_lab import benchmarks, spaces
from nasbench_lab.viz.alphas import alpha_panel
from nasbench_lab.viz.mcts import mcts_panel
from nasbench_lab.viz.mixture import MAX_LEGEND_MODELS, mixture_panel, model_colors
from nasbench_lab.viz.panels import PanelContext
from nasbench_lab.viz.ranking import ranking_scatter
from nasbench_lab.viz.sampling import TICK_SIZE, accuracy_distribution, sampling_frequency
from nasbench_lab.viz.style import WRAP, empty_figure

POOL = spaces.get("pooling")


def _legend_entries(fig) -> list[str]:
    return [t.name for t in fig.data if t.showlegend is not False and t.name]


def test_mixture_of_32_models_has_a_short_legend_distinct_colours_and_plain_axes():
    snap = _run("mixture", steps=120, models=32).snapshot()
    fig = mixture_panel(snap, CTX)
    # 32 accuracy traces + 32 marginals + 2 KL lines used to give 66 legend entries
    assert _legend_entries(fig) == ["KL before IPF", "KL after IPF"]
    colors = [t.marker.color for t in fig.data if t.meta and str(t.meta.get("role", "")).startswith("model")]
    assert len(colors) == 32 and len(set(colors)) == 32
    assert any("colour = model (32 models" in a.text for a in fig.layout.annotations)
    # the heatmap's columns are the 32 models, numbered, on a category axis titled "model"
    heat = next(t for t in fig.data if t.type == "heatmap")
    assert list(heat.x) == [str(m) for m in range(32)] and fig.layout.xaxis.title.text == "model"
    assert fig.layout.xaxis.domain[1] - fig.layout.xaxis.domain[0] > 0.35  # was 0.28 of the width
    # p(m) from 0 with short ticks (not 0.03487178); KL in powers of ten (not 2e-9)
    pm = max(max(h["p_model"]) for h in snap["history"])
    axes = {a: fig.layout[a] for a in ("yaxis3", "yaxis4")}
    lin = next(ax for ax in axes.values() if ax.type != "log")
    log = next(ax for ax in axes.values() if ax.type == "log")
    assert lin.range[0] == 0 and lin.range[1] == pytest.approx(1.15 * pm) and lin.tickformat == ".3~f"
    assert log.exponentformat == "power"
    # a few models keep a legend entry each (accuracy and marginal share it)
    small = mixture_panel(_run("mixture", steps=60, models=3).snapshot(), CTX)
    assert _legend_entries(small) == ["model 0", "model 1", "model 2", "KL before IPF", "KL after IPF"]
    assert 3 <= MAX_LEGEND_MODELS < 32 and len(set(model_colors(3))) == 3


def test_mcts_depth_axis_counts_down_from_the_root_and_leaf_labels_are_readable():
    fig = mcts_panel(_run("mcts-learned").snapshot(), CTX)
    axes = [fig.layout[k] for k in fig.layout if k.startswith(("xaxis", "yaxis"))]
    depth = next(ax for ax in axes if ax.title.text == "depth")  # the top levels, nodes at y = -depth
    assert list(depth.tickvals) == [0, -1, -2, -3] and list(depth.ticktext) == ["0", "1", "2", "3"]
    leaves_axis = next(ax for ax in axes if ax.ticktext and len(ax.ticktext) == 36)  # the dendrogram
    assert leaves_axis.tickfont.size >= 10


def test_accuracy_histogram_keeps_its_axis_to_the_bulk_and_names_the_outlier():
    bm = benchmarks.get("pooling", "digits")
    acc = bm.table["acc"].to_numpy(float)
    q1, q3 = np.percentile(acc, [25, 75])
    far = acc[(acc < q1 - 3 * (q3 - q1)) | (acc > q3 + 3 * (q3 - q1))]
    assert far.size >= 1 and far.min() < 70  # the layout that barely trains on digits
    fig = accuracy_distribution(bm, POOL.default())
    lo, hi = fig.layout.xaxis.range
    assert lo > far.min() and lo > 90 and hi <= 100.5
    note = next(a.text for a in fig.layout.annotations if a.name == "off-axis")
    assert f"{far.size} below, down to {far.min():.1f}" in note
    hist = fig.data[0]
    assert len(hist.x) == acc.size  # nothing dropped: the outlier is binned, just off the axis
    assert hist.xbins.size == pytest.approx((hi - lo) / 60, rel=0.2)  # 60 bins over the shown range
    # no outlier (NB-201 has none beyond the far fences at the bulk), no note, plotly's own range
    plain = accuracy_distribution([90.0, 91.0, 92.5])
    assert not [a for a in plain.layout.annotations if a.name == "off-axis"]


def test_sampling_frequency_ticks_are_readable():
    counts = {str(a): i % 5 for i, a in enumerate(POOL.enumerate())}
    fig = sampling_frequency(counts, POOL, benchmark=benchmarks.get("pooling", "digits"))
    assert fig.layout.xaxis.tickfont.size == TICK_SIZE >= 11
    assert fig.layout.yaxis.autorange in (None, True)  # bars stand on the axis, never hang from it
    assert isinstance(fig.data[0].marker.color, tuple | list)  # coloured by true accuracy


def test_placeholder_text_wraps_inside_its_frame():
    note = ("the supernet's ranking against the truth appears at the end of training; "
            "Kendall τ every 25 steps is plotted below")
    fig = empty_figure(note, "Ranking", 300)
    lines = fig.layout.annotations[0].text.split("<br>")
    assert len(lines) >= 2 and all(len(x) <= WRAP for x in lines)
    assert " ".join(lines) == note  # every word kept, in order
    frame = fig.layout.shapes[0]
    assert (frame.x0, frame.x1, frame.y0, frame.y1) == (0, 1, 0, 1)


def test_ranking_title_puts_its_numbers_below_the_toolbar_row():
    bm = benchmarks.get("pooling", "cifar10")
    archs = [str(a) for a in POOL.enumerate()]
    truth = [bm.query(a) for a in archs]
    import pandas as pd

    df = pd.DataFrame({"arch": archs, "estimate": truth[::-1], "truth": truth})
    fig = ranking_scatter(df)
    first, second = fig.layout.title.text.split("<br>")
    # plotly's toolbar (on hover, top right, ~230 px) sat over the end of one long line
    assert len(first) <= 36 and re.fullmatch(r"Kendall τ = -?\d\.\d{3} \(n=36\)", second)
    assert fig.layout.margin.t >= 68


@pytest.fixture(scope="module")
def darts_snapshot(tmp_path_factory):
    """A short real DARTS search on NB-201 (digits), its monitors and derived cell included."""
    from nasbench_lab.widgets import launch

    with pytest.MonkeyPatch.context() as mp:  # its run store in a workspace of its own
        mp.setenv("NASBENCH_LAB_HOME", str(tmp_path_factory.mktemp("darts") / "workspace"))
        dash = launch(space="nb201", method="darts", dataset="digits", steps=4, start=False, benchmark="cifar10",
                      batch_size=16, channels=4, hessian_every=4, hessian_batch=16)
        job = dash.run.job
        for _ in range(4):
            job.step()
        dash.close()
        return job.snapshot()


def test_darts_panel_titles_fit_and_the_cell_is_drawn_once(darts_snapshot):
    snap = darts_snapshot
    ctx = PanelContext(spaces.get("nb201"), benchmarks.get("nb201", "cifar10"), "darts")
    in_dash = alpha_panel(snap, ctx)
    standalone = alpha_panel(snap, None)
    cell = f"derived cell — {snap['table_acc']:.2f} % (cifar10)"
    for fig in (in_dash, standalone):
        # monitor titles on two short lines, each ≤ 20 characters ("(%)" no longer cut)
        monitors = [a.text for a in fig.layout.annotations if "<br>" in (a.text or "") and a.name != "cell-title"]
        assert len(monitors) == 3 and monitors[-1] == "derived cell<br>table accuracy (%)"
        assert all(len(line) <= 20 for t in monitors for line in t.split("<br>"))
        head = next(a for a in fig.layout.annotations if a.name == "cell-title")
        assert cell in head.text
    # in the dashboard the cell is not drawn again (its "Current architecture" draws it): no DAG
    # traces, and its line sits above the plots, not in the gap under the alpha plots
    assert not [t for t in in_dash.data if t.meta and t.meta.get("role") in ("layer", "edge", "node")]
    head = next(a for a in in_dash.layout.annotations if a.name == "cell-title")
    assert head.yref == "paper" and head.y == 1 and head.yanchor == "bottom"
    # standalone (notebook 04) it is drawn, its title inside the cell's own frame
    assert len(standalone.data) > len(in_dash.data)
    head = next(a for a in standalone.layout.annotations if a.name == "cell-title")
    assert head.xref.endswith(" domain") and head.yanchor == "top"
