"""Views of MCTS sampling (thesis ch. 3-4): the tree, its top levels, the learned dendrogram, and
how often the best architectures are trained (Fig 4.2b).

Every builder takes plain data, the ``nodes`` table of an MCTS sampler snapshot (rows with id,
parent, label, depth, n = visits, C = smoothed reward, uct, height, leaf) or its ``windows``
(sampling counts per window of steps), and returns a ``go.Figure``. :func:`mcts_panel` is the
live panel ``fn(snapshot, context)`` named by the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasbench_lab.viz.style import _FALLBACK, HIGHLIGHT, MUTED, REWARD_COLOR, base_layout, empty_figure

_NODE_KEYS = {"id", "parent", "label", "n", "C"}


def truth_map(benchmark: Any, archs: Sequence[str]) -> dict[str, float]:
    """Ground-truth accuracy of each architecture the benchmark knows (others left out)."""
    out: dict[str, float] = {}
    if benchmark is None:
        return out
    for a in archs:
        try:
            out[str(a)] = float(benchmark.query(a))
        except (KeyError, ValueError):
            continue
    return out


def _check_nodes(nodes: Any) -> list[dict[str, Any]]:
    if not isinstance(nodes, Sequence) or (nodes and not all(isinstance(r, Mapping) and _NODE_KEYS <= set(r)
                                                              for r in nodes)):
        raise ValueError("nodes: expected the 'nodes' table of an MCTS snapshot, rows with keys "
                         f"{sorted(_NODE_KEYS)} (e.g. [{{'id': 0, 'parent': -1, 'label': 'root', 'n': 10, 'C': 0.5}}])")
    return [dict(r) for r in nodes]


def _leaf_counts(rows: list[dict[str, Any]]) -> dict[int, int]:
    """Number of leaves of the (possibly truncated) table below each node."""
    children: dict[int, list[int]] = {}
    for r in rows:
        children.setdefault(r["parent"], []).append(r["id"])
    out: dict[int, int] = {}
    for r in reversed(rows):  # breadth-first rows: children come after parents
        ch = children.get(r["id"], [])
        out[r["id"]] = sum(out[c] for c in ch) if ch else 1
    return out


def _hover(r: dict[str, Any]) -> str:
    u = r.get("uct")
    return (f"{r['label']}<br>visits n = {r['n']}<br>smoothed reward C = {r['C']:.4f}"
            + (f"<br>UCT R = {u:.4f}" if u is not None else ""))


def _hierarchy_trace(rows: list[dict[str, Any]], kind: str) -> go.BaseTraceType:
    visited = [r["C"] for r in rows if r["n"] > 0]
    lo, hi = (min(visited), max(visited)) if visited else (0.0, 1.0)
    if rows[0]["n"] > 0:
        values = [r["n"] for r in rows]
    else:  # nothing visited yet: show the shape of the tree
        leaves = _leaf_counts(rows)
        values = [leaves[r["id"]] for r in rows]
    trace = go.Icicle if kind == "icicle" else go.Sunburst
    return trace(
        ids=[str(r["id"]) for r in rows], parents=["" if r["parent"] < 0 else str(r["parent"]) for r in rows],
        labels=[r["label"] for r in rows], values=values, branchvalues="total",
        marker=dict(colors=[r["C"] if r["n"] > 0 else lo for r in rows], colorscale="Viridis", cmin=lo,
                    cmax=hi if hi > lo else lo + 1e-6, colorbar=dict(title="C", thickness=12)),
        hovertext=[_hover(r) for r in rows], hoverinfo="text", maxdepth=4, meta={"role": "tree"})


def tree_figure(nodes: Sequence[Mapping[str, Any]], kind: str = "icicle", title: str | None = None,
                height: int = 420) -> go.Figure:
    """The tree as an icicle or sunburst: size = visit count, colour = smoothed reward C."""
    rows = _check_nodes(nodes)
    if kind not in ("icicle", "sunburst"):
        raise ValueError(f"kind: expected 'icicle' or 'sunburst', got {kind!r}")
    if not rows:
        return empty_figure("no tree yet (warm-up)", title or "MCTS tree", height)
    fig = go.Figure(_hierarchy_trace(rows, kind))
    fig.update_layout(**base_layout(title or f"MCTS tree · {rows[0]['n']} visits", height,
                                    margin=dict(l=10, r=10, t=45, b=10)))
    return fig


def _tidy_positions(rows: list[dict[str, Any]], max_depth: int) -> tuple[nx.DiGraph, dict[int, tuple[float, float]]]:
    g = nx.DiGraph()
    for r in rows:
        if r["depth"] <= max_depth:
            g.add_node(r["id"], **r)
            if r["parent"] >= 0 and r["parent"] in g:
                g.add_edge(r["parent"], r["id"])
    root = rows[0]["id"]
    pos: dict[int, tuple[float, float]] = {}
    next_x = [0.0]

    def place(v: int) -> float:  # leaves left to right, parents centred over their children
        ch = list(g.successors(v))
        x = float(np.mean([place(c) for c in ch])) if ch else next_x[0]
        if not ch:
            next_x[0] += 1.0
        pos[v] = (x, -float(g.nodes[v]["depth"]))
        return x

    place(root)
    return g, pos


def _link_traces(rows: list[dict[str, Any]], max_depth: int) -> list[go.Scatter]:
    g, pos = _tidy_positions(rows, max_depth)
    ex, ey = [], []
    for u, v in g.edges:
        ex += [pos[u][0], pos[v][0], None]
        ey += [pos[u][1], pos[v][1], None]
    nodes = list(g.nodes)
    data = [g.nodes[v] for v in nodes]
    visited = [d["C"] for d in data if d["n"] > 0]
    lo, hi = (min(visited), max(visited)) if visited else (0.0, 1.0)
    nmax = max([d["n"] for d in data] + [1])
    return [
        go.Scatter(x=ex, y=ey, mode="lines", line=dict(color="#bbb", width=1), hoverinfo="skip",
                   showlegend=False, meta={"role": "edges"}),
        go.Scatter(x=[pos[v][0] for v in nodes], y=[pos[v][1] for v in nodes], mode="markers",
                   marker=dict(size=[8 + 22 * np.sqrt(d["n"] / nmax) for d in data],
                               color=[d["C"] if d["n"] > 0 else lo for d in data], colorscale="Viridis",
                               cmin=lo, cmax=hi if hi > lo else lo + 1e-6, line=dict(color="white", width=1)),
                   hovertext=[_hover(d) for d in data], hoverinfo="text", showlegend=False,
                   meta={"role": "nodes"}),
    ]


def tree_links(nodes: Sequence[Mapping[str, Any]], max_depth: int = 3, title: str | None = None,
               height: int = 360) -> go.Figure:
    """Node-link drawing of the top ``max_depth`` levels; hover shows n, C and the UCT value R."""
    rows = _check_nodes(nodes)
    if not rows:
        return empty_figure("no tree yet (warm-up)", title or "Top of the tree", height)
    fig = go.Figure(_link_traces(rows, max_depth))
    fig.update_layout(**base_layout(title or f"Top {max_depth} levels (size = visits, colour = C)", height))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(title_text="depth", tickvals=[-d for d in range(max_depth + 1)],
                     ticktext=[str(d) for d in range(max_depth + 1)])
    return fig


def _dendrogram_traces(rows: list[dict[str, Any]], truth: Mapping[str, float]) -> tuple[list[go.Scatter], list[str]]:
    children: dict[int, list[int]] = {}
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        children.setdefault(r["parent"], []).append(r["id"])
    order: list[int] = []
    xs: dict[int, float] = {}

    stack = [(rows[0]["id"], False)]
    while stack:  # post-order without recursion (trees can be deep chains)
        v, done = stack.pop()
        ch = children.get(v, [])
        if not ch:
            xs[v] = float(len(order))
            order.append(v)
        elif done:
            xs[v] = float(np.mean([xs[c] for c in ch]))
        else:
            stack.append((v, True))
            stack.extend((c, False) for c in reversed(ch))
    lx, ly = [], []
    for v, ch in children.items():
        if v < 0 or v not in by_id:
            continue
        h = by_id[v]["height"]
        for c in ch:
            lx += [xs[c], xs[c], xs[v], None]
            ly += [by_id[c]["height"], h, h, None]
    lx2, ly2 = [], []  # the horizontal bar across each internal node
    for v, ch in children.items():
        if v >= 0 and v in by_id and ch:
            lx2 += [min(xs[c] for c in ch), max(xs[c] for c in ch), None]
            ly2 += [by_id[v]["height"]] * 2 + [None]
    labels = [str(by_id[v]["label"]) for v in order]
    t = [truth.get(lab) for lab in labels]
    has_truth = any(v is not None for v in t)
    leaf = go.Scatter(
        x=[xs[v] for v in order], y=[0.0] * len(order), mode="markers",
        marker=dict(size=9, color=[v if v is not None else np.nan for v in t] if has_truth else REWARD_COLOR,
                    colorscale="RdYlGn", colorbar=dict(title="truth %", thickness=12) if has_truth else None,
                    line=dict(color="#333", width=0.5)),
        hovertext=[f"{lab}<br>visits {by_id[v]['n']}<br>C = {by_id[v]['C']:.4f}"
                   + (f"<br>ground truth {tv:.2f}%" if tv is not None else "")
                   for v, lab, tv in zip(order, labels, t)],
        hoverinfo="text", showlegend=False, meta={"role": "leaves"})
    links = go.Scatter(x=lx + lx2, y=ly + ly2, mode="lines", line=dict(color="#666", width=1),
                       hoverinfo="skip", showlegend=False, meta={"role": "links"})
    ticks = [f"{lab} ({tv:.1f})" if tv is not None else lab for lab, tv in zip(labels, t)]
    return [links, leaf], ticks


def dendrogram(nodes: Sequence[Mapping[str, Any]], truth: Mapping[str, float] | None = None,
               title: str | None = None, height: int = 420) -> go.Figure:
    """A learned (or rank) binary tree as a dendrogram: leaves labelled by architecture and ground truth.

    Heights are the clustering distances (learned tree) or levels (rank tree). ``truth`` maps
    architecture strings to accuracy (e.g. ``truth_map(benchmark, archs)``).
    """
    rows = _check_nodes(nodes)
    if not rows:
        return empty_figure("no tree yet (warm-up)", title or "Learned tree", height)
    traces, ticks = _dendrogram_traces(rows, truth or {})
    fig = go.Figure(traces)
    fig.update_layout(**base_layout(title or "Tree over architectures (leaf: arch (truth %))", height,
                                    margin=dict(l=55, r=20, t=50, b=110)))
    fig.update_xaxes(tickvals=list(range(len(ticks))), ticktext=ticks, tickangle=-60, tickfont=dict(size=10))
    fig.update_yaxes(title_text="merge height")
    return fig


def _top_k_series(windows: Sequence[Mapping[str, Any]], top: set[str]) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for w in windows:
        counts = w.get("counts", {})
        total = sum(counts.values())
        if total <= 0:
            continue
        end = w.get("end")
        xs.append(float(end if end is not None else w.get("start", 0) + total))
        ys.append(sum(v for k, v in counts.items() if k in top) / total)
    return xs, ys


def top_k_frequency(windows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
                    truth: Mapping[str, float], k: int = 5, title: str | None = None,
                    height: int = 320) -> go.Figure:
    """Share of training steps spent on the ``k`` best architectures (by ground truth), per window.

    ``windows``: a snapshot's ``"windows"`` list, or a mapping label -> windows to compare
    methods (thesis Fig 4.2b). The dotted line is what uniform sampling would give.
    """
    if not isinstance(truth, Mapping) or not truth:
        return empty_figure("no ground truth for this space/dataset", title or f"Top-{k} sampling frequency", height)
    if int(k) < 1:
        raise ValueError(f"k: expected a positive number of top architectures, got {k!r} (e.g. k=5)")
    series = windows if isinstance(windows, Mapping) else {"sampler": windows}
    top = set(sorted(truth, key=lambda a: -truth[a])[: int(k)])
    fig = go.Figure()
    drawn: dict[tuple, list[str]] = {}  # identical curves share one line and one label
    empty = []
    for name, w in series.items():
        xs, ys = _top_k_series(w, top)
        if not xs:
            empty.append(str(name))
            continue
        drawn.setdefault((tuple(xs), tuple(round(y, 12) for y in ys)), []).append(str(name))
    annotations = []
    for i, ((xs, ys), names) in enumerate(drawn.items()):
        label = " = ".join(names)
        color = _FALLBACK[i % len(_FALLBACK)]
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="lines+markers", name=label, showlegend=True,
                                 line=dict(color=color, width=2), meta={"role": "freq", "methods": names}))
        # each line is labelled where it ends, so two methods never hide behind one unnamed line
        annotations.append(dict(x=xs[-1], y=ys[-1], text=label, showarrow=False, xanchor="left", xshift=6,
                                font=dict(size=11, color=color)))
    uniform = len(top) / len(truth)
    if empty:
        annotations.append(dict(text=f"no sampling windows recorded: {', '.join(empty)}", x=0, y=1, xref="paper",
                                yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
                                font=dict(size=10, color=MUTED)))
    fig.update_layout(**base_layout(title or f"How often the true top-{len(top)} are trained", height,
                                    margin=dict(l=55, r=110, t=60, b=45), annotations=annotations))
    fig.add_hline(y=uniform, line=dict(color=MUTED, dash="dot"), annotation_text="uniform")
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text=f"share of steps on top-{len(top)}", rangemode="tozero")
    return fig


def mcts_panel(snapshot: Mapping[str, Any], context: Any = None) -> go.Figure:
    """Live MCTS panel: icicle + top levels; dendrogram (binary trees) and top-5 frequency below."""
    rows = _check_nodes(snapshot.get("nodes") or [])
    benchmark = getattr(context, "benchmark", None)
    binary = snapshot.get("tree_kind") in ("learned", "rank") and snapshot.get("complete") and 0 < len(rows) <= 800
    windows = snapshot.get("windows") or []
    leaves = [r["label"] for r in rows if r.get("leaf") is not None]
    truth = truth_map(benchmark, leaves if leaves else list((snapshot.get("counts") or {}).keys()))
    second = binary or bool(truth and windows)
    specs = [[{"type": "domain"}, {"type": "xy"}]] + ([[{"type": "xy", "colspan": 2}, None]] if binary
                                                      else [[{"type": "xy"}, None]] if second else [])
    titles = ["tree (size = visits, colour = C)", "top levels (hover: UCT)"]
    if binary:
        titles.append("learned tree" if snapshot.get("tree_kind") == "learned" else "rank tree")
    elif second:
        titles.append("top-5 sampling frequency")
    fig = make_subplots(rows=len(specs), cols=2, specs=specs, subplot_titles=titles,
                        row_heights=[0.55, 0.45] if len(specs) == 2 else None, vertical_spacing=0.12)
    status = (f"{snapshot.get('name', 'mcts')} · {snapshot.get('phase', '')} · step {snapshot.get('steps', 0)}"
              f" · T = {snapshot.get('temperature', float('nan')):.4g}"
              + (f" · pick {snapshot['selected']}" if snapshot.get("selected") else ""))
    if rows:
        fig.add_trace(_hierarchy_trace(rows, "icicle"), row=1, col=1)
        for tr in _link_traces(rows, 3):
            fig.add_trace(tr, row=1, col=2)
        fig.update_xaxes(visible=False, row=1, col=2)
        # nodes sit at y = -depth (root on top): the ticks name the depth, 0 1 2 3, never -1 or -0.5
        fig.update_yaxes(title_text="depth", tickvals=[-d for d in range(4)], ticktext=[str(d) for d in range(4)],
                         row=1, col=2)
    else:
        fig.add_annotation(text="no tree yet (uniform warm-up)", x=0.5, y=0.8, xref="paper", yref="paper",
                           showarrow=False, font=dict(color=MUTED, size=13))
    if binary:
        traces, ticks = _dendrogram_traces(rows, truth)
        for tr in traces:
            if tr.meta["role"] == "leaves":
                tr.update(marker_showscale=False)  # the icicle's colour bar is enough
            fig.add_trace(tr, row=2, col=1)
        fig.update_xaxes(tickvals=list(range(len(ticks))), ticktext=ticks if len(ticks) <= 80 else None,
                         tickangle=-60, tickfont=dict(size=10), row=2, col=1)
    elif second:
        top = set(sorted(truth, key=lambda a: -truth[a])[:5])
        xs, ys = _top_k_series(windows, top)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", line=dict(color=HIGHLIGHT), showlegend=False,
                                 meta={"role": "freq"}), row=2, col=1)
        fig.update_yaxes(title_text="share on top-5", rangemode="tozero", row=2, col=1)
    fig.update_layout(**base_layout(status, 420 + (320 if len(specs) == 2 else 0),
                                    margin=dict(l=45, r=20, t=60, b=60 if not binary else 110)))
    return fig
