"""Training curves: loss and reward against step, a smoothed line over the faint raw values.

The smoothing is an exponential moving average with ``s_0 = x_0`` and
``s_t = smoothing * s_{t-1} + (1 - smoothing) * x_t`` (TensorBoard's slider), which a live view
can extend one value at a time (:func:`ema_extend`) and get exactly what :func:`training_curves`
draws for the whole series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasbench_lab.viz.style import LOSS_COLOR, REWARD_COLOR, base_layout

#: default metrics and their panel titles
METRIC_TITLES = {"loss": "training loss", "reward": "reward (val-minibatch accuracy)"}
_COLORS = (LOSS_COLOR, REWARD_COLOR, "#009e73", "#cc79a7")


def ema_extend(previous: float | None, values: Sequence[float], smoothing: float = 0.9) -> list[float]:
    """Continue the moving average from ``previous`` (None at the start) over ``values``."""
    out = []
    s = previous
    for v in values:
        v = float(v)
        if s is None or not np.isfinite(s):
            s = v
        elif np.isfinite(v):
            s = smoothing * s + (1.0 - smoothing) * v
        out.append(s)
    return out


def smooth(values: Sequence[float], smoothing: float = 0.9) -> list[float]:
    """The moving average of a whole series (same numbers as :func:`ema_extend` from None)."""
    _check_smoothing(smoothing)
    return ema_extend(None, values, smoothing)


def _check_smoothing(smoothing: float) -> None:
    if not 0.0 <= float(smoothing) < 1.0:
        raise ValueError(f"smoothing: expected a number in [0, 1), got {smoothing!r} (e.g. smoothing=0.9)")


def curves_frame(data: pd.DataFrame | Mapping[str, Sequence[Any]] | None) -> pd.DataFrame:
    """A DataFrame with a ``step`` column from a metrics table (``RunStore.metrics``) or a dict of lists."""
    if data is None:
        return pd.DataFrame({"step": []})
    if isinstance(data, Mapping):
        lengths = {k: len(v) for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"data: every list needs the same length, got {lengths} "
                             "(e.g. {'step': [1, 2], 'loss': [2.3, 2.1]})")
        df = pd.DataFrame(dict(data))
    elif isinstance(data, pd.DataFrame):
        df = data.copy()
    else:
        raise ValueError(f"data: expected a DataFrame or a dict of lists, got {type(data).__name__} "
                         "(e.g. {'step': [1, 2], 'loss': [2.3, 2.1]})")
    if "step" not in df.columns:
        if df.index.name == "step":
            df = df.reset_index()
        else:
            df.insert(0, "step", np.arange(1, len(df) + 1))
    return df


def training_curves(data: pd.DataFrame | Mapping[str, Sequence[Any]] | None,
                    metrics: Sequence[str] = ("loss", "reward"), smoothing: float = 0.9,
                    title: str = "Training", height: int = 300) -> go.Figure:
    """One panel per metric: raw values faint, their moving average bold, against step.

    Traces come in metric order, two per metric: ``meta={"role": "raw"|"smooth", "metric": m}``.
    A metric missing from ``data`` still gets its (empty) panel, so a live view can fill it.
    """
    _check_smoothing(smoothing)
    if not metrics:
        raise ValueError("metrics: expected at least one metric name, e.g. metrics=('loss', 'reward')")
    df = curves_frame(data)
    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.1,
                        subplot_titles=[METRIC_TITLES.get(m, m) for m in metrics])
    for i, m in enumerate(metrics):
        color = _COLORS[i % len(_COLORS)]
        if m in df.columns:
            sub = df[["step", m]].dropna()
            x, y = sub["step"].tolist(), sub[m].astype(float).tolist()
        else:
            x, y = [], []
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{m} (raw)", showlegend=False,
                                 line=dict(color=color, width=1), opacity=0.3, hoverinfo="skip",
                                 meta={"role": "raw", "metric": m}), row=1, col=i + 1)
        fig.add_trace(go.Scatter(x=x, y=smooth(y, smoothing), mode="lines", name=m, showlegend=False,
                                 line=dict(color=color, width=2.5),
                                 hovertemplate=f"step %{{x}}<br>{m} %{{y:.4f}}<extra></extra>",
                                 meta={"role": "smooth", "metric": m}), row=1, col=i + 1)
        fig.update_xaxes(title_text="step", row=1, col=i + 1)
    fig.update_layout(**base_layout(title, height, margin=dict(l=55, r=20, t=60, b=45)))
    for ann in fig.layout.annotations:  # subplot titles: a bit smaller than the figure title
        ann.font = dict(size=12, color="#444")
    return fig
