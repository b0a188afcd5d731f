"""The architecture view: ``dag_figure(space, arch)`` draws ``space.graph(arch)``.

Two layouts, chosen from the graph itself so a new space gets a view without code here:

* **layer chain** (pooling, NB-Macro, any graph whose nodes carry ``resolution``): layers left
  to right on shaded resolution bands, nodes coloured by op, channels above, every place where
  the resolution drops marked (a max-pooling, or a strided layer);
* **cell** (NB-201 and other edge-op cells): nodes left to right in topological order, one
  coloured, labelled edge per op; ``none`` edges are dashed and faint (they carry nothing).
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import plotly.graph_objects as go

from nasbench_lab import spaces
from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.viz.style import MUTED, base_layout, op_color

#: short edge labels for the cell view (the legend keeps the full op name)
SHORT_LABELS = {
    "none": "none", "skip_connect": "skip", "nor_conv_1x1": "conv 1x1", "nor_conv_3x3": "conv 3x3",
    "avg_pool_3x3": "avg pool", "max_pool_3x3": "max pool", "sep_conv_3x3": "sep 3x3",
    "sep_conv_5x5": "sep 5x5", "dil_conv_3x3": "dil 3x3", "dil_conv_5x5": "dil 5x5",
}
_BAND_COLORS = ("rgba(76,114,176,0.10)", "rgba(85,168,104,0.10)", "rgba(221,132,82,0.10)",
                "rgba(129,114,179,0.10)", "rgba(204,185,116,0.12)", "rgba(100,181,205,0.10)")
_POOL_OPS = {"maxpool", "max_pool", "pool", "avgpool", "downsample", "reduce"}


def _space_arch(space: SearchSpace | str, arch: Arch | str) -> tuple[SearchSpace, Arch]:
    if isinstance(space, str):
        space = spaces.get(space)
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space: expected a SearchSpace or a space name such as 'pooling', got {type(space).__name__}")
    return space, space.parse(arch)


def is_chain(graph: nx.DiGraph) -> bool:
    """True when the graph is a layer chain (nodes carry a resolution), drawn as bands."""
    return graph.number_of_nodes() > 0 and any("resolution" in d for _, d in graph.nodes(data=True))


def dag_figure(space: SearchSpace | str, arch: Arch | str, height: int = 300, title: str | None = None) -> go.Figure:
    """The DAG of one architecture (layer chain or cell, see the module docstring).

    Every trace carries ``meta={"role": ..., "op": ...}`` (roles: ``"edge"``, ``"arrow"``,
    ``"layer"``, ``"node"``, ``"label"``, ``"pool"``), so a reader can find edges and layers
    without parsing names.
    """
    space, arch = _space_arch(space, arch)
    graph = space.graph(arch)
    if title is None:
        title = f"{space.name} <span style='font-size:12px;color:#555'>{arch}</span>"
    traces, layout = _chain_parts(graph) if is_chain(graph) else _cell_parts(graph)
    # One constructor call: a live view redraws this every second, and plotly's add_*/update_*
    # calls each re-validate (several times slower than building the figure at once).
    for axis in ("xaxis", "yaxis"):
        layout[axis].update(visible=False, fixedrange=True)
    return go.Figure(data=traces, layout={**base_layout(title, height, showlegend=True), **layout})


# ----------------------------------------------------------------------------- chain layout
def _order(graph: nx.DiGraph) -> list[Any]:
    try:
        return list(nx.topological_sort(graph))
    except nx.NetworkXUnfeasible:  # a cycle: fall back to insertion order
        return list(graph.nodes)


def _fmt_res(r: Any) -> str:
    return f"{r}×{r}" if isinstance(r, int | np.integer) else str(r)


def _chain_parts(graph: nx.DiGraph) -> tuple[list[dict], dict]:
    nodes = _order(graph)
    xs = {n: float(i) for i, n in enumerate(nodes)}
    traces: list[dict] = []
    shapes: list[dict] = []
    annotations: list[dict] = []

    # Resolution bands: consecutive layers with the same resolution share one shaded rectangle.
    bands: list[tuple[Any, int, int]] = []
    for i, n in enumerate(nodes):
        r = graph.nodes[n].get("resolution")
        if r is None:
            continue
        if bands and bands[-1][0] == r and bands[-1][2] == i - 1:
            bands[-1] = (r, bands[-1][1], i)
        else:
            bands.append((r, i, i))
    for k, (r, lo, hi) in enumerate(bands):
        shapes.append(dict(type="rect", x0=lo - 0.45, x1=hi + 0.45, y0=-0.7, y1=0.75, line_width=0,
                           fillcolor=_BAND_COLORS[k % len(_BAND_COLORS)], layer="below"))
        annotations.append(dict(x=(lo + hi) / 2, y=0.72, text=f"<b>{_fmt_res(r)}</b>", showarrow=False,
                                font=dict(size=12, color="#444"), yanchor="top"))

    # Edges: plain grey links; a drop in resolution (or a pooling edge) gets a red marker.
    ex, ey = [], []
    px, py, ptext, phover = [], [], [], []
    for u, v, d in graph.edges(data=True):
        ex += [xs[u], xs[v], None]
        ey += [0.0, 0.0, None]
        op = str(d.get("op", ""))
        ru, rv = graph.nodes[u].get("resolution"), graph.nodes[v].get("resolution")
        pooled = op.lower() in _POOL_OPS or graph.nodes[v].get("pool_before", False)
        dropped = ru is not None and rv is not None and rv != ru
        if pooled or dropped:
            px.append((xs[u] + xs[v]) / 2)
            py.append(0.0)
            label = op if pooled and op else "stride 2"
            ptext.append(label)
            phover.append(f"{label}: {_fmt_res(ru)} → {_fmt_res(rv)}")
    traces.append(dict(type="scatter", x=ex, y=ey, mode="lines", line=dict(color="#888", width=2), hoverinfo="skip",
                             showlegend=False, meta={"role": "edge", "op": "link"}))

    # One marker trace per op, so the legend names the ops in their fixed colours.
    by_op: dict[str, list[Any]] = {}
    for n in nodes:
        by_op.setdefault(str(graph.nodes[n].get("op", "layer")), []).append(n)
    for op, members in by_op.items():
        chans = [graph.nodes[n].get("channels") for n in members]
        traces.append(dict(
            type="scatter",
            x=[xs[n] for n in members], y=[0.0] * len(members), mode="markers+text", name=op,
            marker=dict(symbol="square", size=[_node_size(c) for c in chans], color=op_color(op),
                        line=dict(color="white", width=1.5)),
            text=[f"{c}" if c is not None else "" for c in chans], textposition="top center",
            textfont=dict(size=10, color="#333"),
            hovertext=[_node_hover(n, graph.nodes[n]) for n in members], hoverinfo="text",
            meta={"role": "layer", "op": op},
        ))
    traces.append(dict(
        type="scatter",
        x=list(xs.values()), y=[-0.4] * len(nodes), mode="text", showlegend=False, hoverinfo="skip",
        text=[str(n) for n in nodes], textfont=dict(size=10, color="#555"), meta={"role": "label", "op": ""},
    ))
    if px:
        traces.append(dict(
            type="scatter",
            x=px, y=py, mode="markers+text", name="downsampling", text=ptext, textposition="bottom center",
            textfont=dict(size=10, color="#c44e52"), hovertext=phover, hoverinfo="text",
            marker=dict(symbol="triangle-down", size=15, color="#c44e52", line=dict(color="white", width=1)),
            meta={"role": "pool", "op": "maxpool"},
        ))
    return traces, dict(shapes=shapes, annotations=annotations, xaxis=dict(range=[-0.7, len(nodes) - 0.3]),
                        yaxis=dict(range=[-0.75, 0.8]))


def _node_size(channels: Any) -> float:
    try:
        return float(min(28.0, 12 + 3 * np.log2(max(8, int(channels)) / 8)))
    except (TypeError, ValueError):
        return 16.0


def _node_hover(name: Any, attrs: dict[str, Any]) -> str:
    parts = [f"<b>{name}</b>"] + [f"{k}: {v}" for k, v in attrs.items() if not isinstance(v, dict | list)]
    return "<br>".join(parts)


# ----------------------------------------------------------------------------- cell layout
def _bezier(p0: tuple[float, float], p1: tuple[float, float], h: float, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic Bezier from p0 to p1 bulging by ``h`` (0 = straight line)."""
    t = np.linspace(0.0, 1.0, n)
    cx, cy = (p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2 + 2 * h
    x = (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * cx + t**2 * p1[0]
    y = (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * cy + t**2 * p1[1]
    return x, y


def _cell_parts(graph: nx.DiGraph) -> tuple[list[dict], dict]:
    nodes = _order(graph)
    pos = {n: (float(i), 0.0) for i, n in enumerate(nodes)}
    index = {n: i for i, n in enumerate(nodes)}
    traces: list[dict] = []
    seen_ops: set[str] = set()
    lx, ly, ltext, lcolor = [], [], [], []
    up = True
    edges = sorted(graph.edges(data=True), key=lambda e: (index[e[1]] - index[e[0]], index[e[0]]))
    for u, v, d in edges:
        op = str(d.get("op", "edge"))
        span = index[v] - index[u]
        # Neighbouring nodes: straight; longer skips alternate above and below, higher when longer.
        h = 0.0 if span == 1 else (0.34 if span == 2 else 0.27 * span) * (1 if up else -1)
        if span > 1:
            up = not up
        x, y = _bezier(pos[u], pos[v], h)
        none = op == "none"
        color = op_color(op)
        mid = len(x) // 2
        traces.append(dict(
            type="scatter",
            x=x, y=y, mode="lines", name=op, legendgroup=op, showlegend=op not in seen_ops,
            line=dict(color=color, width=1.5 if none else 3.5, dash="dash" if none else "solid"),
            opacity=0.35 if none else 1.0, hoverinfo="text", hovertext=f"{u} → {v}: {op}",
            meta={"role": "edge", "op": op, "source": str(u), "target": str(v)},
        ))
        # The arrowhead: a separate two-point trace so the marker can point along the edge.
        traces.append(dict(
            type="scatter",
            x=x[mid:mid + 2], y=y[mid:mid + 2], mode="markers", legendgroup=op, showlegend=False,
            marker=dict(symbol="arrow", size=[0, 13], color=color, angleref="previous", line=dict(width=0)),
            opacity=0.35 if none else 1.0, hoverinfo="skip", meta={"role": "arrow", "op": op},
        ))
        seen_ops.add(op)
        lx.append(float(x[mid]))
        ly.append(float(y[mid]) + (0.09 if h >= 0 else -0.09))
        ltext.append(SHORT_LABELS.get(op, op))
        lcolor.append(MUTED if none else color)
    traces.append(dict(type="scatter", x=lx, y=ly, mode="text", text=ltext, textfont=dict(size=11, color=lcolor),
                             hoverinfo="skip", showlegend=False, meta={"role": "label", "op": ""}))
    last = len(nodes) - 1
    names = [str(graph.nodes[n].get("label", "input" if i == 0 else "output" if i == last else ""))
             for i, n in enumerate(nodes)]
    traces.append(dict(
        type="scatter",
        x=[pos[n][0] for n in nodes], y=[0.0] * len(nodes), mode="markers+text", showlegend=False,
        marker=dict(size=30, color="white", line=dict(color="#333", width=2)),
        text=[str(n) for n in nodes], textfont=dict(size=13, color="#222"),
        hovertext=[f"{n}: {nm}" if nm else str(n) for n, nm in zip(nodes, names)], hoverinfo="text",
        meta={"role": "node", "op": ""},
    ))
    span = max(1, last)
    return traces, dict(xaxis=dict(range=[-0.35, span + 0.35]),
                        yaxis=dict(range=[-0.27 * span - 0.25, 0.27 * span + 0.25]))
