"""The architecture view: ``dag_figure(space, arch)`` draws ``space.graph(arch)``.

Two layouts, chosen from the graph itself so a new space gets a view without code here:

* **layer chain** (pooling, NB-Macro, any graph whose nodes carry ``resolution``): layers left
  to right on shaded resolution bands, nodes coloured by op, channels above, every place where
  the resolution drops marked (a max-pooling, or a strided layer);
* **cell** (NB-201 and other edge-op cells): nodes left to right in topological order, one
  coloured, labelled edge per op; ``none`` edges are dashed and faint (they carry nothing);
* **trellis** (Auto-DeepLab, a graph with ``graph.graph["trellis"]``): the layer x resolution
  grid with the path drawn on it (:func:`nasbench_lab.viz.trellis.trellis_figure`), and the
  visits of each node when ``visits`` are given.
"""

from __future__ import annotations

import html
import re
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


def wrap_arch(text: str, width: int = 48) -> list[str]:
    """A long canonical string (NB-201 cells, DARTS genotypes) cut into lines of at most about
    ``width`` characters, at its own separators (``+``, ``,``, ``|``), so a title never runs off."""
    text = str(text)
    if len(text) <= width:
        return [text]
    lines, cur = [], ""
    for piece in re.split(r"(?<=[+,])", text):  # keep each separator at the end of its piece
        if cur and len(cur) + len(piece) > width:
            lines.append(cur)
            cur = ""
        while len(piece) > width:  # one piece longer than a line: cut it at a '|' or hard
            cut = piece.rfind("|", 1, width) + 1 or width
            lines.append(cur + piece[:cut])
            cur, piece = "", piece[cut:]
        cur += piece
    return lines + ([cur] if cur else [])


def arch_caption(space: SearchSpace | str, arch: Arch | str) -> str:
    """What a title says about the drawn architecture: its canonical string, or for a space whose
    view draws one cell of a longer genotype (DARTS), which cell it is."""
    space, arch = _space_arch(space, arch)
    return _caption(space.graph(arch), arch)


def _caption(graph: nx.DiGraph, arch: Arch) -> str:
    cell = graph.graph.get("cell")
    return f"{cell} cell (hover the edges for the ops)" if cell else str(arch)


def arch_title(head: str, caption: Any, width: int = 48, max_lines: int = 4) -> tuple[str, int]:
    """``head`` with the architecture caption under it, wrapped (title HTML, number of lines)."""
    lines = wrap_arch(str(caption), width)
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [lines[max_lines - 1][: width - 1] + "…"]
    sub = "<br>".join(f"<span style='font-size:11px;color:#555'>{html.escape(x)}</span>" for x in lines)
    return f"{head}<br>{sub}", 1 + len(lines)


