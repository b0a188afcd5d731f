"""Pareto-front views: pure builders, data in, ``go.Figure`` out.

- :func:`pareto_traces` / :func:`pareto_figure`: accuracy against a cost, every queried
  architecture faint, each strategy's current front bold (a staircase), the true front of the table
  dashed. Traces come in a fixed order and number (per strategy: points, front; then the true
  front), each tagged ``meta={"role": "points"|"front"|"true_front", "strategy": name}``, so a live
  view restyles them in place;
- :func:`hv_gap_figure`: anytime hypervolume gap per strategy (the regret view's traces);
- :func:`pareto_panel`: the panel of a :class:`~nasbench_lab.search.multiobjective.ParetoArena`
  snapshot (see :mod:`nasbench_lab.viz.panels`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nasbench_lab.search.pareto import nondominated
from nasbench_lab.viz.search import _rgba, regret_traces, strategy_color
from nasbench_lab.viz.style import base_layout

#: axis titles of the objectives
LABELS = {"acc": "accuracy (%)", "flops": "MFLOPs (MACs)", "params": "parameters (M)", "latency": "latency (ms)"}
#: costs are drawn in millions (flops, params) or as they are (latency)
SCALE = {"flops": 1e-6, "params": 1e-6, "latency": 1.0, "acc": 1.0}


def front_of(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """The non-dominated (cost, accuracy) points of ``points`` (columns: accuracy, cost), sorted by
    cost: the staircase the view draws. Accuracy is maximised, the cost minimised."""
    P = np.asarray(points, dtype=float).reshape(-1, 2)
    if not len(P):
        return P
    F = np.column_stack([-P[:, 0], P[:, 1]])
    front = P[nondominated(F)]
    front = np.unique(front, axis=0)
    return front[np.argsort(front[:, 1], kind="stable")]


def pareto_traces(points: Mapping[str, Sequence[Sequence[float]]], true_front: Sequence[Sequence[float]] | None,
                  objectives: Sequence[str] = ("acc", "flops")) -> list[go.Scatter]:
    """Traces of :func:`pareto_figure`; ``points`` maps a strategy to its (accuracy, cost) rows."""
    if len(objectives) != 2 or objectives[0] != "acc":
        raise ValueError(f"pareto view: expected objectives ('acc', <cost>), got {tuple(objectives)}")
    cost = objectives[1]
    k = SCALE.get(cost, 1.0)
    traces: list[go.Scatter] = []
    for i, (name, rows) in enumerate(points.items()):
        P = np.asarray(rows, dtype=float).reshape(-1, 2)
        color = strategy_color(name, i)
        traces.append(go.Scatter(x=P[:, 1] * k, y=P[:, 0], mode="markers", name=f"{name} (all)",
                                 legendgroup=name, showlegend=False,
                                 marker=dict(color=_rgba(color, 0.25), size=5), hoverinfo="skip",
                                 meta={"role": "points", "strategy": name}))
        F = front_of(P)
        traces.append(go.Scatter(x=F[:, 1] * k, y=F[:, 0], mode="lines+markers", name=f"{name} front",
                                 legendgroup=name, line=dict(color=color, width=3, shape="hv"),
                                 marker=dict(color=color, size=8),
                                 hovertemplate=f"{name}<br>%{{x:.4g}} {LABELS.get(cost, cost)}<br>%{{y:.2f}} %<extra></extra>",
                                 meta={"role": "front", "strategy": name}))
    T = front_of(true_front) if true_front is not None else np.zeros((0, 2))
    traces.append(go.Scatter(x=T[:, 1] * k, y=T[:, 0], mode="lines", name="true front (table)",
                             line=dict(color="#222", width=1.5, dash="dash", shape="hv"), hoverinfo="skip",
                             meta={"role": "true_front"}))
    return traces


def pareto_figure(points: Mapping[str, Sequence[Sequence[float]]], true_front: Sequence[Sequence[float]] | None = None,
                  objectives: Sequence[str] = ("acc", "flops"), title: str | None = None,
                  height: int = 380) -> go.Figure:
    """Accuracy against a cost: all points faint, each strategy's front bold, the true front dashed."""
    fig = go.Figure(pareto_traces(points, true_front, objectives))
    cost = objectives[1]
    fig.update_layout(**base_layout(title or f"Pareto fronts: accuracy vs {cost}", height))
    fig.update_xaxes(title_text=LABELS.get(cost, cost))
    fig.update_yaxes(title_text=LABELS["acc"])
    return fig


def hv_gap_figure(curves: pd.DataFrame, strategies: Sequence[str], height: int = 320) -> go.Figure:
    """Anytime hypervolume gap (true front's HV minus the found front's) per strategy, log scale."""
    fig = go.Figure(regret_traces(curves, strategies, None))
    fig.update_layout(**base_layout("Hypervolume gap to the true front", height))
    fig.update_xaxes(title_text="queries")
    fig.update_yaxes(title_text="HV(true) − HV(found)", type="log")
    return fig


def pareto_panel(snapshot: dict[str, Any], context: Any = None) -> go.Figure:
    """The dashboard panel of a ParetoArena snapshot (first seed of every strategy)."""
    objectives = snapshot.get("objectives") or ["acc", "flops"]
    points = {k: [row[:2] for row in v] for k, v in (snapshot.get("points") or {}).items()}
    true = [row[:2] for row in snapshot.get("true_front") or []]
    return pareto_figure(points, true, objectives[:2],
                         title=f"Pareto fronts after {snapshot.get('step', 0)} of {snapshot.get('total', 0)} queries")
