"""Views of density-aware debiasing (thesis ch. 5, Fig 5.1-5.3) and of flat sampling distributions.

* :func:`density_projection`: every architecture's representation in 2-D (PCA by default, t-SNE
  selectable), colour = estimated density, size = times sampled, hover = arch and ground truth
  (Fig 5.1).
* :func:`density_vs_accuracy`: accuracies sorted by density, e.g. ground truth vs a uniformly
  trained vs a debiased supernet (Fig 5.3).
* :func:`density_correlation`: densities from two representations against each other, e.g.
  gradient vs functional (Fig 5.2).
* :func:`distribution_figure` / :func:`distribution_panel`: a Boltzmann sampler's ``p(a)`` (or an
  independent sampler's per-level ``p``) with how often each architecture was trained.
* :func:`density_panel`: the live panel of the density sampler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from nasbench_lab.viz.mcts import truth_map
from nasbench_lab.viz.style import _FALLBACK, HIGHLIGHT, MUTED, REWARD_COLOR, base_layout, empty_figure


def _vector(name: str, values: Any, n: int | None = None) -> np.ndarray:
    try:
        v = np.asarray(values, float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a sequence of numbers, got {type(values).__name__} "
                         f"(e.g. {name}=[0.8, 1.1, 0.9])") from None
    if n is not None and len(v) != n:
        raise ValueError(f"{name}: expected {n} values (one per architecture), got {len(v)}")
    return v


def _sizes(counts: np.ndarray | None, n: int) -> list[float]:
    if counts is None or not len(counts) or counts.max() <= 0:
        return [9.0] * n
    return (6 + 24 * np.sqrt(counts / counts.max())).tolist()


def _projection_traces(archs: list[str], xy: np.ndarray, density: np.ndarray, counts: np.ndarray | None,
                       truth: Mapping[str, float], showscale: bool = True) -> list[go.Scatter]:
    hover = []
    for i, a in enumerate(archs):
        h = f"{a}<br>density {density[i]:.4g}"
        if counts is not None:
            h += f"<br>sampled {int(counts[i])}x"
        if a in truth:
            h += f"<br>ground truth {truth[a]:.2f}%"
        hover.append(h)
    traces = [go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", name="architectures",
                         marker=dict(size=_sizes(counts, len(archs)), color=density, colorscale="Plasma",
                                     showscale=showscale, colorbar=dict(title="density", thickness=12),
                                     line=dict(color="white", width=0.5)),
                         hovertext=hover, hoverinfo="text", showlegend=False, meta={"role": "archs"})]
    if truth:
        best = max((a for a in archs if a in truth), key=lambda a: truth[a], default=None)
        if best is not None:
            i = archs.index(best)
            traces.append(go.Scatter(x=[xy[i, 0]], y=[xy[i, 1]], mode="markers+text", text=[best],
                                     textposition="top center", name="true best",
                                     marker=dict(symbol="star", size=16, color="#ffb000",
                                                 line=dict(color="#333", width=1)),
                                     hoverinfo="skip", showlegend=False, meta={"role": "best"}))
    return traces


def density_projection(archs: Sequence[str], density: Sequence[float], coords: Any = None,
                       representations: Any = None, counts: Sequence[float] | None = None,
                       truth: Mapping[str, float] | None = None, method: str = "pca",
                       title: str | None = None, height: int = 380) -> go.Figure:
    """Architectures in 2-D: ``coords`` (n x 2) as given, else ``representations`` (n x d) projected
    by ``method`` (``"pca"`` or ``"tsne"``). Colour = density, size = times sampled (Fig 5.1)."""
    archs = [str(a) for a in archs]
    n = len(archs)
    dens = _vector("density", density, n)
    if coords is not None:
        xy = np.asarray(coords, float)
        if xy.shape != (n, 2):
            raise ValueError(f"coords: expected an array of shape ({n}, 2), got {xy.shape}")
    elif representations is not None:
        from nasbench_lab.training.samplers.density import project

        X = np.asarray(representations, float)
        if X.ndim != 2 or X.shape[0] != n:
            raise ValueError(f"representations: expected {n} rows (one per architecture), got shape {X.shape}")
        xy, _ = project(X, method)
    else:
        raise ValueError("coords/representations: give 2-D coords (n x 2) or representations (n x d) to project")
    cnt = None if counts is None else _vector("counts", counts, n)
    fig = go.Figure(_projection_traces(archs, xy, dens, cnt, truth or {}))
    how = "2-D" if coords is not None else {"pca": "PCA", "tsne": "t-SNE"}.get(method, method)
    fig.update_layout(**base_layout(title or f"Density of the representation space ({how})", height))
    fig.update_xaxes(title_text="component 1", zeroline=False)
    fig.update_yaxes(title_text="component 2", zeroline=False)
    return fig


def density_vs_accuracy(archs: Sequence[str], density: Sequence[float],
                        accuracies: Mapping[str, Mapping[str, float] | Sequence[float]],
                        standardize: bool = True, title: str | None = None, height: int = 360) -> go.Figure:
    """Accuracies with architectures sorted from low to high density (Fig 5.3).

    ``accuracies`` maps a series name ("ground truth", "uniform", "debiased") to one value per
    architecture (a sequence aligned with ``archs`` or a mapping arch -> value). With
    ``standardize`` each series is z-scored so that supernet and standalone accuracies share an axis.
    """
    archs = [str(a) for a in archs]
    dens = _vector("density", density, len(archs))
    if not isinstance(accuracies, Mapping) or not accuracies:
        raise ValueError("accuracies: expected a mapping name -> accuracies (e.g. {'ground truth': {...}, "
                         "'uniform': [...]})")
    order = np.argsort(dens, kind="stable")
    fig = go.Figure()
    for i, (name, acc) in enumerate(accuracies.items()):
        v = (np.array([float(acc.get(a, np.nan)) for a in archs]) if isinstance(acc, Mapping)
             else _vector(f"accuracies[{name!r}]", acc, len(archs)))
        if standardize:
            sd = np.nanstd(v)
            v = (v - np.nanmean(v)) / (sd if sd > 0 else 1.0)
        rho = stats.spearmanr(dens, v, nan_policy="omit").statistic if len(archs) > 2 else float("nan")
        fig.add_trace(go.Scatter(x=list(range(len(archs))), y=v[order], mode="lines+markers",
                                 name=f"{name} (ρ with density {rho:+.2f})",
                                 line=dict(color=_FALLBACK[i % len(_FALLBACK)], width=2),
                                 hovertext=[archs[j] for j in order], hoverinfo="text+y", meta={"role": name}))
    fig.update_layout(**base_layout(title or "Accuracy vs density (low density left)", height))
    fig.update_xaxes(title_text="architectures sorted by density")
    fig.update_yaxes(title_text="accuracy (z-score)" if standardize else "accuracy (%)")
    return fig


def density_correlation(density_a: Sequence[float], density_b: Sequence[float], archs: Sequence[str] | None = None,
                        labels: tuple[str, str] = ("gradient", "functional"), title: str | None = None,
                        height: int = 340) -> go.Figure:
    """Two density estimates of the same architectures against each other, with Pearson and
    Spearman correlation in the title (Fig 5.2: gradient vs functional)."""
    a = _vector("density_a", density_a)
    b = _vector("density_b", density_b, len(a))
    names = [str(x) for x in archs] if archs is not None else [str(i) for i in range(len(a))]
    r = stats.pearsonr(a, b).statistic if len(a) > 2 else float("nan")
    rho = stats.spearmanr(a, b).statistic if len(a) > 2 else float("nan")
    fig = go.Figure(go.Scatter(x=a, y=b, mode="markers", marker=dict(color=REWARD_COLOR, size=9, opacity=0.8),
                               hovertext=names, hoverinfo="text+x+y", meta={"role": "archs"}))
    fig.update_layout(**base_layout(title or f"{labels[0]} vs {labels[1]} density · Pearson {r:.2f}, "
                                             f"Spearman {rho:.2f}", height))
    fig.update_xaxes(title_text=f"{labels[0]} density")
    fig.update_yaxes(title_text=f"{labels[1]} density")
    return fig


def distribution_figure(archs: Sequence[str], p: Sequence[float], counts: Sequence[float] | None = None,
                        truth: Mapping[str, float] | None = None, title: str | None = None,
                        height: int = 340) -> go.Figure:
    """Sampling probability per architecture (bars, ordered by ground truth when given, best left)
    and the share of steps it was trained (markers)."""
    archs = [str(a) for a in archs]
    pv = _vector("p", p, len(archs))
    truth = truth or {}
    if truth and all(a in truth for a in archs):
        order = sorted(range(len(archs)), key=lambda i: -truth[archs[i]])
        how = "sorted by ground truth (best left)"
    else:
        order = sorted(range(len(archs)), key=lambda i: -pv[i])
        how = "sorted by probability"
    x = [archs[i] for i in order]
    fig = go.Figure(go.Bar(x=x, y=pv[order], name="p(a) now", marker=dict(color=REWARD_COLOR),
                           hovertext=[f"{archs[i]}<br>p = {pv[i]:.4f}" + (f"<br>truth {truth[archs[i]]:.2f}%"
                                                                         if archs[i] in truth else "")
                                      for i in order], hoverinfo="text", meta={"role": "p"}))
    if counts is not None:
        c = _vector("counts", counts, len(archs))
        share = c / c.sum() if c.sum() > 0 else c
        fig.add_trace(go.Scatter(x=x, y=share[order], mode="markers", name="share of steps so far",
                                 marker=dict(color=HIGHLIGHT, size=7, symbol="diamond"), meta={"role": "share"}))
    fig.add_hline(y=1.0 / max(1, len(archs)), line=dict(color=MUTED, dash="dot"))
    fig.update_layout(**base_layout(title or f"Sampling distribution ({how})", height))
    fig.update_xaxes(type="category", tickangle=-60, tickfont=dict(size=9))
    fig.update_yaxes(title_text="probability", rangemode="tozero")
    return fig


def distribution_panel(snapshot: Mapping[str, Any], context: Any = None) -> go.Figure:
    """Live panel of the Boltzmann (``p`` over archs) and independent (``p`` per level) samplers."""
    status = (f"{snapshot.get('name', '')} · {snapshot.get('phase', '')} · step {snapshot.get('steps', 0)}"
              f" · T = {snapshot.get('temperature', float('nan')):.4g}")
    if snapshot.get("levels"):
        levels = snapshot["levels"]
        width = max(len(lv["options"]) for lv in levels)
        z = [lv["p"] + [None] * (width - len(lv["p"])) for lv in levels]
        text = [lv["options"] + [""] * (width - len(lv["options"])) for lv in levels]
        fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", y=[lv["name"] for lv in levels],
                                   colorscale="Blues", colorbar=dict(title="p", thickness=12),
                                   hovertemplate="%{y}<br>%{text}: p = %{z:.3f}<extra></extra>", meta={"role": "levels"}))
        fig.update_layout(**base_layout(status + " · per-level probabilities", 80 + 40 * len(levels) + 120))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(autorange="reversed")
        return fig
    archs = snapshot.get("archs") or []
    if not archs:
        return empty_figure("no distribution yet", status)
    truth = truth_map(getattr(context, "benchmark", None), archs)
    return distribution_figure(archs, snapshot["p"], snapshot.get("counts"), truth, title=status)


def density_panel(snapshot: Mapping[str, Any], context: Any = None) -> go.Figure:
    """Live panel of the density sampler: the projection, and density against sampling."""
    status = (f"density ({snapshot.get('variant')}, {snapshot.get('representation')}) · "
              f"{snapshot.get('phase', '')} · step {snapshot.get('steps', 0)} · τ = {snapshot.get('temperature')}")
    benchmark = getattr(context, "benchmark", None)
    if snapshot.get("variant") == "prototypes":
        recent = snapshot.get("recent") or []
        if not recent:
            return empty_figure("prototypes not built yet (uniform warm-up)", status)
        fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4],
                            subplot_titles=["candidates (colour = density α, ○ rejected)", "density α of candidates"])
        xy = np.array([r["xy"] for r in recent], float)
        alpha = np.array([r["alpha"] for r in recent], float)
        acc = np.array([r["accepted"] for r in recent], bool)
        for mask, sym, name in ((acc, "circle", "accepted"), (~acc, "circle-open", "rejected")):
            fig.add_trace(go.Scatter(x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=name,
                                     marker=dict(symbol=sym, size=8, color=alpha[mask], colorscale="Plasma",
                                                 cmin=alpha.min(), cmax=alpha.max()),
                                     hovertext=[f"{r['arch']}<br>α = {r['alpha']:.4g}<br>P(accept) = {r['p_accept']:.2f}"
                                                for r, m in zip(recent, mask) if m],
                                     hoverinfo="text", meta={"role": name}), row=1, col=1)
        if snapshot.get("prototypes_xy"):
            pxy = np.array(snapshot["prototypes_xy"], float)
            fig.add_trace(go.Scatter(x=pxy[:, 0], y=pxy[:, 1], mode="markers", name="prototypes",
                                     marker=dict(symbol="x", size=9, color="#333"), meta={"role": "prototypes"}),
                          row=1, col=1)
        fig.add_trace(go.Histogram(x=alpha, nbinsx=30, marker=dict(color=REWARD_COLOR), showlegend=False,
                                   meta={"role": "alpha"}), row=1, col=2)
        fig.add_vline(x=snapshot.get("alpha_mid", 0.0), line=dict(color=HIGHLIGHT, dash="dash"), row=1, col=2)
        rate = snapshot.get("accepted", 0) / max(1, snapshot.get("tried", 0))
        fig.update_layout(**base_layout(f"{status} · accepted {rate:.0%}", 400))
        return fig
    archs = snapshot.get("archs") or []
    if not snapshot.get("density"):
        return empty_figure("densities not estimated yet (uniform warm-up)", status)
    dens = np.asarray(snapshot["density"], float)
    counts = np.asarray(snapshot.get("counts") or np.zeros(len(archs)), float)
    truth = truth_map(benchmark, archs)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45],
                        subplot_titles=["representation space (size = times sampled)",
                                        "sampling probability vs density"])
    if snapshot.get("coords"):
        for tr in _projection_traces(archs, np.asarray(snapshot["coords"], float), dens, counts, truth):
            fig.add_trace(tr, row=1, col=1)
    p = np.asarray(snapshot["p"], float)
    fig.add_trace(go.Scatter(x=dens, y=p, mode="markers", showlegend=False,
                             marker=dict(size=_sizes(counts, len(archs)),
                                         color=[truth.get(a, np.nan) for a in archs] if truth else REWARD_COLOR,
                                         colorscale="RdYlGn", showscale=False),
                             hovertext=[f"{a}<br>p = {pi:.4f}<br>sampled {int(c)}x"
                                        + (f"<br>truth {truth[a]:.2f}%" if a in truth else "")
                                        for a, pi, c in zip(archs, p, counts)],
                             hoverinfo="text", meta={"role": "p_vs_density"}), row=1, col=2)
    fig.add_hline(y=1.0 / max(1, len(archs)), line=dict(color=MUTED, dash="dot"), row=1, col=2)
    fig.update_xaxes(title_text="density (1 / mean distance)", row=1, col=2)
    fig.update_yaxes(title_text="p(a)", row=1, col=2)
    fig.update_layout(**base_layout(f"{status} · estimations {snapshot.get('estimations', 0)}", 400))
    return fig
