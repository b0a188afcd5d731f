"""Black-box search views: pure builders, data in, ``go.Figure`` out.

- :func:`regret_figure`: anytime regret of each strategy (mean line, confidence band) with the
  exact random-search expectation as a dashed reference (``Arena.curves`` / ``Arena.reference``);
- :func:`population_figure`: the evolution population on a 2-D PCA projection of the one-hot
  encoding, coloured by accuracy, one animation frame per snapshot;
- :func:`predictor_figure`: the BO ensemble's out-of-sample predictions against the observed
  accuracy, with the ensemble spread as error bars;
- :func:`reinforce_figure`: REINFORCE per-choice probabilities over time (a heatmap);
- :func:`proxy_figure`: each zero-cost proxy against the ground truth (one panel per proxy);
- :func:`tree_figure`: MCTS visit counts of the first levels of the decision tree (sunburst).

The ``*_panel(snapshot, context)`` functions adapt them to :mod:`nasbench_lab.viz.panels`, so a
dashboard shows a strategy's or an arena's snapshot without knowing the method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from nasbench_lab import spaces
from nasbench_lab.spaces import SearchSpace
from nasbench_lab.viz.style import MUTED, base_layout, empty_figure

#: a fixed colour per strategy, so every view agrees
STRATEGY_COLORS: dict[str, str] = {
    "random": "#7f7f7f", "rea": "#d55e00", "ls": "#009e73", "reinforce": "#cc79a7", "bo": "#0072b2",
    "boltzmann": "#e69f00", "mcts": "#56b4e9", "hyperband": "#8c564b",
}
_FALLBACK = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#bcbd22")


def strategy_color(name: str, i: int = 0) -> str:
    return STRATEGY_COLORS.get(name, _FALLBACK[i % len(_FALLBACK)])


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _space(space: SearchSpace | str) -> SearchSpace:
    return spaces.get(space) if isinstance(space, str) else space


# ----------------------------------------------------------------------------- regret curves
#: on a log axis, regret values below this (the optimum found: 0) are drawn at it
LOG_FLOOR = 1e-3


def log_lower_edge(mean: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The band's lower edge on a log axis: the upper edge mirrored about the mean (mean²/hi).

    With a handful of seeds the t interval of the mean regret reaches zero or below, which a log
    axis cannot show: its lower edge fell to the floor and the band looked like a wall. Drawn
    symmetric on the log axis instead (mean ×/÷ hi/mean), the band keeps the upper edge's
    information and stays readable; a mean of 0 (every seed found the optimum) stays at 0.
    """
    mean, hi = np.asarray(mean, float), np.asarray(hi, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((mean > 0) & (hi > 0), mean * mean / hi, 0.0)
    return np.minimum(out, mean)


def regret_traces(curves: pd.DataFrame, strategies: Sequence[str], reference: pd.DataFrame | None = None,
                  floor: float | None = LOG_FLOOR) -> list[go.Scatter]:
    """Two traces per strategy (band polygon, mean line), then the reference line, always in that
    order and number, so a live view can restyle them in place
    (``meta={"role": "band"|"mean"|"reference", "strategy": name}``). ``floor``: the figure is on
    a log axis: values below it are drawn at it (zero regret has no place on a log axis) and the
    band's lower edge is :func:`log_lower_edge`; None draws the band as ``lo``..``hi``."""

    def clip(v: np.ndarray) -> np.ndarray:
        return np.maximum(v, floor) if floor is not None else v

    traces: list[go.Scatter] = []
    for i, name in enumerate(strategies):
        sub = curves[curves["strategy"] == name] if len(curves) else curves
        x = sub["x"].to_numpy(float) if len(sub) else np.array([])
        color = strategy_color(name, i)
        band_x = np.concatenate([x, x[::-1]]) if len(x) else []
        hi = sub["hi"].to_numpy(float) if len(x) else np.array([])
        lo = sub["lo"].to_numpy(float) if len(x) else np.array([])
        if floor is not None and len(x):
            lo = log_lower_edge(sub["mean"].to_numpy(float), hi)
        band_y = clip(np.concatenate([hi, lo[::-1]])) if len(x) else []
        traces.append(go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor=_rgba(color, 0.15), mode="lines",
                                 line=dict(width=0), hoverinfo="skip", showlegend=False, legendgroup=name,
                                 name=f"{name} band", meta={"role": "band", "strategy": name}))
        traces.append(go.Scatter(x=x, y=clip(sub["mean"].to_numpy(float)) if len(sub) else [], mode="lines",
                                 line=dict(color=color, width=2), name=name, legendgroup=name,
                                 meta={"role": "mean", "strategy": name},
                                 hovertemplate=f"{name}<br>x=%{{x:.4g}}<br>regret=%{{y:.3f}}<extra></extra>"))
    rx = reference["x"].to_numpy(float) if reference is not None else []
    ry = clip(reference["regret"].to_numpy(float)) if reference is not None else []
    traces.append(go.Scatter(x=rx, y=ry, mode="lines", line=dict(color="black", width=1.5, dash="dash"),
                             name="random (exact expectation)", meta={"role": "reference", "strategy": "random*"},
                             hovertemplate="E[random]<br>x=%{x:.4g}<br>regret=%{y:.3f}<extra></extra>"))
    return traces


