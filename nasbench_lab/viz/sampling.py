"""Where a method spends its training: sampling frequency, and the accuracy landscape.

* :func:`sampling_frequency`: a bar per architecture (small spaces; sorted by true accuracy
  when a benchmark is given, so a bias toward the good or the bad end is visible at a glance),
  or a heatmap of how often each choice was taken at each level (large spaces);
* :func:`accuracy_distribution`: the histogram of a benchmark's accuracies with one
  architecture marked (where does it sit in the space?);
* :func:`op_count_boxes`: a cell benchmark's accuracy against how many edges use each op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from nasbench_lab import spaces
from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.viz.style import (
    HIGHLIGHT,
    REWARD_COLOR,
    base_layout,
    colorbar_trace,
    empty_figure,
    op_color,
    robust_range,
    scale_colors,
)

#: spaces up to this size get one bar per architecture (zeros included) in "auto" mode
MAX_BARS = 100
#: the bars' colour scale by true accuracy (an architecture the benchmark does not know is grey)
TRUTH_SCALE = "Viridis"
#: tick labels of the architecture axis (px): readable in a half-width panel (issue 29 saw ~7 px)
TICK_SIZE = 11


def _space(space: SearchSpace | str | None) -> SearchSpace | None:
    if space is None or isinstance(space, SearchSpace):
        return space
    return spaces.get(space)


def _check_counts(counts: Any) -> dict[str, float]:
    if not isinstance(counts, Mapping):
        raise ValueError(f"counts: expected a mapping architecture -> count, got {type(counts).__name__} "
                         "(e.g. {'[4,3,3]': 12, '[2,5,3]': 9})")
    out = {}
    for k, v in counts.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"counts: {k!r} has a non-numeric count {v!r} (e.g. {{'[4,3,3]': 12}})") from None
    return out


def sampling_frequency(counts: Mapping[str, float], space: SearchSpace | str | None = None,
                       kind: str = "auto", benchmark: Any = None, top: int = MAX_BARS,
                       title: str | None = None, height: int = 320) -> go.Figure:
    """How often each architecture (``kind="arch"``) or each choice per level (``"choice"``) was trained.

    ``counts`` maps canonical strings to counts (a sampler snapshot's ``"counts"``). With
    ``space``, architectures never sampled show as zero bars (``"arch"``) and the heatmap has
    one row per level with the option labels (``"choice"``, which needs ``space``). With a
    ``benchmark``, bars are ordered by true accuracy (best left) and coloured by it; otherwise by
    count. ``"auto"`` picks bars for spaces of at most ``MAX_BARS`` architectures.
    """
    counts = _check_counts(counts)
    sp = _space(space)
    if kind not in ("auto", "arch", "choice"):
        raise ValueError(f"kind: expected 'auto', 'arch' or 'choice', got {kind!r}")
    if kind == "auto":
        kind = "arch" if sp is None or sp.size <= MAX_BARS else "choice"
    if kind == "choice":
        if sp is None:
            raise ValueError("space: kind='choice' needs the search space (e.g. space='nb201')")
        return _choice_heatmap(counts, sp, title, height)
    return _arch_bars(counts, sp, benchmark, top, title, height)


def _arch_bars(counts: dict[str, float], sp: SearchSpace | None, benchmark: Any, top: int,
               title: str | None, height: int) -> go.Figure:
    if sp is not None and sp.numerable and sp.size <= MAX_BARS:
        keys = [str(a) for a in sp.enumerate()]
        counts = {k: counts.get(k, 0.0) for k in keys} | {k: v for k, v in counts.items() if k not in keys}
    if not counts:
        return empty_figure("nothing sampled yet", title or "Sampling frequency", height)
    total = sum(counts.values()) or 1.0
    acc = None
    if benchmark is not None:
        acc = {k: _safe_query(benchmark, k) for k in counts}
        keys = sorted(counts, key=lambda k: (-(acc[k] if acc[k] is not None else -np.inf), k))
    else:
        keys = sorted(counts, key=lambda k: (-counts[k], k))
    keys = keys[: int(top)]
    y = [counts[k] for k in keys]
    marker: dict[str, Any] = {"color": REWARD_COLOR}
    hover = [f"{k}<br>{counts[k]:.0f} samples ({100 * counts[k] / total:.1f}%)" for k in keys]
    extra: list[dict[str, Any]] = []
    truth: list[float] | None = None
    if acc is not None:
        truth = [acc[k] if acc[k] is not None else np.nan for k in keys]
        marker, colorbar = _truth_colors(truth)
        extra.append(colorbar)
        hover = [h + (f"<br>true accuracy {a:.2f}%" if a is not None else "") for h, a in zip(hover, (acc[k] for k in keys))]
    uniform = total / len(counts)
    order = "by true accuracy (best left)" if acc is not None else "by count"
    # Built in one constructor call (a live panel redraws it): add_*/update_* re-validate each time.
    layout = base_layout(title or f"Sampling frequency per architecture · {int(total)} samples", height,
                         bargap=0.15, showlegend=False)
    layout.update(
        # a paper-wide dotted line at the uniform share (add_hline does the same, much slower)
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=uniform, y1=uniform,
                     line=dict(color="#555", dash="dot", width=1))],
        annotations=[dict(xref="paper", x=0, yref="y", y=uniform, text="uniform", showarrow=False,
                          xanchor="left", yanchor="bottom", font=dict(size=10, color="#555"),
                          bgcolor="rgba(255,255,255,0.7)")],
        xaxis=dict(title=dict(text=f"architecture, {order}"), tickangle=-60, tickfont=dict(size=TICK_SIZE), type="category"),
        yaxis=dict(title=dict(text="times trained")),
    )
    bar = dict(type="bar", x=keys, y=y, marker=marker, hovertext=hover, hoverinfo="text", name="samples",
               meta={"role": "bars"}, customdata=truth)
    return go.Figure(data=[bar, *extra], layout=layout)


def _truth_colors(truth: list[float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bars' colours by true accuracy (CSS colours, see :func:`~nasbench_lab.viz.style.scale_colors`)
    and the trace that carries their colour bar."""
    vals = np.asarray(truth, float)
    finite = vals[np.isfinite(vals)]
    title = "true acc %"
    # one far outlier (a layout that barely trains) would take the whole colour scale and
    # paint every other bar alike: the scale keeps to the rest; the outlier gets its end
    span = robust_range(vals)
    if span is not None:
        out = int(sum(not span[0] <= v <= span[1] for v in finite))
        title = f"true acc %<br>({out} outlier{'s' * (out > 1)} at the ends)"
    lo, hi = span if span is not None else ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
    return {"color": scale_colors(vals, TRUTH_SCALE, lo, hi)}, colorbar_trace(TRUTH_SCALE, lo, hi, title, thickness=12)


def _safe_query(benchmark: Any, arch: str) -> float | None:
    try:
        return float(benchmark.query(arch))
    except (KeyError, ValueError):
        return None


def choice_counts(counts: Mapping[str, float], space: SearchSpace | str) -> tuple[list[str], list[int], np.ndarray]:
    """Per-level choice counts: (level names, genes as columns, matrix levels x genes)."""
    sp = _space(space)
    assert sp is not None
    genes = sorted({g for opts in sp.level_sizes for g in opts})
    col = {g: j for j, g in enumerate(genes)}
    z = np.zeros((sp.num_levels, len(genes)))
    for text, c in _check_counts(counts).items():
        arch = sp.parse(text)
        for level, g in enumerate(arch.genes):
            z[level, col[g]] += c
    return [sp.level_name(i) for i in range(sp.num_levels)], genes, z


def _choice_heatmap(counts: dict[str, float], sp: SearchSpace, title: str | None, height: int) -> go.Figure:
    levels, genes, z = choice_counts(counts, sp)
    total = z.sum(axis=1, keepdims=True)
    frac = np.divide(z, total, out=np.full_like(z, np.nan), where=total > 0)
    # Cells of a choice that cannot appear at a level stay blank (NaN), not zero.
    for i in range(sp.num_levels):
        for j, g in enumerate(genes):
            if g not in sp.level_sizes[i]:
                frac[i, j] = np.nan
    text = [[sp.option_label(i, g) if g in sp.level_sizes[i] else "" for g in genes] for i in range(sp.num_levels)]
    uniform = [1.0 / len(sp.level_sizes[i]) for i in range(sp.num_levels)]
    n = int(sum(counts.values()))
    heat = dict(
        type="heatmap", z=frac, x=[str(g) for g in genes], y=levels, text=text,
        texttemplate="%{text}<br>%{z:.0%}", textfont=dict(size=10), colorscale="Blues", zmin=0,
        zmax=max(0.5, float(np.nanmax(frac)) if np.isfinite(frac).any() else 1),
        colorbar=dict(title=dict(text="share", side="right"), thickness=12, tickformat=".0%"),
        customdata=np.array([[u] * len(genes) for u in uniform]),
        hovertemplate="%{y}: %{text}<br>share %{z:.1%} (uniform %{customdata:.0%})<extra></extra>",
        meta={"role": "heatmap"},
    )
    layout = base_layout(title or f"Choices per level · {n} samples", height)
    layout.update(xaxis=dict(title=dict(text="choice"), type="category"), yaxis=dict(autorange="reversed"))
    return go.Figure(data=[heat], layout=layout)


def accuracies(benchmark: Any) -> np.ndarray:
    """Every accuracy of a benchmark table (``table["acc"]``; a plain sequence is accepted too)."""
    table = getattr(benchmark, "table", None)
    if table is not None and "acc" in getattr(table, "columns", ()):
        return table["acc"].to_numpy(dtype=float)
    if isinstance(benchmark, Mapping):
        return np.asarray(list(benchmark.values()), dtype=float)
    try:
        return np.asarray(list(benchmark), dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"benchmark: expected a Benchmark (with table['acc']) or a list of accuracies, "
                         f"got {type(benchmark).__name__}") from None


def accuracy_distribution(benchmark: Any, arch: Arch | str | None = None, bins: int = 60,
                          title: str | None = None, height: int = 300) -> go.Figure:
    """Histogram of every accuracy in ``benchmark``; ``arch`` (if given) marked with its rank."""
    acc = accuracies(benchmark)
    acc = acc[np.isfinite(acc)]
    if acc.size == 0:
        return empty_figure("the benchmark is empty", title or "Accuracy distribution", height)
    if int(bins) < 1:
        raise ValueError(f"bins: expected a positive number of bins, got {bins!r} (e.g. bins=60)")
    name = f"{getattr(benchmark, 'space', '')}/{getattr(benchmark, 'dataset', '')}".strip("/")
    # One layout that barely trains (digits: 67 % among 97-99 %) would stretch the axis and crush
    # every other bar into one column: the axis keeps to the rest (Tukey's far fences), the bins
    # are ``bins`` over that range (all data stays in the trace), and a note names what lies off it.
    span = robust_range(acc)
    off = 0 if span is None else int(((acc < span[0]) | (acc > span[1])).sum())
    xbins = None
    if off:
        size = (span[1] - span[0]) / int(bins)
        start = span[0] - size * np.ceil((span[0] - acc.min()) / size)
        xbins = dict(start=float(start), end=float(acc.max() + size), size=float(size))
    fig = go.Figure(go.Histogram(x=acc, nbinsx=int(bins), xbins=xbins, marker=dict(color=REWARD_COLOR, line=dict(color="white", width=0.5)),
                                 opacity=0.85, name="architectures", meta={"role": "hist"},
                                 hovertemplate="accuracy %{x}<br>%{y} architectures<extra></extra>"))
    subtitle = ""
    if arch is not None:
        value = float(benchmark.query(arch))
        rank = int(benchmark.rank(arch)) if hasattr(benchmark, "rank") else int((acc > value).sum() + 1)
        top = 100.0 * (acc >= value).mean()  # share of the space at least as good
        fig.add_shape(type="line", xref="x", x0=value, x1=value, yref="paper", y0=0, y1=1,
                      line=dict(color=HIGHLIGHT, width=3))
        left = value < float(np.median(acc))  # put the label on the side with room
        fig.add_annotation(x=value, y=0.97, yref="paper", yanchor="top", xanchor="left" if left else "right",
                           xshift=6 if left else -6, showarrow=False, align="left" if left else "right",
                           text=f"<b>{arch}</b><br>{value:.2f}% · rank {rank}/{acc.size}",
                           font=dict(color=HIGHLIGHT, size=11), bgcolor="rgba(255,255,255,0.85)")
        subtitle = f" · top {top:.2g}%"
    if off:
        lo_out, hi_out = acc[acc < span[0]], acc[acc > span[1]]
        parts = ([f"{lo_out.size} below, down to {lo_out.min():.1f}"] if lo_out.size else []) + (
            [f"{hi_out.size} above, up to {hi_out.max():.1f}"] if hi_out.size else [])
        fig.add_annotation(x=0, y=1.0, xref="paper", yref="paper", xanchor="left", yanchor="top", showarrow=False,
                           text=f"off the axis: {'; '.join(parts)}", font=dict(size=11, color="#555"),
                           bgcolor="rgba(255,255,255,0.85)", name="off-axis")
        lo_x, hi_x = span
        if arch is not None:  # the marked architecture stays on the axis even when it is the outlier
            lo_x, hi_x = min(lo_x, value), max(hi_x, value)
        fig.update_xaxes(range=[lo_x, hi_x])
    fig.update_layout(**base_layout(title or f"Accuracy distribution {name} (n={acc.size}){subtitle}", height,
                                    showlegend=False, bargap=0.02))
    fig.update_xaxes(title_text=getattr(benchmark, "metric", "accuracy (%)"))
    fig.update_yaxes(title_text="architectures")
    return fig


def op_count_boxes(benchmark: Any, space: SearchSpace | str | None = None, title: str | None = None,
                   height: int = 340) -> go.Figure:
    """Accuracy against how many edges of a cell use each op (NAS-Bench-201): one panel per op,
    one box per count, every panel on the same accuracy axis (in %).

    ``benchmark``: a Benchmark of an edge-op cell space (every level offers the same ops).
    Traces: ``meta={"role": "box", "op": name}``.
    """
    sp = _space(space if space is not None else getattr(benchmark, "space", None))
    if sp is None or getattr(benchmark, "table", None) is None:
        raise ValueError("benchmark: expected a Benchmark of a cell space, e.g. benchmarks.get('nb201', 'cifar10')")
    options = list(sp.level_sizes[0])
    if any(list(opts) != options for opts in sp.level_sizes):
        raise ValueError(f"space: {sp.name} does not offer the same ops on every edge; op counts need a cell space "
                         "(e.g. 'nb201')")
    from plotly.subplots import make_subplots

    genes = np.array([a.genes for a in benchmark.archs()])  # in table order, like table["acc"]
    acc = benchmark.table["acc"].to_numpy(dtype=float)
    names = [sp.option_label(0, g) for g in options]
    fig = make_subplots(rows=1, cols=len(options), shared_yaxes=True, horizontal_spacing=0.015,
                        subplot_titles=names)
    for j, (g, name) in enumerate(zip(options, names), start=1):
        counts = (genes == g).sum(axis=1)
        fig.add_trace(go.Box(x=counts, y=acc, name=name, boxpoints=False, marker=dict(color=op_color(name)),
                             line=dict(width=1.2), showlegend=False, meta={"role": "box", "op": name},
                             hovertemplate=f"{name} on %{{x}} edges<br>%{{y:.2f}}%<extra></extra>"), row=1, col=j)
        fig.update_xaxes(title_text="edges" if j == (len(options) + 1) // 2 else None, dtick=1, row=1, col=j)
    label = getattr(benchmark, "dataset", "")
    fig.update_layout(**base_layout(title or f"{sp.name} ({label}): accuracy against how many of the "
                                    f"{sp.num_levels} edges use each op", height, showlegend=False))
    fig.update_yaxes(title_text=f"{label} test accuracy (%)", row=1, col=1)
    fig.update_annotations(font_size=11)
    return fig
