"""Views of gradient interference (issue 28, :mod:`nasbench_lab.training.interference`).

* :func:`interference_figure`: the live panel: the children's pairwise cosine matrix (ordered by
  a clustering, so agreeing children form blocks), the cosine against the number of differing
  decisions beside the published trend (Xu et al. 2022), and which layers carry the conflict;
* :func:`cosine_vs_distance`: that curve alone, from a pairs table (the shipped CSVs);
* :func:`layer_profile`: per-layer cosine of chosen pairs (the pooling space's early vs late).

All take the plain data of :meth:`Interference.to_dict` / :meth:`Interference.pairs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasbench_lab.viz.style import HIGHLIGHT, MUTED, REWARD_COLOR, base_layout, empty_figure, scale_colors

#: the diverging scale of the cosine: red = the two children pull apart, blue = together
COSINE_SCALE = "RdBu"


def _labels(n: int) -> list[str]:
    return [f"#{i}" for i in range(n)]


def interference_figure(data: Mapping[str, Any] | None, reference: Mapping[str, Any] | None = None,
                        height: int = 440, title: str | None = None) -> go.Figure:
    """The live panel from one measurement (``Interference.to_dict()``, or an ``"interference"``
    event's data): matrix | cosine vs distance | per layer. Matrix cells are labelled ``#i`` (the
    child's index in ``data["archs"]``); hovering shows both architectures."""
    if not data or not data.get("archs"):
        return empty_figure("the first interference measurement appears after interference_every steps",
                            "Gradient interference", height)
    archs = [str(a) for a in data["archs"]]
    C = np.array([[np.nan if v is None else float(v) for v in row] for row in data["cosine"]], float)
    D = np.asarray(data["distance"], int)
    order = [int(i) for i in data.get("order") or range(len(archs))]
    lab = _labels(len(archs))
    s = data.get("summary") or {}
    fig = make_subplots(rows=1, cols=3, column_widths=[0.38, 0.34, 0.28], horizontal_spacing=0.1,
                        subplot_titles=("pairwise cosine (clustered)", "cosine vs differing decisions",
                                        "mean cosine per layer"))
    hover = [[f"{lab[i]} {archs[i]}<br>{lab[j]} {archs[j]}<br>distance {D[i, j]}" for j in order] for i in order]
    z = [[None if not np.isfinite(v) else float(v) for v in row] for row in C[np.ix_(order, order)]]
    # nested lists, not a 2-D array: the live view decodes 1-D binary arrays only (widgets/_figure.py)
    fig.add_trace(go.Heatmap(z=z, x=[lab[j] for j in order], y=[lab[i] for i in order],
                             zmin=-1, zmax=1, zmid=0, colorscale=COSINE_SCALE, customdata=hover,
                             colorbar=dict(title=dict(text="cos", side="right"), orientation="h", thickness=8, len=0.3,
                                           x=0.19, xanchor="center", y=-0.2, yanchor="top"),
                             hovertemplate="%{customdata}<br>cos = %{z:.3f}<extra></extra>",
                             meta={"role": "matrix"}), 1, 1)
    bd = pd.DataFrame(data.get("by_distance") or {})
    if not len(bd):  # no pair shares a weight yet: an empty curve, so the panel keeps its traces
        bd = pd.DataFrame({"distance": [], "mean": [], "sd": [], "pairs": []})
    fig.add_trace(go.Scatter(x=bd["distance"], y=bd["mean"],
                             error_y=dict(type="data", array=bd["sd"].fillna(0).tolist(), visible=True, thickness=1),
                             mode="lines+markers", name="measured (mean ± sd)", line=dict(color=REWARD_COLOR),
                             customdata=bd["pairs"],
                             hovertemplate="distance %{x}: cos %{y:.3f} (%{customdata} pairs)<extra></extra>",
                             meta={"role": "measured"}), 1, 2)
    if reference:
        fig.add_trace(go.Scatter(x=reference["distance"], y=reference["cosine"], mode="lines", name="Xu et al. 2022 (shape)",
                                 line=dict(color=MUTED, dash="dash"), hovertemplate=f"{reference.get('source', '')}"
                                 "<br>%{x}: %{y:.2f}<extra></extra>", meta={"role": "reference"}), 1, 2)
    layers = data.get("layers") or {}
    names = list(layers.get("layer") or [])
    if names:
        means = [None if v is None or not np.isfinite(v) else float(v) for v in layers["mean"]]
        neg = [None if v is None or not np.isfinite(v) else float(v)
               for v in layers.get("negative") or [None] * len(names)]
        fig.add_trace(go.Bar(y=names, x=means, orientation="h", meta={"role": "layers"}, showlegend=False,
                             marker=dict(color=scale_colors([0.0 if v is None else v for v in means], COSINE_SCALE, -1, 1)),
                             customdata=neg, hovertemplate="%{y}: mean cos %{x:.3f}<br>pairs pulling apart: "
                             "%{customdata:.0%}<extra></extra>"), 1, 3)
    # category axes: plotly.js reads "#3" as the number 3 (it strips "#", "$", "%" from numbers)
    fig.update_xaxes(type="category", row=1, col=1, tickfont=dict(size=9))
    # the first child of the order on top, by the category order (a live view keeps its first autorange)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[lab[i] for i in reversed(order)],
                     row=1, col=1, tickfont=dict(size=9))
    fig.update_yaxes(autorange="reversed", row=1, col=3, tickfont=dict(size=9))
    fig.update_xaxes(title_text="Hamming distance" if data.get("space") != "pooling" else "distance",
                     dtick=1, row=1, col=2)
    fig.update_xaxes(title_text="cosine", row=1, col=3)
    step = data.get("step")
    head = title or "Gradient interference"
    mean = s.get("mean_cosine")
    detail = (f" · step {step}" if step is not None else "") + f" · {len(archs)} children ({data.get('pick', '')})"
    if isinstance(mean, float) and np.isfinite(mean):
        detail += f" · mean cos {mean:+.3f}, {s.get('negative_fraction', 0):.0%} of pairs opposed"
    fig.update_layout(**base_layout(head + detail, height))
    fig.update_layout(showlegend=True, legend=dict(orientation="h", x=0.42, xanchor="left", y=-0.2, yanchor="top", font=dict(size=10)),
                      margin=dict(b=90))
    return fig


