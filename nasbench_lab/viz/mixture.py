"""Views of the balanced mixture of supernets (thesis §2.2.2): who trains what, and the balance.

* :func:`mixture_heatmap`: ``p(c, m)`` (or ``p(m | c)``) as a configurations x models heatmap;
* :func:`model_accuracy`: the smoothed accuracy ``a_{c,m}`` of each model on each configuration;
* :func:`marginal_history`: the model marginals ``p(m)`` after IPF and the imbalance
  ``KL(p(m) || U)`` before/after it, over training;
* :func:`mixture_panel`: the live panel (all three).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasbench_lab.viz.mcts import truth_map
from nasbench_lab.viz.style import _FALLBACK, MUTED, base_layout, empty_figure

#: up to this many models each gets a legend entry; more (the thesis runs 32) are told apart by
#: colour and hover only, or the legend would outgrow the plots (issue 29: ~60 entries)
MAX_LEGEND_MODELS = 8


def model_colors(n: int) -> list[str]:
    """One distinct colour per model: the categorical palette up to its size, else ``n`` colours
    sampled evenly from a perceptual scale (the palette repeats after 10 colours)."""
    if n <= len(_FALLBACK):
        return list(_FALLBACK[:n])
    from plotly.colors import sample_colorscale

    return sample_colorscale("Turbo", [i / (n - 1) for i in range(n)])


def _matrix(name: str, values: Any, rows: int) -> np.ndarray:
    try:
        m = np.asarray(values, float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a (configurations x models) matrix of numbers") from None
    if m.ndim != 2 or m.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows (one per configuration) of per-model values, got shape {m.shape}")
    return m


def _order(archs: list[str], truth: Mapping[str, float]) -> list[int]:
    if truth and all(a in truth for a in archs):
        return sorted(range(len(archs)), key=lambda i: -truth[archs[i]])
    return list(range(len(archs)))


def _heatmap(archs: list[str], P: np.ndarray, conditional: bool, truth: Mapping[str, float],
             showscale: bool = True) -> go.Heatmap:
    Z = P / P.sum(1, keepdims=True) if conditional else P
    order = _order(archs, truth)
    y = [archs[i] + (f" ({truth[archs[i]]:.1f})" if archs[i] in truth else "") for i in order]
    # columns named by the model's number (the axis says "model"): 32 "model k" labels did not fit
    return go.Heatmap(z=Z[order], x=[str(m) for m in range(P.shape[1])], y=y, colorscale="Blues",
                      showscale=showscale, colorbar=dict(title="p(m|c)" if conditional else "p(c,m)", thickness=12),
                      hovertemplate="%{y} · model %{x}<br>p = %{z:.4f}<extra></extra>", meta={"role": "p"})


def mixture_heatmap(archs: Sequence[str], p: Any, conditional: bool = True,
                    truth: Mapping[str, float] | None = None, title: str | None = None,
                    height: int = 460) -> go.Figure:
    """``p(m|c)`` (default) or the balanced joint ``p(c, m)``: one row per configuration
    (ordered by ground truth when given, best on top), one column per model."""
    archs = [str(a) for a in archs]
    P = _matrix("p", p, len(archs))
    fig = go.Figure(_heatmap(archs, P, conditional, truth or {}))
    fig.update_layout(**base_layout(title or ("Which model trains each configuration, p(m|c)" if conditional
                                              else "Balanced joint p(c, m)"), height))
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=10))
    fig.update_xaxes(title_text="model", type="category")
    return fig


def _accuracy_traces(archs: list[str], value: np.ndarray, seen: np.ndarray | None, best: np.ndarray,
                     truth: Mapping[str, float]) -> list[go.Scatter]:
    order = _order(archs, truth)
    x = [archs[i] for i in order]
    traces = []
    colors = model_colors(value.shape[1])
    legend = value.shape[1] <= MAX_LEGEND_MODELS
    for m in range(value.shape[1]):
        v = value[order, m].copy()
        if seen is not None:
            v[~seen[order, m]] = np.nan
        traces.append(go.Scatter(x=x, y=v, mode="markers", name=f"model {m}", legendgroup=f"model {m}",
                                 showlegend=legend,
                                 marker=dict(color=colors[m], size=[11 if best[i] == m else 6
                                                                                         for i in order],
                                             symbol=["star" if best[i] == m else "circle" for i in order]),
                                 meta={"role": f"model{m}"}))
    return traces


def model_accuracy(archs: Sequence[str], value: Any, p: Any | None = None, seen: Any | None = None,
                   truth: Mapping[str, float] | None = None, title: str | None = None,
                   height: int = 340) -> go.Figure:
    """Smoothed accuracy ``a_{c,m}`` per configuration and model; a star marks the model of
    highest ``p(m|c)`` (the one used for the final choice)."""
    archs = [str(a) for a in archs]
    A = _matrix("value", value, len(archs))
    P = _matrix("p", p, len(archs)) if p is not None else A
    S = None if seen is None else np.asarray(seen, bool)
    fig = go.Figure(_accuracy_traces(archs, A, S, np.argmax(P, 1), truth or {}))
    fig.update_layout(**base_layout(title or "Smoothed accuracy of each model (★ = model used for c)", height))
    fig.update_xaxes(type="category", tickangle=-60, tickfont=dict(size=10))
    fig.update_yaxes(title_text="a(c, m)")
    return fig


def marginal_history(history: Sequence[Mapping[str, Any]], title: str | None = None, height: int = 320) -> go.Figure:
    """``p(m)`` after IPF (lines) and ``KL(p(m)||U)`` before (dashed) and after IPF, per step."""
    if not history:
        return empty_figure("no history yet", title or "Model marginals", height)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for tr, sec in _marginal_traces(history):
        fig.add_trace(tr, secondary_y=sec)
    fig.update_layout(**base_layout(title or "Balance: model marginals after IPF, KL to uniform", height))
    _marginal_axes(fig, history)
    fig.update_xaxes(title_text="step")
    return fig


def _marginal_axes(fig: go.Figure, history: Sequence[Mapping[str, Any]], **where: Any) -> None:
    """p(m) on a linear axis from 0 with short ticks (near 1/M every model's line sits on a few
    thousandths, and plotly's automatic ticks read 0.03487178); KL on a log axis in powers of ten."""
    top = max((max(h["p_model"]) for h in history), default=1.0)
    fig.update_yaxes(title_text="p(m)", range=[0, 1.15 * top], tickformat=".3~f", secondary_y=False, **where)
    fig.update_yaxes(title_text="KL(p(m)||U)", type="log", exponentformat="power", showexponent="all",
                     dtick=2, secondary_y=True, **where)  # every second power of ten: 10⁻¹⁰, 10⁻⁸...


def _marginal_traces(history: Sequence[Mapping[str, Any]]) -> list[tuple[go.Scatter, bool]]:
    steps = [h["step"] for h in history]
    M = len(history[0]["p_model"])
    colors = model_colors(M)
    # a model's marginal shares its accuracy trace's legend entry (one entry per model, not two)
    out = [(go.Scatter(x=steps, y=[h["p_model"][m] for h in history], mode="lines", name=f"p(model {m})",
                       legendgroup=f"model {m}", showlegend=False,
                       line=dict(color=colors[m]), meta={"role": f"pm{m}"}), False)
           for m in range(M)]
    out.append((go.Scatter(x=steps, y=[max(h["kl_before"], 1e-12) for h in history], mode="lines",
                           name="KL before IPF", line=dict(color=MUTED, dash="dash"), meta={"role": "kl_before"}), True))
    out.append((go.Scatter(x=steps, y=[max(h["kl_after"], 1e-12) for h in history], mode="lines",
                           name="KL after IPF", line=dict(color="#333"), meta={"role": "kl_after"}), True))
    return out


def mixture_panel(snapshot: Mapping[str, Any], context: Any = None) -> go.Figure:
    """Live panel: p(m|c) heatmap, per-model accuracies, and the marginals over training."""
    archs = [str(a) for a in snapshot.get("archs") or []]
    if not archs:
        return empty_figure("no mixture yet", "Balanced mixture")
    truth = truth_map(getattr(context, "benchmark", None), archs)
    P = np.asarray(snapshot["p"], float)
    many = P.shape[1] > MAX_LEGEND_MODELS
    # the heatmap has a column per model: with many models it gets the wider share of the width
    fig = make_subplots(rows=2, cols=2, column_widths=[0.45, 0.55] if many else [0.35, 0.65], row_heights=[0.55, 0.45],
                        specs=[[{"type": "heatmap", "rowspan": 2}, {"type": "xy"}], [None, {"secondary_y": True}]],
                        subplot_titles=["p(m | c)", "smoothed accuracy a(c, m)", "marginals p(m) and KL to uniform"],
                        horizontal_spacing=0.1, vertical_spacing=0.22)
    fig.add_trace(_heatmap(archs, P, True, truth, showscale=False), row=1, col=1)
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=10), row=1, col=1)
    fig.update_xaxes(title_text="model", type="category", row=1, col=1)
    seen = np.asarray(snapshot["seen"], bool) if snapshot.get("seen") is not None else None
    for tr in _accuracy_traces(archs, np.asarray(snapshot["value"], float), seen, np.argmax(P, 1), truth):
        fig.add_trace(tr, row=1, col=2)
    fig.update_xaxes(type="category", showticklabels=len(archs) <= 60, tickangle=-60, tickfont=dict(size=10),
                     row=1, col=2)
    hist = snapshot.get("history") or []
    if hist:
        for tr, sec in _marginal_traces(hist):
            fig.add_trace(tr, row=2, col=2, secondary_y=sec)
        _marginal_axes(fig, hist, row=2, col=2)
    ipf = snapshot.get("ipf") or {}
    status = (f"mixture of {snapshot.get('models')} supernets · step {snapshot.get('steps', 0)} · "
              f"τ = {snapshot.get('tau', float('nan')):.4g} · IPF {ipf.get('iterations', '?')} rounds, "
              f"KL {ipf.get('kl', float('nan')):.1e}")
    fig.update_layout(**base_layout(status, 660, margin=dict(l=110, r=20, t=60, b=90),
                                    legend=dict(orientation="h", yanchor="top", y=-0.08, x=0.0)))
    if many:
        fig.add_annotation(text=f"colour = model ({P.shape[1]} models; hover a point for its number)", showarrow=False,
                           xref="paper", yref="paper", x=1.0, y=-0.08, xanchor="right", yanchor="top",
                           font=dict(size=11, color=MUTED))
    return fig
