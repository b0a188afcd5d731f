"""Method panels: how a live view finds the figure for a method's snapshot.

A sampler's (or any job's) ``snapshot()`` may name its panel builder with a ``"panel"`` key,
``"module:function"``. The builder is a pure function ``fn(snapshot, context) -> go.Figure``; the
dashboard calls it on every new snapshot and copies the result into its FigureWidget. Keeping the
name in the snapshot means a new method brings its own view without touching the dashboard.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from nasbench_lab.spaces import SearchSpace


@dataclass
class PanelContext:
    """What a panel may need besides the snapshot."""

    space: SearchSpace
    benchmark: Any = None  # nasbench_lab.benchmarks.Benchmark or None
    method: str = ""


PanelFn = Callable[[dict[str, Any], PanelContext], go.Figure]


def resolve(path: str) -> PanelFn:
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"panel: expected 'module:function', got {path!r}")
    return getattr(importlib.import_module(module), name)


def panel_figure(snapshot: dict[str, Any] | None, context: PanelContext) -> go.Figure | None:
    """The panel figure of a snapshot, or None when the snapshot names no panel."""
    if not snapshot or not snapshot.get("panel"):
        return None
    return resolve(snapshot["panel"])(snapshot, context)