def cosine_vs_distance(pairs: pd.DataFrame | Mapping[str, pd.DataFrame], reference: Mapping[str, Any] | None = None,
                       column: str = "cosine", title: str = "Cosine of shared gradients vs differing decisions",
                       height: int = 360) -> go.Figure:
    """Mean ± sd of ``column`` per distance of one or several pairs tables (``{label: pairs}``)."""
    from nasbench_lab.training.interference import by_distance

    tables = {"measured": pairs} if isinstance(pairs, pd.DataFrame) else dict(pairs)
    fig = go.Figure()
    colors = [REWARD_COLOR, HIGHLIGHT, "#2ca02c", "#9467bd"]
    for n, (label, df) in enumerate(tables.items()):
        bd = by_distance(df, column)
        fig.add_trace(go.Scatter(x=bd["distance"], y=bd["mean"], mode="lines+markers", name=label,
                                 error_y=dict(type="data", array=bd["sd"].fillna(0).tolist(), visible=True),
                                 line=dict(color=colors[n % len(colors)]), customdata=bd["pairs"],
                                 hovertemplate="%{x}: %{y:.3f} (%{customdata} pairs)<extra></extra>",
                                 meta={"role": "measured"}))
    if reference:
        fig.add_trace(go.Scatter(x=reference["distance"], y=reference["cosine"], mode="lines",
                                 name="Xu et al. 2022 (shape)", line=dict(color=MUTED, dash="dash"),
                                 meta={"role": "reference"}))
    fig.update_layout(**base_layout(title, height))
    fig.update_layout(xaxis_title="differing decisions", yaxis_title=column)
    return fig


def layer_profile(pairs: pd.DataFrame, chosen: Sequence[tuple[str, str]], title: str = "Cosine per layer",
                  height: int = 340) -> go.Figure:
    """Per-layer cosine (the ``cos:<layer>`` columns) of chosen pairs, one line each."""
    cols = [c for c in pairs.columns if c.startswith("cos:")]
    fig = go.Figure()
    for a, b in chosen:
        row = pairs[((pairs["a"] == a) & (pairs["b"] == b)) | ((pairs["a"] == b) & (pairs["b"] == a))]
        if not len(row):
            raise ValueError(f"chosen: the pair ({a}, {b}) is not in the table")
        fig.add_trace(go.Scatter(x=[c[4:] for c in cols], y=row.iloc[0][cols].astype(float), mode="lines+markers",
                                 name=f"{a} vs {b}", meta={"role": "pair"}))
    fig.add_hline(y=0, line=dict(color=MUTED, width=1))
    fig.update_layout(**base_layout(title, height))
    fig.update_layout(yaxis_title="cosine", xaxis_title="layer")
    return fig


def op_matrix_figure(om: Mapping[str, Any], title: str = "GM-NAS gradient matching: op × op cosine per edge",
                     height: int = 330) -> go.Figure:
    """One heatmap per decision of :func:`~nasbench_lab.training.interference.op_matrices`: the
    cosine of the shared weights' gradients when that decision takes op i vs op j."""
    n = len(om["levels"])
    fig = make_subplots(rows=1, cols=n, subplot_titles=list(om["levels"]), horizontal_spacing=0.02)
    for k in range(n):
        labels = [str(o).replace("nor_conv_", "conv").replace("skip_connect", "skip").replace("avg_pool_3x3", "avg")
                  for o in om["options"][k]]
        z = np.array([[np.nan if v is None else float(v) for v in row] for row in om["matrices"][k]], float)
        fig.add_trace(go.Heatmap(z=z, x=labels, y=labels, zmin=-1, zmax=1, zmid=0, colorscale=COSINE_SCALE,
                                 showscale=k == n - 1, colorbar=dict(title="cos", thickness=10),
                                 hovertemplate=f"{om['levels'][k]}: %{{y}} vs %{{x}}<br>cos %{{z:.3f}}<extra></extra>",
                                 meta={"role": "op_matrix"}), 1, k + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=k == 0, row=1, col=k + 1)
    fig.update_layout(**base_layout(title + f" ({len(om['bases'])} base architecture(s))", height))
    return fig
