"""How well a supernet ranks architectures: estimate vs ground truth, Kendall tau over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nasbench_lab.metrics import kendall_tau
from nasbench_lab.viz.style import HIGHLIGHT, REWARD_COLOR, base_layout, empty_figure, robust_range


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
    estimate, and truth when a benchmark exists; est_rank, tied, val_loss when present).
    Traces: ``meta={"role": "all"|"topk"|"selected"|"outliers"}``. The title carries the Kendall
    tau. Without ground truth the estimates are drawn against their rank.

    Ties (equal accuracy and validation loss, ``tied`` > 0) read as ties: the hover says "tied
    with n", and a tied pick is labelled so. A far outlier (outside the quartiles ± 3 IQR, e.g. a
    path the supernet never learned) would squash every other point into a corner: the axes keep
    to the rest, and outliers sit on the edge as open triangles, their values in the legend.
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
        # the numbers on a second line: plotly's toolbar (top right, on hover) covered them at
        # the end of one long line in a half-width panel (issue 29)
        title = (f"Supernet ranking vs ground truth<br>Kendall τ = {tau:.3f} (n={n})" if has_truth
                 else f"Supernet estimates<br>no ground truth, n={n}")
    est = df["estimate"].astype(float).to_numpy()
    # the estimated order: the table's tie-broken est_rank when it has one, else by estimate
    est_rank = (df["est_rank"].to_numpy(int) if "est_rank" in df.columns
                else df["estimate"].rank(ascending=False, method="min").to_numpy(int))
    tied = df["tied"].to_numpy(int) if "tied" in df.columns else np.zeros(len(df), int)
    x = df["truth"].astype(float).to_numpy() if has_truth else est_rank.astype(float)
    order = np.argsort(-(x if has_truth else -x), kind="stable")
    topk = set(order[: int(k)].tolist())
    best = int(np.argmin(est_rank))
    loss = df["val_loss"].to_numpy(float) if "val_loss" in df.columns else None
    hover = []
    for i, a in enumerate(df["arch"]):
        h = f"{a}<br>estimate {est[i]:.2f}%" + (f" · val loss {loss[i]:.4f}" if loss is not None else "")
        h += f"<br>estimated rank {est_rank[i]}" + (f" (tied with {tied[i]})" if tied[i] else "")
        hover.append(h + (f"<br>truth {x[i]:.2f}%" if has_truth else ""))
    xr = robust_range(x) if has_truth else None
    yr = robust_range(est)

    def clamp(v: np.ndarray, r: tuple[float, float] | None) -> np.ndarray:
        return v if r is None else np.clip(v, r[0], r[1])

    out = np.zeros(len(df), bool)
    if xr is not None:
        out |= (x < xr[0]) | (x > xr[1])
    if yr is not None:
        out |= (est < yr[0]) | (est > yr[1])
    xs, ys = clamp(x, xr), clamp(est, yr)
    fig = go.Figure()
    rest = [i for i in range(len(df)) if i not in topk and not out[i]]
    fig.add_trace(go.Scatter(x=xs[rest], y=ys[rest], mode="markers", name="architectures",
                             marker=dict(size=8, color=REWARD_COLOR, opacity=0.6), hovertext=[hover[i] for i in rest],
                             hoverinfo="text", meta={"role": "all"}))
    tk = [i for i in sorted(topk) if not out[i]]
    fig.add_trace(go.Scatter(x=xs[tk], y=ys[tk], mode="markers", name=f"true top-{len(topk)}" if has_truth else f"top-{len(topk)}",
                             marker=dict(size=11, color=HIGHLIGHT, line=dict(color="white", width=1)),
                             hovertext=[hover[i] for i in tk], hoverinfo="text", meta={"role": "topk"}))
    far = [i for i in range(len(df)) if out[i]]
    if far:
        vals = "; ".join(f"{df['arch'].iloc[i]}: est. {est[i]:.1f}%" + (f", truth {x[i]:.1f}%" if has_truth else "")
                         for i in far[:2]) + (" …" if len(far) > 2 else "")
        fig.add_trace(go.Scatter(
            x=xs[far], y=ys[far], mode="markers", name=f"at the edge ({vals})", hovertext=[hover[i] for i in far],
            hoverinfo="text", meta={"role": "outliers"},
            marker=dict(size=11, symbol=["triangle-down-open" if (yr is not None and est[i] < yr[0]) else
                                         "triangle-up-open" if (yr is not None and est[i] > yr[1]) else
                                         "triangle-left-open" if (xr is not None and x[i] < xr[0]) else
                                         "triangle-right-open" for i in far],
                        color=[HIGHLIGHT if i in topk else "#555" for i in far], line=dict(width=2))))
    pick = "selected (best estimate" + (f", tied with {tied[best]})" if tied[best] else ")")
    fig.add_trace(go.Scatter(x=[xs[best]], y=[ys[best]], mode="markers+text", name=pick,
                             text=[str(df["arch"].iloc[best]) + (f" (tie ×{tied[best] + 1})" if tied[best] else "")],
                             # the label points inwards, so a pick at the right edge is not clipped
                             textposition="middle left" if xs[best] > (np.nanmin(xs) + np.nanmax(xs)) / 2
                             else "middle right",
                             marker=dict(symbol="star", size=18, color="#ffb000", line=dict(color="#333", width=1)),
                             hovertext=[hover[best]], hoverinfo="text", meta={"role": "selected"}))
    # the legend under the axis title: inside the plot it covered points, at the top the title
    layout = base_layout(title, height, legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.22, yanchor="top",
                                                    font=dict(size=11)))
    fig.update_layout(**layout)
    fig.update_xaxes(title_text="ground-truth accuracy (%)" if has_truth else "estimated rank",
                     range=list(xr) if xr is not None else None)
    fig.update_yaxes(title_text="supernet accuracy (%)", range=list(yr) if yr is not None else None)
    return fig


def tau_curve(steps: Sequence[float], taus: Sequence[float], height: int = 300,
              top10: Sequence[float] | None = None, title: str = "Kendall τ vs ground truth") -> go.Figure:
    """Kendall tau of the supernet ranking against training step (from "ranking" events);
    ``top10``: the tau over the true top-10, drawn dashed beside it."""
    if len(steps) != len(taus) or (top10 is not None and len(top10) != len(steps)):
        raise ValueError(f"steps/taus/top10: expected lists of the same length, got {len(steps)}, {len(taus)}"
                         + (f" and {len(top10)}" if top10 is not None else ""))
    fig = go.Figure(go.Scatter(x=list(steps), y=list(taus), mode="lines+markers", name="τ (all ranked)",
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
