"""A reproduced thesis table as a figure: one metric per method, ours beside the thesis' value.

Seeds are points (so n and the spread are visible), the mean ± sd is a bar with an error bar, and
the thesis' number is a red diamond on the same axis. Pure: same tables, same figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nasbench_lab.viz.style import HIGHLIGHT, MUTED, base_layout, empty_figure

_OURS = "#0072b2"


def reproduction_figure(per_seed: pd.DataFrame, summary: pd.DataFrame, metric: str = "kendall_tau",
                        title: str = "", height: int = 360) -> go.Figure:
    """``per_seed``: one row per (label, seed) with a ``metric`` column; ``summary``: rows of
    (label, metric, ours_mean, ours_sd, n, thesis) as :func:`nasbench_lab.reproduce.report.summary`."""
    summ = summary[summary["metric"] == metric]
    if summ.empty:
        return empty_figure(f"no {metric} in this table", title=title, height=height)
    labels = list(summ["label"])
    fig = go.Figure()
    fig.add_bar(x=labels, y=summ["ours_mean"], name="ours: mean ± sd over seeds", marker_color=_OURS, opacity=0.35,
                error_y=dict(type="data", array=summ["ours_sd"].fillna(0.0), visible=True, color=_OURS),
                hovertemplate="%{x}<br>mean %{y:.3f}<extra></extra>")
    pts = per_seed[["label", "seed", metric]].dropna() if metric in per_seed else pd.DataFrame()
    if len(pts):
        fig.add_scatter(x=pts["label"], y=pts[metric], mode="markers", name="ours: one seed",
                        marker=dict(color=_OURS, size=8, line=dict(color="white", width=1)),
                        customdata=pts["seed"], hovertemplate="%{x}, seed %{customdata}: %{y:.3f}<extra></extra>")
    th = summ.dropna(subset=["thesis"]) if "thesis" in summ else summ.iloc[0:0]
    th = th[pd.to_numeric(th["thesis"], errors="coerce").notna()]
    if len(th):
        fig.add_scatter(x=th["label"], y=th["thesis"].astype(float), mode="markers", name="thesis",
                        marker=dict(symbol="diamond", size=13, color=HIGHLIGHT, line=dict(color="white", width=1)),
                        hovertemplate="%{x}: thesis %{y:.3f}<extra></extra>")
    n = summ["n"].astype(int)
    ticks = [f"{lab}<br><span style='font-size:11px;color:{MUTED}'>n={k}</span>" for lab, k in zip(labels, n)]
    fig.update_layout(**base_layout(title, height=height, barmode="overlay", margin=dict(l=55, r=20, t=50, b=90),
                                    legend=dict(orientation="h", yanchor="top", y=-0.22, x=0)))
    fig.update_xaxes(tickvals=labels, ticktext=ticks)
    vals = np.concatenate([pd.to_numeric(summ["ours_mean"], errors="coerce").to_numpy(float),
                           pd.to_numeric(th["thesis"], errors="coerce").to_numpy(float) if len(th) else np.array([]),
                           pd.to_numeric(pts[metric], errors="coerce").to_numpy(float) if len(pts) else np.array([])])
    vals = vals[np.isfinite(vals)]
    if metric.startswith("kendall") and len(vals):
        lo = min(0.0, float(vals.min()) - 0.05)
        fig.update_yaxes(range=[lo, max(1.0, float(vals.max()) + 0.05) if vals.max() > 0.8 else float(vals.max()) + 0.1],
                         title="Kendall τ")
    return fig
