"""How well a supernet ranks architectures: estimate vs ground truth, Kendall tau over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nasbench_lab.metrics import kendall_tau
from nasbench_lab.viz.style import HIGHLIGHT, REWARD_COLOR, base_layout, empty_figure


def ranking_tau(df: pd.DataFrame) -> float:
    """The Kendall tau of a ranking table: its ``attrs["summary"]`` when present, else computed."""
    summary = df.attrs.get("summary") or {}
    if "kendall_tau" in summary:
        return float(summary["kendall_tau"])
    if "truth" not in df.columns:
        return float("nan")
    return kendall_tau(df["estimate"], df["truth"])


def ranking_scatter(df: pd.DataFrame, k: int = 10, title: str | None = None, height: int = 340) -> go.Figure:
    """Supernet estimate (y) against ground truth (x); the true top-``k`` and the pick highlighted.

    ``df`` is :func:`nasbench_lab.training.ranking.rank_supernet`'s table (columns arch,
    estimate, and truth when a benchmark exists). Traces: ``meta={"role": "all"|"topk"|"selected"}``.
    The title carries the Kendall tau. Without ground truth the estimates are drawn against
    their rank.
    """
    if not isinstance(df, pd.DataFrame) or not {"arch", "estimate"} <= set(df.columns):
        raise ValueError("df: expected the DataFrame of rank_supernet() with columns arch, estimate[, truth] "
                         "(e.g. pd.DataFrame({'arch': ['[4,3,3]'], 'estimate': [61.2], 'truth': [92.1]}))")
    if int(k) < 1:
        raise ValueError(f"k: expected a positive number of highlighted architectures, got {k!r} (e.g. k=10)")
    if df.empty:
        return empty_figure("no ranked architectures", title or "Supernet ranking", height)
    has_truth = "truth" in df.columns and df["truth"].notna().any()
    tau = ranking_tau(df) if has_truth else float("nan")
    n = int((df.attrs.get("summary") or {}).get("n", len(df)))
    if title is None:
        title = (f"Supernet ranking vs ground truth · Kendall τ = {tau:.3f} (n={n})" if has_truth
                 else f"Supernet estimates (no ground truth, n={n})")
    est = df["estimate"].astype(float).to_numpy()
    x = df["truth"].astype(float).to_numpy() if has_truth else df["estimate"].rank(ascending=False, method="min").to_numpy()
    order = np.argsort(-(x if has_truth else -x), kind="stable")
    topk = set(order[: int(k)].tolist())
    best = int(np.argmax(est))
    hover = [f"{a}<br>estimate {e:.2f}%" + (f"<br>truth {t:.2f}%" if has_truth else "")
             for a, e, t in zip(df["arch"], est, x)]
    fig = go.Figure()
    rest = [i for i in range(len(df)) if i not in topk]
    fig.add_trace(go.Scatter(x=x[rest], y=est[rest], mode="markers", name="architectures",
                             marker=dict(size=8, color=REWARD_COLOR, opacity=0.6), hovertext=[hover[i] for i in rest],
                             hoverinfo="text", meta={"role": "all"}))
    tk = sorted(topk)
    fig.add_trace(go.Scatter(x=x[tk], y=est[tk], mode="markers", name=f"true top-{len(tk)}" if has_truth else f"top-{len(tk)}",
                             marker=dict(size=11, color=HIGHLIGHT, line=dict(color="white", width=1)),
                             hovertext=[hover[i] for i in tk], hoverinfo="text", meta={"role": "topk"}))
    fig.add_trace(go.Scatter(x=[x[best]], y=[est[best]], mode="markers+text", name="selected (best estimate)",
                             text=[str(df["arch"].iloc[best])],
                             # the label points inwards, so a pick at the right edge is not clipped
                             textposition="middle left" if x[best] > (np.nanmin(x) + np.nanmax(x)) / 2
                             else "middle right",
                             marker=dict(symbol="star", size=18, color="#ffb000", line=dict(color="#333", width=1)),
                             hovertext=[hover[best]], hoverinfo="text", meta={"role": "selected"}))
    # legend inside, bottom right: a top legend collides with the long title
    fig.update_layout(**base_layout(title, height, legend=dict(x=1, y=0, xanchor="right", yanchor="bottom",
                                                               bgcolor="rgba(255,255,255,0.8)",
                                                               bordercolor="#ddd", borderwidth=1)))
    fig.update_xaxes(title_text="ground-truth accuracy (%)" if has_truth else "estimated rank")
    fig.update_yaxes(title_text="supernet accuracy (%)")
    return fig


def tau_curve(steps: Sequence[float], taus: Sequence[float], height: int = 300,
              top10: Sequence[float] | None = None, title: str = "Kendall τ vs ground truth") -> go.Figure:
    """Kendall tau of the supernet ranking against training step (from "ranking" events);
    ``top10``: the tau over the true top-10, drawn dashed beside it."""
    if len(steps) != len(taus) or (top10 is not None and len(top10) != len(steps)):
        raise ValueError(f"steps/taus/top10: expected lists of the same length, got {len(steps)}, {len(taus)}"
                         + (f" and {len(top10)}" if top10 is not None else ""))
    fig = go.Figure(go.Scatter(x=list(steps), y=list(taus), mode="lines+markers", name="τ (all)",
                               line=dict(color=REWARD_COLOR, width=2.5), meta={"role": "tau"}))
    if top10 is not None:
        # nan where the top-10 tau is undefined (ties): plotly leaves a gap
        fig.add_trace(go.Scatter(x=list(steps), y=[float("nan") if v is None else v for v in top10],
                                 mode="lines+markers", name="τ (true top-10)", meta={"role": "tau_top10"},
                                 line=dict(color=HIGHLIGHT, width=1.8, dash="dash")))
    fig.update_layout(**base_layout(title, height, legend=dict(orientation="h", x=0, y=-0.25)))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="Kendall τ", range=[-1.05, 1.05], zeroline=True)
    return fig


def kendall_panel(snapshot: Mapping[str, Any], context: Any = None) -> go.Figure:
    """:func:`tau_curve` from a Trainer snapshot's periodic ``"rankings"`` (rows with step,
    kendall_tau, kendall_tau_top10; Trainer option ``rank_every``)."""
    rows = snapshot.get("rankings") or []
    if not rows:
        return empty_figure("no ranking yet (Trainer option rank_every)", "Kendall τ vs step")
    return tau_curve([r["step"] for r in rows], [r.get("kendall_tau") for r in rows],
                     top10=[r.get("kendall_tau_top10") for r in rows],
                     title="Kendall τ vs ground truth during training")