def dag_figure(space: SearchSpace | str, arch: Arch | str, height: int = 300, title: str | None = None,
               title_lines: int | None = None, visits: Any = None) -> go.Figure:
    """The DAG of one architecture (layer chain or cell, see the module docstring).

    Every trace carries ``meta={"role": ..., "op": ...}`` (roles: ``"edge"``, ``"arrow"``,
    ``"layer"``, ``"node"``, ``"label"``, ``"pool"``), so a reader can find edges and layers
    without parsing names. The default title is the space with the (wrapped) architecture
    string; the legend of the ops sits under the drawing (``title_lines``: how many lines a
    custom title takes, counted from its ``<br>`` otherwise).
    """
    space, arch = _space_arch(space, arch)
    graph = space.graph(arch)
    if graph.graph.get("trellis"):
        from nasbench_lab.viz.trellis import trellis_figure, trellis_visits

        counts = trellis_visits(space, visits) if visits else None
        return trellis_figure(space, arch, counts, title=title or f"{space.name}: {arch}", height=height)
    if title is None:
        title, title_lines = arch_title(space.name, _caption(graph, arch))
    if title_lines is None:
        title_lines = title.count("<br>") + 1
    traces, layout = _chain_parts(graph) if is_chain(graph) else _cell_parts(graph)
    # One constructor call: a live view redraws this every second, and plotly's add_*/update_*
    # calls each re-validate (several times slower than building the figure at once).
    for axis in ("xaxis", "yaxis"):
        layout[axis].update(visible=False, fixedrange=True)
    # the title's lines at the top; the ops' legend under the drawing, where it cannot cover the
    # title however many rows it wraps into (plotly grows the margins to fit both)
    base = base_layout(title, height, showlegend=True, margin=dict(l=10, r=10, t=10 + 17 * title_lines, b=10),
                       legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0.0,
                                   font=dict(size=11)))
    base["title"].update(automargin=True, yref="paper", y=1.0, yanchor="bottom", pad=dict(b=8))
    return go.Figure(data=traces, layout={**base, **layout})


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
    low = False
    for k, (r, lo, hi) in enumerate(bands):
        shapes.append(dict(type="rect", x0=lo - 0.45, x1=hi + 0.45, y0=-0.7, y1=0.75, line_width=0,
                           fillcolor=_BAND_COLORS[k % len(_BAND_COLORS)], layer="below"))
        # a one-layer band is narrower than its label: next to another narrow one, take turns
        # between the top and a second line, so "32×32" and "16×16" never run together
        narrow = hi == lo
        low = narrow and not low and k > 0 and bands[k - 1][2] == bands[k - 1][1]
        # a one-layer band is ~40 px wide in a half-width panel: its label at 10 px (~32 px) stays
        # inside it; at 11 px it ran over the band's edge (issue 29)
        annotations.append(dict(x=(lo + hi) / 2, y=0.48 if low else 0.72, text=f"<b>{_fmt_res(r)}</b>",
                                showarrow=False, font=dict(size=10 if narrow else 12, color="#444"), yanchor="top"))

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
        # the kind goes to the legend (adjacent poolings' labels ran together: "maxpoolmaxpool")
        kinds = sorted(set(ptext))
        name = (f"{kinds[0]} (resolution ÷2)" if len(kinds) == 1 else "downsampling (resolution ÷2)")
        traces.append(dict(
            type="scatter",
            x=px, y=py, mode="markers", name=name, text=ptext, hovertext=phover, hoverinfo="text",
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


def _cell_positions(graph: nx.DiGraph, nodes: list[Any]) -> dict[Any, tuple[float, float]]:
    """Left to right by the nodes' ``layer`` when they have one (DARTS: both inputs in layer 0,
    stacked; the intermediate nodes zigzag above and below the middle, so the edges fanning out of
    the inputs leave at different angles and their labels stay apart), else by topological order
    (NB-201: one node per column, on a line)."""
    if not all("layer" in graph.nodes[n] for n in nodes):
        return {n: (float(i), 0.0) for i, n in enumerate(nodes)}
    columns: dict[int, list[Any]] = {}
    for n in nodes:
        columns.setdefault(int(graph.nodes[n]["layer"]), []).append(n)
    stacked = any(len(m) > 1 for m in columns.values())
    last = max(columns)
    pos = {}
    for k, (x, members) in enumerate(sorted(columns.items())):
        for j, n in enumerate(members):
            if len(members) > 1:
                y = 1.8 * ((len(members) - 1) / 2 - j) / max(1, len(members) - 1)
            elif stacked and 0 < x < last:
                y = 0.45 if k % 2 else -0.45
            else:
                y = 0.0
            pos[n] = (float(x), y)
    return pos


def _blocked(p0: tuple[float, float], p1: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """Whether the straight edge p0 -> p1 would run through another node."""
    for q in others:
        if p0[0] < q[0] < p1[0]:
            t = (q[0] - p0[0]) / (p1[0] - p0[0])
            if abs(p0[1] + t * (p1[1] - p0[1]) - q[1]) < 0.12:
                return True
    return False


def _cell_parts(graph: nx.DiGraph) -> tuple[list[dict], dict]:
    nodes = _order(graph)
    pos = _cell_positions(graph, nodes)
    index = {n: i for i, n in enumerate(nodes)}
    traces: list[dict] = []
    seen_ops: set[str] = set()
    lx, ly, ltext, lcolor = [], [], [], []
    up = True
    edges = sorted(graph.edges(data=True), key=lambda e: (pos[e[1]][0] - pos[e[0]][0], index[e[0]]))
    for u, v, d in edges:
        op = str(d.get("op", "edge"))
        span = pos[v][0] - pos[u][0]
        # straight where nothing is in the way; longer skips alternate above and below, higher when longer
        others = [pos[n] for n in nodes if n not in (u, v)]
        h = 0.0
        if _blocked(pos[u], pos[v], others):
            h = (0.34 if span <= 2 else 0.27 * span) * (1 if up else -1)
            up = not up
        x, y = _bezier(pos[u], pos[v], h)
        none, concat = op == "none", op == "concat"
        color = MUTED if concat else op_color(op)
        mid = len(x) // 2
        traces.append(dict(
            type="scatter",
            x=x, y=y, mode="lines", name="output (concat)" if concat else op, legendgroup=op,
            showlegend=op not in seen_ops,
            line=dict(color=color, width=1.2 if concat else 1.5 if none else 3.5,
                      dash="dot" if concat else "dash" if none else "solid"),
            opacity=0.35 if none else 1.0, hoverinfo="text", hovertext=f"{u} → {v}: {op}",
            meta={"role": "edge", "op": op, "source": str(u), "target": str(v)},
        ))
        # The arrowhead: a separate two-point trace so the marker can point along the edge.
        traces.append(dict(
            type="scatter",
            x=x[mid:mid + 2], y=y[mid:mid + 2], mode="markers", legendgroup=op, showlegend=False,
            marker=dict(symbol="arrow", size=[0, 9 if concat else 13], color=color, angleref="previous",
                        line=dict(width=0)),
            opacity=0.35 if none else 1.0, hoverinfo="skip", meta={"role": "arrow", "op": op},
        ))
        seen_ops.add(op)
        if concat:  # every intermediate node goes to the output: a label per edge is noise
            continue
        # the label sits a little past the middle, towards the target: edges fanning out of one
        # input then get their labels apart
        k = int(len(x) * 0.58)
        lx.append(float(x[k]))
        ly.append(float(y[k]) + (0.07 if h >= 0 else -0.07))
        ltext.append(SHORT_LABELS.get(op, op))
        lcolor.append(MUTED if none else color)
    traces.append(dict(type="scatter", x=lx, y=ly, mode="text", text=ltext,
                       # a white halo keeps a label readable where it crosses another edge
                       textfont=dict(size=11, color=lcolor, shadow="0px 0px 3px white, 0px 0px 2px white"),
                       hoverinfo="skip", showlegend=False, meta={"role": "label", "op": ""}))
    last = len(nodes) - 1
    names = [str(graph.nodes[n].get("label", "input" if i == 0 else "output" if i == last else ""))
             for i, n in enumerate(nodes)]
    shown = [_node_text(n) for n in nodes]
    traces.append(dict(
        type="scatter",
        x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text", showlegend=False,
        marker=dict(size=[30 if len(t) <= 2 else 40 for t in shown], color="white", line=dict(color="#333", width=2)),
        text=shown, textfont=dict(size=[13 if len(t) <= 2 else 10 for t in shown], color="#222"),
        hovertext=[f"{n}: {nm}" if nm else str(n) for n, nm in zip(nodes, names)], hoverinfo="text",
        meta={"role": "node", "op": ""},
    ))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    span = max(1.0, max(xs) - min(xs))
    bulge = 0.27 * span + 0.25
    return traces, dict(xaxis=dict(range=[min(xs) - 0.45, max(xs) + 0.45]),
                        yaxis=dict(range=[min(min(ys) - 0.35, -bulge), max(max(ys) + 0.35, bulge)]))


def _node_text(n: Any) -> str:
    """Node names as drawn: DARTS' LaTeX-ish ``c_{k-1}`` reads as ``c[k-1]``."""
    return re.sub(r"_\{(.*?)\}", r"[\1]", str(n))
