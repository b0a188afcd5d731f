"""Views of a differentiable search, from one snapshot of :class:`DifferentiableTrainer` (pure).

* :func:`alpha_trajectories`: small multiples, one subplot per edge (per layer for the pooling
  relaxation), one line per op: its mixing weight (softmax; sigmoid for FairDARTS) over steps;
* :func:`monitor_figure`: skip count (with the collapse threshold), dominant Hessian eigenvalue
  (with ``ratio x`` its early value), and the benchmark accuracy of the derived cell (NB-201:
  the slide towards the all-skip cell, 54.30 % on CIFAR-10, is drawn as a reference line);
* :func:`derived_cell_figure`: the derived architecture's DAG (:func:`nasbench_lab.viz.dag.dag_figure`);
* :func:`alpha_panel`: all of it in one figure with an alarm banner; the dashboard's panel
  (``snapshot["panel"] == "nasbench_lab.viz.alphas:alpha_panel"``).

Every trace carries ``meta={"role": ..., ...}`` (``"alpha"`` with ``edge``/``op``, ``"skip"``,
``"eigenvalue"``, ``"table_acc"``, ``"threshold"``, ``"edge"``/``"node"`` for the DAG) so tests
and live views find them without parsing names.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasbench_lab.viz.style import MUTED, base_layout, empty_figure, op_color

__all__ = ["alpha_trajectories", "monitor_figure", "derived_cell_figure", "alpha_panel", "ALL_SKIP_CIFAR10"]

#: CIFAR-10 accuracy of the all-skip NB-201 cell, where DARTS collapses
ALL_SKIP_CIFAR10 = 54.30
_ALARM_COLOR = "#c62828"


def _check(snapshot: Any) -> dict[str, Any]:
    if not isinstance(snapshot, dict) or "groups" not in snapshot or "history" not in snapshot:
        raise ValueError("snapshot: expected a DifferentiableTrainer snapshot (a dict with 'groups' and 'history'), "
                         "e.g. job.snapshot() or the data of a run's 'snapshot' event")
    return snapshot


def _edges(snapshot: dict[str, Any], group: str | None) -> list[tuple[str, int, str]]:
    """(group, edge index, subplot title) for every edge shown."""
    groups = snapshot["groups"]
    if group is not None and group not in groups:
        raise ValueError(f"group: expected one of {list(groups)}, got {group!r}")
    names = [group] if group else list(groups)
    multi = len(names) > 1
    return [(g, e, f"{g}: {label}" if multi else label)
            for g in names for e, label in enumerate(groups[g]["edges"])]


def _grid(n: int) -> int:
    """Columns for ``n`` small multiples: 6 edges in one row, 28 in 4 rows of 7, 9 in 2 of 5."""
    return max(1, min(7, math.ceil(n / math.ceil(n / 7)))) if n else 1


def _trajectory_traces(snapshot: dict[str, Any], g: str, e: int, legend: set[str]) -> list[go.Scatter]:
    hist = snapshot["history"]
    steps = hist["step"]
    series = hist["weights"][g]
    out = []
    for k, op in enumerate(snapshot["groups"][g]["ops"]):
        out.append(go.Scatter(
            x=steps, y=[w[e][k] for w in series], mode="lines", name=op, legendgroup=op,
            showlegend=op not in legend, line=dict(color=op_color(op), width=2, dash="dot" if op == "none" else None),
            hovertemplate=f"{op}<br>step %{{x}}<br>weight %{{y:.3f}}<extra></extra>",
            meta={"role": "alpha", "group": g, "edge": e, "op": op}))
        legend.add(op)
    return out


def weight_range(snapshot: dict[str, Any], edges: list[tuple[str, int, str]]) -> list[float]:
    """The y range of the trajectories: the weights' own span, padded, within [0, 1].

    A fixed 0-1 axis put every line of a young run at 1/K (0.2 for 5 ops) and made its changes
    invisible; the small multiples share this range, so the edges stay comparable.
    """
    values = [w[e][k] for g, e, _ in edges for w in snapshot["history"]["weights"][g] for k in range(len(w[e]))]
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return [0.0, 1.0]
    lo, hi = min(values), max(values)
    pad = max(0.01, 0.1 * (hi - lo))
    return [max(0.0, lo - pad), min(1.0, hi + pad)]


def _uniform_line(snapshot: dict[str, Any], g: str) -> float | None:
    """1/K, where softmax weights start (no such line for FairDARTS' independent sigmoids)."""
    if snapshot.get("weight_kind", "softmax") == "sigmoid":
        return None
    return 1.0 / max(1, len(snapshot["groups"][g]["ops"]))


def _uniform_lines(fig: go.Figure, snapshot: dict[str, Any], edges: list[tuple[str, int, str]], cols: int) -> None:
    """A dotted line at 1/K in every trajectory subplot, added as plain shapes in one layout
    update (add_hline per subplot re-validates the figure each time: too slow for a live panel)."""
    shapes = list(fig.layout.shapes or ())
    for i, (g, _e, _) in enumerate(edges):
        u = _uniform_line(snapshot, g)
        if u is None:
            continue
        sub = fig.get_subplot(i // cols + 1, i % cols + 1)
        x, y = sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")
        shapes.append(dict(type="line", xref=f"{x} domain", x0=0, x1=1, yref=y, y0=u, y1=u, layer="below",
                           line=dict(color=MUTED, width=1, dash="dot")))
    fig.update_layout(shapes=shapes)


def alpha_trajectories(snapshot: dict[str, Any], group: str | None = None, cols: int | None = None,
                       height: int | None = None) -> go.Figure:
    """Mixing weight of every op on every edge over the steps (one subplot per edge)."""
    snapshot = _check(snapshot)
    edges = _edges(snapshot, group)
    if not snapshot["history"]["step"]:
        return empty_figure("no steps yet", "alpha trajectories")
    cols = cols or _grid(len(edges))
    rows = math.ceil(len(edges) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[t for *_, t in edges], shared_yaxes=True,
                        horizontal_spacing=0.03, vertical_spacing=0.12 if rows < 4 else 0.06)
    legend: set[str] = set()
    for i, (g, e, _) in enumerate(edges):
        for tr in _trajectory_traces(snapshot, g, e, legend):
            fig.add_trace(tr, row=i // cols + 1, col=i % cols + 1)
    _uniform_lines(fig, snapshot, edges, cols)
    fig.update_yaxes(range=weight_range(snapshot, edges))
    title = f"{snapshot.get('method', '')} {_kind_label(snapshot)} per edge"
    fig.update_layout(**base_layout(title, height or 170 * rows + 90))
    fig.update_annotations(font_size=11)
    # the title pinned to the top: the lines under it (derived cell, alarm) have fixed places
    fig.update_layout(title=dict(y=1, yref="container", yanchor="top", pad=dict(t=12)))
    return fig


def _kind_label(snapshot: dict[str, Any]) -> str:
    return {"sigmoid": "sigmoid(alpha)", "gumbel": "softmax(alpha) (sampled by Gumbel)"}.get(
        snapshot.get("weight_kind", "softmax"), "softmax(alpha)")


# ----------------------------------------------------------------------------- monitors
def _monitor_traces(snapshot: dict[str, Any]) -> dict[str, list[Any]]:
    """Traces and threshold shapes of the three monitor plots, keyed by plot name."""
    hist = snapshot["history"]
    steps = hist["step"]
    out: dict[str, list[Any]] = {"skip": [], "eigenvalue": [], "accuracy": []}
    if any(s is not None for s in hist.get("skip_count", [])):
        decided = hist.get("decided_skips") or []
        if any(d is not None for d in decided):  # the alarm counts decided skips: draw those, raw argmax faint
            out["skip"].append(go.Scatter(x=steps, y=hist["skip_count"], mode="lines", name="skip edges (argmax)",
                                          line=dict(color=op_color("skip_connect"), shape="hv", width=1, dash="dot"),
                                          opacity=0.5, showlegend=False, meta={"role": "skip_argmax"}))
            margin = snapshot.get("skip_margin")
            out["skip"].append(go.Scatter(x=steps, y=decided, mode="lines+markers", showlegend=False,
                                          name=f"decided skip edges (lead >= {margin})" if margin is not None
                                          else "decided skip edges", line=dict(color=op_color("skip_connect"),
                                                                               shape="hv"),
                                          marker=dict(size=4), meta={"role": "skip"}))
        else:
            out["skip"].append(go.Scatter(x=steps, y=hist["skip_count"], mode="lines+markers", name="skip count",
                                          line=dict(color=op_color("skip_connect"), shape="hv"), marker=dict(size=4),
                                          showlegend=False, meta={"role": "skip"}))
        thr = snapshot.get("skip_threshold")
        if thr is not None and steps:
            out["skip"].append(go.Scatter(x=[steps[0], steps[-1]], y=[thr, thr], mode="lines", showlegend=False,
                                          name=f"alarm at {thr}", line=dict(color=_ALARM_COLOR, dash="dash", width=1),
                                          hoverinfo="name", meta={"role": "threshold", "rule": "skip", "value": thr}))
    eig = snapshot.get("eigen") or {}
    if eig.get("step"):
        out["eigenvalue"].append(go.Scatter(x=eig["step"], y=eig["value"], mode="lines+markers", showlegend=False,
                                            name="dominant eigenvalue", line=dict(color="#7b3294"),
                                            meta={"role": "eigenvalue"}))
        la = eig.get("local_avg") or []
        pts = [(x, y) for x, y in zip(eig["step"], la) if y is not None]
        if pts:  # DARTS-ES compares these local averages, es_delta measurements apart
            out["eigenvalue"].append(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines",
                                                showlegend=False, name="local average (DARTS-ES)",
                                                line=dict(color="#7b3294", dash="dash", width=1),
                                                meta={"role": "eig_local_avg"}))
        base, ratio = eig.get("baseline"), eig.get("ratio", 1.3)
        if base is not None and base > 0:
            lim = ratio * base
            out["eigenvalue"].append(go.Scatter(
                x=[eig["step"][0], eig["step"][-1]], y=[lim, lim], mode="lines", showlegend=False,
                name=f"{ratio}x early value", line=dict(color=_ALARM_COLOR, dash="dash", width=1), hoverinfo="name",
                meta={"role": "threshold", "rule": "eigenvalue", "value": lim}))
    accs = hist.get("table_acc", [])
    if any(a is not None for a in accs):
        name = f"{snapshot.get('table_dataset') or 'benchmark'} acc. of derived cell"
        out["accuracy"].append(go.Scatter(x=steps, y=accs, mode="lines+markers", name=name, showlegend=False,
                                          line=dict(color="#0072b2", shape="hv"), marker=dict(size=4),
                                          meta={"role": "table_acc"}))
        if snapshot.get("space") == "nb201" and snapshot.get("table_dataset") == "cifar10" and steps:
            out["accuracy"].append(go.Scatter(
                x=[steps[0], steps[-1]], y=[ALL_SKIP_CIFAR10] * 2, mode="lines", showlegend=False,
                name=f"all-skip cell {ALL_SKIP_CIFAR10} %", line=dict(color=MUTED, dash="dot", width=1),
                hoverinfo="name", meta={"role": "threshold", "rule": "all-skip", "value": ALL_SKIP_CIFAR10}))
    else:
        out["accuracy"].append(go.Scatter(x=steps, y=hist.get("margin", []), mode="lines", name="top-1 − top-2",
                                          showlegend=False, line=dict(color="#009e73"), meta={"role": "margin"}))
        out["accuracy"].append(go.Scatter(x=steps, y=hist.get("reward", []), mode="lines", name="val acc (relaxed)",
                                          showlegend=False, line=dict(color="#0072b2"), meta={"role": "reward"}))
    return out


def _placeholder(snapshot: dict[str, Any], name: str) -> go.Scatter:
    """A centred note for a monitor without data (no skip ops, eigenvalue not measured yet)."""
    msg = {"skip": "no skip ops in this space", "eigenvalue": "not measured yet (hessian_every)"}.get(name, "no data")
    return go.Scatter(x=[0], y=[0], mode="text", text=[msg], textfont=dict(color=MUTED, size=11),
                      showlegend=False, hoverinfo="skip", meta={"role": "placeholder", "monitor": name})


# short: three of these sit side by side under the trajectories
# two short lines each: in a 1280 px window a monitor is ~190 px wide, and one long line ran
# into its neighbour's and lost its "(%)" (issue 29)
_MONITOR_TITLES = {"skip": "skip edges<br>(derived cell)", "eigenvalue": "Hessian eigenvalue<br>(dominant)",
                   "accuracy": "derived cell<br>table accuracy (%)"}


def _monitor_title(snapshot: dict[str, Any], name: str) -> str:
    if name == "accuracy" and not any(a is not None for a in snapshot["history"].get("table_acc", [])):
        return "edge margin /<br>relaxed val acc"
    if name == "skip" and snapshot.get("space") == "darts":
        return "skip edges<br>(normal cell)"
    return _MONITOR_TITLES[name]


def _alarm_lines(fig: go.Figure, snapshot: dict[str, Any], row: int, cols: list[int]) -> None:
    for alarm in snapshot.get("alarms", []):
        for c in cols:
            fig.add_vline(x=alarm["step"], line=dict(color=_ALARM_COLOR, width=1, dash="dot"), row=row, col=c)


def monitor_figure(snapshot: dict[str, Any], height: int = 280) -> go.Figure:
    """Skip count, eigenvalue and derived-cell accuracy over steps, thresholds dashed, alarms dotted."""
    snapshot = _check(snapshot)
    names = ["skip", "eigenvalue", "accuracy"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[_monitor_title(snapshot, n) for n in names],
                        horizontal_spacing=0.08)
    for c, (name, traces) in enumerate(_monitor_traces(snapshot).items(), start=1):
        for tr in traces or [_placeholder(snapshot, name)]:
            fig.add_trace(tr, row=1, col=c)
    _alarm_lines(fig, snapshot, 1, [1, 2, 3])
    fig.update_layout(**base_layout(f"{snapshot.get('method', '')}: collapse monitors", height))
    fig.update_annotations(font_size=11)
    # the title pinned to the top: the lines under it (derived cell, alarm) have fixed places
    fig.update_layout(title=dict(y=1, yref="container", yanchor="top", pad=dict(t=12)))
    _banner(fig, snapshot)
    return fig


# ----------------------------------------------------------------------------- derived cell
def _space(snapshot: dict[str, Any], context: Any = None):
    sp = getattr(context, "space", None)
    if sp is not None and getattr(sp, "name", None) == snapshot.get("space"):
        return sp
    from nasbench_lab import spaces

    return spaces.get(snapshot.get("space"))


def derived_cell_figure(snapshot: dict[str, Any], context: Any = None, height: int = 300) -> go.Figure:
    """The DAG of the derived architecture (the normal cell for DARTS cells)."""
    snapshot = _check(snapshot)
    from nasbench_lab.viz.dag import dag_figure

    try:
        space = _space(snapshot, context)
    except ValueError as exc:
        return empty_figure(f"no view of space {snapshot.get('space')!r} ({exc})", "derived cell", height)
    return dag_figure(space, snapshot["arch"], height=height, title=_cell_title(snapshot))


def _cell_title(snapshot: dict[str, Any]) -> str:
    acc = snapshot.get("table_acc")
    # the cell itself is drawn below its title (and its string is the dashboard's current architecture)
    txt = "derived normal cell" if snapshot.get("space") == "darts" else "derived cell"
    if acc is not None:
        txt += f" — {acc:.2f} % ({snapshot.get('table_dataset')})"
    return txt


# ----------------------------------------------------------------------------- the panel
def _banner(fig: go.Figure, snapshot: dict[str, Any]) -> None:
    alarms = snapshot.get("alarms") or []
    if not alarms:
        return
    last = alarms[-1]
    more = f" (+{len(alarms) - 1} earlier)" if len(alarms) > 1 else ""
    fig.add_annotation(text=f"⚠ collapse alarm at step {last['step']}: {last['message']}{more}", x=0.0, y=1.0,
                       xref="paper", yref="paper", xanchor="left", yanchor="bottom", yshift=24, showarrow=False,
                       font=dict(color="white", size=12), bgcolor=_ALARM_COLOR, borderpad=4, name="alarm-banner")


def _copy_into(fig: go.Figure, src: go.Figure, row: int, col: int) -> None:
    """Draw ``src``'s traces, shapes and annotations in one subplot of ``fig`` (axes hidden)."""
    sub = fig.get_subplot(row, col)
    xref, yref = sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")
    for tr in src.data:
        tr = go.Figure(tr).data[0]  # a copy
        tr.showlegend = False
        fig.add_trace(tr, row=row, col=col)
    for shape in src.layout.shapes or ():
        fig.add_shape(shape.update(xref=xref, yref=yref))
    for ann in src.layout.annotations or ():
        if ann.xref in ("paper",):
            continue
        fig.add_annotation(ann.update(xref=xref, yref=yref))
    fig.update_xaxes(visible=False, range=src.layout.xaxis.range, row=row, col=col)
    fig.update_yaxes(visible=False, range=src.layout.yaxis.range, row=row, col=col)


def alpha_panel(snapshot: dict[str, Any], context: Any = None) -> go.Figure:
    """The view of a differentiable run: trajectories, derived cell, monitors, alarms.

    In a dashboard (``context`` a :class:`~nasbench_lab.viz.panels.PanelContext`) the derived
    cell is not drawn again (the dashboard's "Current architecture" draws it): its accuracy is a
    line above the monitors, which get the whole bottom row. Standalone (``context=None``, as in
    notebook 04) the cell is drawn bottom left, its title inside its frame.
    """
    from nasbench_lab.viz.panels import PanelContext

    snapshot = _check(snapshot)
    edges = _edges(snapshot, None)
    draw_cell = not isinstance(context, PanelContext)
    cols = max(_grid(len(edges)), 5 if draw_cell else 3)
    traj_rows = math.ceil(len(edges) / cols)
    specs = [[{} for _ in range(cols)] for _ in range(traj_rows)]
    if draw_cell:
        dag_span = cols - 3
        spans = [dag_span, 1, 1, 1]
    else:
        dag_span = 0
        spans = [cols // 3 + (i < cols % 3) for i in range(3)]
    bottom_specs: list[Any] = []
    for span in spans:
        bottom_specs += [{"colspan": span}] + [None] * (span - 1)
    specs.append(bottom_specs)
    titles = [t for *_, t in edges] + [""] * (traj_rows * cols - len(edges))
    titles += ([""] if draw_cell else []) + [_monitor_title(snapshot, n) for n in ("skip", "eigenvalue", "accuracy")]
    fig = make_subplots(rows=traj_rows + 1, cols=cols, specs=specs, subplot_titles=titles,
                        horizontal_spacing=0.035, vertical_spacing=0.16 if traj_rows < 4 else 0.07,
                        row_heights=[1.0] * traj_rows + [1.5])
    legend: set[str] = set()
    yrange = weight_range(snapshot, edges)
    for i, (g, e, _) in enumerate(edges):
        r, c = i // cols + 1, i % cols + 1
        for tr in _trajectory_traces(snapshot, g, e, legend):
            fig.add_trace(tr, row=r, col=c)
        fig.update_yaxes(range=yrange, row=r, col=c, showticklabels=c == 1, tickformat=".2f")
    _uniform_lines(fig, snapshot, edges, cols)
    bottom = traj_rows + 1
    if draw_cell:
        try:
            dag = derived_cell_figure(snapshot, context)
            _copy_into(fig, dag, bottom, 1)
        except Exception as exc:  # noqa: BLE001 - a view must never take the dashboard down
            fig.add_annotation(text=f"no DAG view ({type(exc).__name__})", showarrow=False, row=bottom, col=1)
        # its title inside its frame: in the gap above it read as the alpha plots' x-axis label
        sub = fig.get_subplot(bottom, 1)
        fig.add_annotation(text=_cell_title(snapshot), x=0, y=1, xanchor="left", yanchor="top",
                           xref=f"{sub.xaxis.plotly_name.replace('axis', '')} domain",
                           yref=f"{sub.yaxis.plotly_name.replace('axis', '')} domain", showarrow=False,
                           font=dict(size=12, color="#333", weight="bold"), name="cell-title")
        mon_cols = [dag_span + 1, dag_span + 2, dag_span + 3]
    else:
        mon_cols = [1, 1 + spans[0], 1 + spans[0] + spans[1]]
        # a line under the panel's title (above the alarm banner when there is one), not in a gap
        # between plots where it read as an axis label
        fig.add_annotation(text=f"{_cell_title(snapshot)} · drawn under Current architecture", x=0, y=1,
                           xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                           yshift=52 if snapshot.get("alarms") else 24, showarrow=False,
                           font=dict(size=12, color="#333", weight="bold"), name="cell-title")
    for c, (name, traces) in zip(mon_cols, _monitor_traces(snapshot).items()):
        for tr in traces or [_placeholder(snapshot, name)]:
            fig.add_trace(tr, row=bottom, col=c)
    _alarm_lines(fig, snapshot, bottom, mon_cols)
    head = f"{snapshot.get('method', '')} on {snapshot.get('space', '')} — step {snapshot.get('step')}"
    if snapshot.get("total_steps"):
        head += f"/{snapshot['total_steps']}"
    extras = [f"{k} {snapshot[k]:.3g}" for k in ("temperature", "aux_skip") if snapshot.get(k) is not None]
    if extras:
        head += " · " + ", ".join(extras)
    height = 150 * traj_rows + 360
    alarm = bool(snapshot.get("alarms"))
    top = (105 if alarm else 70) + (0 if draw_cell else 24)  # room for the derived cell's line
    fig.update_layout(**base_layout(head, height, margin=dict(l=45, r=20, t=top, b=70),
                                    legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.06, yanchor="top")))
    fig.update_annotations(font_size=11)
    # the title pinned to the top: the lines under it (derived cell, alarm) have fixed places
    fig.update_layout(title=dict(y=1, yref="container", yanchor="top", pad=dict(t=12)))
    _banner(fig, snapshot)
    if snapshot.get("levels"):
        fig.add_annotation(text="per-layer argmax levels: " + " ".join(map(str, snapshot["levels"])),
                           x=1.0, y=0.0, xref="paper", yref="paper", xanchor="right", yanchor="top", yshift=-22,
                           showarrow=False, font=dict(size=10, color=MUTED))
    fig.update_layout(hovermode="closest")
    return fig
