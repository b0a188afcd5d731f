"""The budget of a one-shot run (issue 17, thesis §3.5.4): the cost of each sampled architecture
against the band it must stay in (pure: data in, figure out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

_UNITS = {"flops": ("MFLOPs", 1e6), "params": ("M params", 1e6), "latency": ("ms", 1.0)}


def budget_figure(steps: Sequence[float], values: Sequence[float], budget: dict[str, Any],
                  height: int = 260) -> go.Figure:
    """``values`` (the budget's metric of the architecture sampled at each step) vs ``steps``, the
    band ``[low, high]`` shaded; points outside the band (there should be none) in red."""
    metric = str(budget["metric"])
    unit, scale = _UNITS.get(metric, (metric, 1.0))
    lo, hi = float(budget["low"]) / scale, float(budget["high"]) / scale
    x = np.asarray(steps, float)
    y = np.asarray(values, float) / scale
    inside = (y >= lo) & (y <= hi)
    fig = go.Figure()
    fig.add_hrect(y0=lo, y1=hi, fillcolor="#2e7d32", opacity=0.15, line_width=0)
    fig.add_trace(go.Scatter(x=x[inside], y=y[inside], mode="markers", name="in band",
                             marker={"size": 5, "color": "#1565c0"}, meta={"role": "inside"}))
    fig.add_trace(go.Scatter(x=x[~inside], y=y[~inside], mode="markers", name="outside",
                             marker={"size": 7, "color": "#d32f2f", "symbol": "x"}, meta={"role": "outside"}))
    n_out = int((~inside).sum())
    fig.update_layout(title=f"Budget: {metric} of the sampled architectures ({len(x)} steps, {n_out} outside "
                            f"[{lo:.4g}, {hi:.4g}] {unit})",
                      xaxis_title="step", yaxis_title=unit, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      template="plotly_white", showlegend=False)
    pad = max(hi - lo, 1e-9) * 2
    ymin = min([lo - pad, *(y.tolist() or [lo])])
    ymax = max([hi + pad, *(y.tolist() or [hi])])
    fig.update_yaxes(range=[ymin, ymax])
    return fig
