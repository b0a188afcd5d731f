"""One look for every figure: a fixed colour per op name, the status palette, a plotly template.

Colours are keyed by op *name* so the same op has the same colour in every space and view (a
``nor_conv_3x3`` edge of an NB-201 cell, its bar in a frequency heatmap, its legend entry).
Names not in the table get a stable colour from a hash, so an unknown op is still consistent.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

#: fixed colour per op name, shared by all spaces (Okabe-Ito / Tableau-like, colour-blind friendly)
OP_COLORS: dict[str, str] = {
    # NAS-Bench-201 / DARTS cell ops
    "none": "#9e9e9e",
    "skip_connect": "#56b4e9",
    "nor_conv_1x1": "#e69f00",
    "nor_conv_3x3": "#d55e00",
    "avg_pool_3x3": "#009e73",
    "max_pool_3x3": "#0072b2",
    "sep_conv_3x3": "#cc79a7",
    "sep_conv_5x5": "#9467bd",
    "dil_conv_3x3": "#8c564b",
    "dil_conv_5x5": "#bcbd22",
    # macro spaces (layers)
    "identity": "#56b4e9",
    "Identity": "#56b4e9",
    "MB3_K3": "#e69f00",
    "MB6_K5": "#d55e00",
    "conv3x3": "#2a9d8f",
    "basic": "#4c72b0",
    "bottleneck": "#8172b3",
    "maxpool": "#c44e52",
    "pool": "#c44e52",
    "stem": "#2a9d8f",
    "head": "#7f7f7f",
    "classifier": "#7f7f7f",
}

_FALLBACK = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
             "#bcbd22", "#7f7f7f")

#: status label colours of the dashboards
STATUS_COLORS: dict[str, str] = {
    "created": "#6c757d", "running": "#2e7d32", "paused": "#ef6c00", "finished": "#1565c0",
    "failed": "#c62828", "stopped": "#6d4c41",
}

#: the two training-curve colours (loss, reward) and the highlight colour
LOSS_COLOR = "#d55e00"
REWARD_COLOR = "#0072b2"
HIGHLIGHT = "#c62828"
MUTED = "#9e9e9e"
FONT = "Inter, Segoe UI, Helvetica, Arial, sans-serif"


def op_color(op: str) -> str:
    """The colour of an op name (stable across runs and processes for unknown names too)."""
    if op in OP_COLORS:
        return OP_COLORS[op]
    return _FALLBACK[zlib.crc32(str(op).encode()) % len(_FALLBACK)]


_AXIS = dict(gridcolor="#ebebeb", linecolor="#d0d0d0", zerolinecolor="#d0d0d0", ticks="", automargin=True,
             title=dict(standoff=8))
#: a small white template: plotly's "plotly_white" by name costs ~20 ms of validation per figure,
#: too much for views redrawn live, and these few settings are all we use of it
TEMPLATE = go.layout.Template(layout=dict(
    paper_bgcolor="white", plot_bgcolor="white", xaxis=_AXIS, yaxis=_AXIS,
    colorway=["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000"],
    hoverlabel=dict(bgcolor="white", font=dict(family=FONT)),
))


def base_layout(title: str = "", height: int = 320, **kwargs) -> dict:
    """Common layout keywords: white template, compact margins, readable fonts."""
    layout = dict(
        template=TEMPLATE,
        title=dict(text=title, x=0.02, xanchor="left", font=dict(size=15)),
        height=height,
        # a title of several lines (``<br>``) gets the room for them above the plot
        margin=dict(l=55, r=20, t=50 + 18 * str(title).count("<br>"), b=45),
        font=dict(family=FONT, size=12),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    layout.update(kwargs)
    return layout


#: a placeholder's message is wrapped to lines of at most this many characters (a half-width
#: panel is ~500 px: one long line ran past both edges, issue 29)
WRAP = 56


def wrap_text(message: str, width: int = WRAP) -> str:
    """``message`` with ``<br>`` between lines of at most ``width`` characters (existing
    ``<br>`` kept; words never split)."""
    import textwrap

    return "<br>".join(line for part in str(message).split("<br>")
                       for line in (textwrap.wrap(part, width) or [""]))


def empty_figure(message: str, title: str = "", height: int = 320) -> go.Figure:
    """A blank figure that says why it is blank (no data yet, no benchmark...): the message,
    wrapped, in a light dashed frame where the plot will be, so the title heads a panel."""
    fig = go.Figure()
    fig.update_layout(**base_layout(title, height))
    fig.update_xaxes(visible=False, range=[0, 1])
    fig.update_yaxes(visible=False, range=[0, 1])
    fig.add_shape(type="rect", xref="paper", yref="paper", x0=0, x1=1, y0=0, y1=1,
                  line=dict(color="#dddddd", width=1, dash="dot"), fillcolor="#fafafa", layer="below")
    fig.add_annotation(text=wrap_text(message), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=13, color=MUTED))
    return fig


def robust_range(values: np.ndarray, k: float = 3.0) -> tuple[float, float] | None:
    """An axis range that keeps far outliers out (Tukey's fences: quartiles ± ``k`` IQR), or None
    when nothing lies outside them. ``k=3`` marks only "far out" points, never a spread-out cloud."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 4:
        return None
    q1, q3 = np.percentile(v, [25, 75])
    iqr = q3 - q1
    if iqr <= 0:
        return None
    lo, hi = q1 - k * iqr, q3 + k * iqr
    inside = v[(v >= lo) & (v <= hi)]
    if inside.size == v.size or inside.size == 0:
        return None
    pad = 0.06 * max(float(inside.max() - inside.min()), 1e-9)
    return float(inside.min() - pad), float(inside.max() + pad)


#: the colour of a value that is missing (NaN, None) in :func:`scale_colors`
NO_VALUE_COLOR = "#c8c8c8"


def scale_colors(values: Any, scale: str, lo: float, hi: float) -> list[str]:
    """``values`` as CSS colours on the plotly colour scale ``scale`` between ``lo`` and ``hi``
    (clipped at the ends; missing values grey). For bars: plotly.js 3 warns per bar and redraw
    ("Invalid color specifier") when a bar's ``marker.color`` is numeric, thousands of console lines
    in a live panel. Pair the bars with :func:`colorbar_trace` to show the scale."""
    v = np.array([np.nan if x is None else x for x in values], float)
    width = hi - lo if hi > lo else 1.0
    where = np.where(np.isfinite(v), np.clip((v - lo) / width, 0.0, 1.0), 0.0)
    return [c if ok else NO_VALUE_COLOR
            for c, ok in zip(sample_colorscale(scale, where.tolist()), np.isfinite(v))] if len(v) else []


def colorbar_trace(scale: str, lo: float, hi: float, title: str, **colorbar: Any) -> dict[str, Any]:
    """An invisible trace that carries the colour bar of :func:`scale_colors` (role ``colorbar``)."""
    return dict(type="scatter", x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
                marker=dict(color=[lo, hi], cmin=lo, cmax=hi, colorscale=scale, showscale=True,
                            colorbar=dict(title=dict(text=title, side="right"), **colorbar)),
                meta={"role": "colorbar"})