def regret_figure(curves: pd.DataFrame, reference: pd.DataFrame | None = None, by: str = "query",
                  strategies: Sequence[str] | None = None, log_y: bool = True, title: str | None = None,
                  height: int = 360) -> go.Figure:
    """Anytime regret: mean over seeds (line) and its confidence band per strategy, plus the exact
    expectation of random search (dashed). ``curves``: columns strategy, x, mean, lo, hi (as
    ``Arena.curves``); ``reference``: columns x, regret (as ``Arena.reference``). On the default
    log axis, values below :data:`LOG_FLOOR` (a found optimum) are drawn at the floor and the band
    is symmetric in log space (:func:`log_lower_edge`)."""
    need = {"strategy", "x", "mean", "lo", "hi"}
    if not need.issubset(curves.columns):
        raise ValueError(f"curves: expected columns {sorted(need)} (Arena.curves()), got {list(curves.columns)}")
    if strategies is None:
        strategies = list(dict.fromkeys(curves["strategy"]))
    fig = go.Figure(regret_traces(curves, strategies, reference, floor=LOG_FLOOR if log_y else None))
    xtitle = "queries" if by == "query" else "simulated time (s)"
    ytitle = f"regret (% points; 0 drawn at {LOG_FLOOR:g})" if log_y else "regret (% points)"
    # the legend under the axis title: at the top it covered the title in a narrow widget
    fig.update_layout(**base_layout(title if title is not None else "Regret (optimum − accuracy of the incumbent)",
                                    height, legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.2,
                                                        yanchor="top")),
                      xaxis=dict(title=xtitle, type="log" if by == "time" else "linear"),
                      yaxis=dict(title=ytitle, type="log" if log_y else "linear"))
    return fig


# ----------------------------------------------------------------------------- evolution population
def _frames(snapshots: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(snapshots, Mapping):
        return [snapshots]
    return [s for s in snapshots if s]


def population_figure(snapshots: Mapping[str, Any] | Sequence[Mapping[str, Any]], space: SearchSpace | str,
                      title: str = "Evolution population (PCA of the one-hot encoding)", height: int = 420) -> go.Figure:
    """The population of each snapshot (keys ``population``, ``acc``, ``n_told``) on the first two
    principal components of the one-hot encodings of every architecture shown, so all frames share
    axes; colour = accuracy on a shared scale. Several snapshots become animation frames."""
    from sklearn.decomposition import PCA

    sp = _space(space)
    frames = _frames(snapshots)
    if not frames or not any(f.get("population") for f in frames):
        return empty_figure("no population yet", title, height)
    archs = list(dict.fromkeys(a for f in frames for a in f.get("population", [])))
    x = np.stack([sp.encode(sp.parse(a), "onehot") for a in archs]).astype(float)
    if len(archs) >= 2 and np.ptp(x, axis=0).any():
        k = min(2, len(archs) - 1, x.shape[1])
        xy = PCA(n_components=k, random_state=0).fit_transform(x)
        if k == 1:
            xy = np.column_stack([xy[:, 0], np.zeros(len(xy))])
    else:
        xy = np.zeros((len(archs), 2))
    pos = {a: xy[i] for i, a in enumerate(archs)}
    accs = np.concatenate([np.asarray(f.get("acc", []), float) for f in frames])
    cmin, cmax = (float(np.nanmin(accs)), float(np.nanmax(accs))) if accs.size else (0.0, 1.0)

    def scatter(f: Mapping[str, Any]) -> go.Scatter:
        pop = list(f.get("population", []))
        acc = np.asarray(f.get("acc", []), float)
        pts = np.array([pos[a] for a in pop]) if pop else np.zeros((0, 2))
        best = int(np.argmax(acc)) if len(acc) else -1
        return go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", text=pop,
                          marker=dict(color=acc, cmin=cmin, cmax=cmax, colorscale="Viridis", size=9,
                                      line=dict(width=[2 if i == best else 0 for i in range(len(pop))],
                                                color="#c62828"),
                                      colorbar=dict(title="acc", thickness=12)),
                          hovertemplate="%{text}<br>acc=%{marker.color:.2f}<extra></extra>",
                          name="population", meta={"role": "population"})

    fig = go.Figure([scatter(frames[-1])])
    layout = base_layout(title, height, xaxis=dict(title="PC 1"), yaxis=dict(title="PC 2"), showlegend=False)
    if len(frames) > 1:
        names = [str(f.get("n_told", i)) for i, f in enumerate(frames)]
        fig.frames = [go.Frame(data=[scatter(f)], name=n) for f, n in zip(frames, names)]
        layout["sliders"] = [dict(active=len(frames) - 1, currentvalue=dict(prefix="queries told: "),
                                  steps=[dict(method="animate", label=n,
                                              args=[[n], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
                                         for n in names])]
        layout["margin"] = dict(l=55, r=20, t=50, b=90)
    fig.update_layout(**layout)
    return fig


# ----------------------------------------------------------------------------- BO predictor
def predictor_figure(snapshot: Mapping[str, Any], title: str = "BO predictor: predicted vs observed",
                     height: int = 360) -> go.Figure:
    """Out-of-sample predictions (made before each query; keys ``pred_mean``, ``pred_std``,
    ``observed``, ``pred_arch``): predicted mean with ±1 ensemble std against the observed value,
    the diagonal, and the Spearman correlation in the title."""
    mean = np.asarray(snapshot.get("pred_mean", []), float)
    std = np.asarray(snapshot.get("pred_std", []), float)
    obs = np.asarray(snapshot.get("observed", []), float)
    if len(mean) == 0:
        return empty_figure("no predictions yet (the predictor starts after the initial random queries)",
                            title, height)
    rho = float(stats.spearmanr(mean, obs).statistic) if len(mean) > 2 and np.ptp(mean) > 0 and np.ptp(obs) > 0 \
        else float("nan")
    lo, hi = float(min(mean.min(), obs.min())), float(max(mean.max(), obs.max()))
    fig = go.Figure([
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color=MUTED, dash="dot"), name="y = x",
                   hoverinfo="skip", meta={"role": "diagonal"}),
        go.Scatter(x=mean, y=obs, mode="markers", error_x=dict(type="data", array=std, color="#9ecae1", thickness=1),
                   marker=dict(color=np.arange(len(mean)), colorscale="Blues", size=7,
                               colorbar=dict(title="query", thickness=12)),
                   text=list(snapshot.get("pred_arch", [])), name="queries", meta={"role": "prediction"},
                   hovertemplate="%{text}<br>predicted %{x:.2f}<br>observed %{y:.2f}<extra></extra>"),
    ])
    fig.update_layout(**base_layout(f"{title} (Spearman {rho:.2f}, n={len(mean)})", height,
                                    xaxis=dict(title="predicted (ensemble mean ± std)"),
                                    yaxis=dict(title="observed"), showlegend=False))
    return fig


# ----------------------------------------------------------------------------- REINFORCE
def reinforce_figure(snapshot: Mapping[str, Any], title: str = "REINFORCE: choice probabilities over time",
                     height: int | None = None) -> go.Figure:
    """Heatmap: one row per (level, option), one column per recorded step, colour = probability
    (keys ``history``, ``history_steps``, ``levels``, ``options`` of a REINFORCE snapshot)."""
    hist = snapshot.get("history") or []
    if not hist:
        return empty_figure("no policy yet", title, height or 320)
    levels, options = list(snapshot["levels"]), [list(o) for o in snapshot["options"]]
    rows = [f"{levels[i]}: {o}" for i, opts in enumerate(options) for o in opts]
    z = np.array([[p for level in frame for p in level] for frame in hist], dtype=float).T
    fig = go.Figure(go.Heatmap(z=z, x=list(snapshot.get("history_steps", range(len(hist)))), y=rows,
                               colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="p", thickness=12),
                               hovertemplate="%{y}<br>after %{x} results<br>p=%{z:.3f}<extra></extra>"))
    fig.update_layout(**base_layout(title, height or max(300, 16 * len(rows) + 90),
                                    xaxis=dict(title="results told"),
                                    yaxis=dict(autorange="reversed", tickfont=dict(size=10))))
    return fig


# ----------------------------------------------------------------------------- proxies
def proxy_figure(df: pd.DataFrame, proxies: Sequence[str] | None = None, cols: int = 3,
                 title: str = "Zero-cost proxies against the ground truth", height: int | None = None) -> go.Figure:
    """One panel per proxy: ground truth against the proxy's *rank percentile* (proxies span
    wildly different scales, synflow ~1e30, and only the order matters), with Spearman and Kendall
    in each panel title. ``df``: columns ``arch``, ``truth`` and one per proxy (``proxies.frame``)."""
    if proxies is None:
        proxies = [c for c in df.columns if c not in ("arch", "truth", "seconds")]
    if not proxies:
        raise ValueError("proxies: expected at least one proxy column, e.g. proxies.frame(['naswot'], ...)")
    cols = max(1, min(cols, len(proxies)))
    nrows = int(np.ceil(len(proxies) / cols))
    titles = []
    for p in proxies:
        ok = df[[p, "truth"]].dropna()
        rho = stats.spearmanr(ok[p], ok["truth"]).statistic if len(ok) > 2 else float("nan")
        tau = stats.kendalltau(ok[p], ok["truth"]).statistic if len(ok) > 2 else float("nan")
        titles.append(f"{p}  ρ={rho:.2f} τ={tau:.2f}")
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=titles, horizontal_spacing=0.06, vertical_spacing=0.12)
    for i, p in enumerate(proxies):
        pct = df[p].rank(pct=True).to_numpy(float)
        fig.add_trace(go.Scatter(x=pct, y=df["truth"], mode="markers", text=df["arch"],
                                 marker=dict(size=5, color="#0072b2", opacity=0.7), name=p, meta={"proxy": p},
                                 hovertemplate="%{text}<br>rank pct %{x:.2f}<br>truth %{y:.2f}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(**base_layout(title, height or 260 * nrows + 80, showlegend=False,
                                    margin=dict(l=55, r=20, t=80, b=45)))
    fig.update_xaxes(title_text="proxy rank (percentile)", range=[0, 1.02])
    fig.update_yaxes(title_text="truth")
    return fig


# ----------------------------------------------------------------------------- MCTS tree
def tree_figure(snapshot: Mapping[str, Any], title: str = "MCTS: visits of the first levels",
                height: int = 420) -> go.Figure:
    """Sunburst of the visited nodes (keys ``nodes``, ``labels``, ``visits``, ``q``, ``root_visits``):
    area = visit count, colour = normalised mean accuracy below the node."""
    nodes = [tuple(n) for n in snapshot.get("nodes", [])]
    if not nodes:
        return empty_figure("no visits yet", title, height)
    ids = ["root"] + ["/".join(map(str, n)) for n in nodes]
    parents = [""] + ["root" if len(n) == 1 else "/".join(map(str, n[:-1])) for n in nodes]
    labels = ["root"] + list(snapshot.get("labels", []))
    values = [int(snapshot.get("root_visits", sum(v for n, v in zip(nodes, snapshot["visits"]) if len(n) == 1)))]
    values += [int(v) for v in snapshot["visits"]]
    colors = [0.5] + [float(q) for q in snapshot.get("q", [])]
    fig = go.Figure(go.Sunburst(ids=ids, parents=parents, labels=labels, values=values, branchvalues="total",
                                marker=dict(colors=colors, colorscale="RdYlGn", cmin=0, cmax=1,
                                            colorbar=dict(title="Q", thickness=12)),
                                hovertemplate="%{label}<br>visits %{value}<br>Q %{color:.2f}<extra></extra>"))
    fig.update_layout(**base_layout(title, height, margin=dict(l=10, r=10, t=50, b=10)))
    return fig


# ----------------------------------------------------------------------------- panels
def arena_curves_from_snapshot(snapshot: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Mean-regret curves (no band) and the reference from an Arena snapshot."""
    rows = []
    for name, mean in (snapshot.get("mean_regret") or {}).items():
        m = np.asarray(mean, float)
        x = np.arange(1, len(m) + 1)
        rows.append(pd.DataFrame({"strategy": name, "x": x, "mean": m, "lo": m, "hi": m}))
    curves = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["strategy", "x", "mean", "lo", "hi"])
    ref = snapshot.get("reference")
    reference = pd.DataFrame({"x": np.arange(1, len(ref) + 1), "regret": ref}) if ref else None
    return curves, reference


def arena_panel(snapshot: dict[str, Any], context: Any = None) -> go.Figure:
    curves, reference = arena_curves_from_snapshot(snapshot)
    return regret_figure(curves, reference, strategies=snapshot.get("strategies"),
                         title=f"Mean regret over seeds ({snapshot.get('step', 0)}/{snapshot.get('total', 0)} queries)")


def population_panel(snapshot: dict[str, Any], context: Any) -> go.Figure:
    return population_figure(snapshot, context.space)


def predictor_panel(snapshot: dict[str, Any], context: Any = None) -> go.Figure:
    return predictor_figure(snapshot)


def reinforce_panel(snapshot: dict[str, Any], context: Any = None) -> go.Figure:
    return reinforce_figure(snapshot)


def tree_panel(snapshot: dict[str, Any], context: Any = None) -> go.Figure:
    return tree_figure(snapshot)


__all__ = ["LOG_FLOOR", "STRATEGY_COLORS", "strategy_color", "regret_traces", "regret_figure", "population_figure",
           "predictor_figure", "reinforce_figure", "proxy_figure", "tree_figure", "arena_panel", "population_panel",
           "predictor_panel", "reinforce_panel", "tree_panel", "arena_curves_from_snapshot"]
