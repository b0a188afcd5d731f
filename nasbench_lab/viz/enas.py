"""Views of ENAS (Pham et al. 2018): what the controller's policy prefers, and how it got there.

Every builder takes the plain data of an ENAS sampler snapshot and returns a ``go.Figure``:

* :func:`policy_heatmap`: the probability of every option at every decision, along the policy's
  mode (each decision conditioned on the most probable earlier choices, as the LSTM sees them);
* :func:`policy_history`: per controller update, the reward and the moving-average baseline, the
  policy's entropy per decision and the probability of its mode, each decision's probability of
  the option it prefers now (the per-decision probabilities over training), and (with a
  benchmark) the ground-truth accuracy of the mode, the number that shows a collapse onto poor
  cells;
* :func:`enas_panel`: the live panel ``fn(snapshot, context)`` named by the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasbench_lab.viz.mcts import truth_map
from nasbench_lab.viz.style import HIGHLIGHT, MUTED, REWARD_COLOR, base_layout, empty_figure, op_color

_HISTORY_KEYS = {"step", "reward", "baseline", "entropy", "mode", "p_mode"}


def _check_policy(levels: Any, options: Any, probs: Any) -> tuple[list[str], list[list[str]], list[list[float]]]:
    if not (isinstance(levels, Sequence) and isinstance(options, Sequence) and isinstance(probs, Sequence)) \
            or not (len(levels) == len(options) == len(probs)) \
            or any(len(o) != len(p) for o, p in zip(options, probs)):
        raise ValueError("probs: expected one probability per option of every decision (snapshot keys 'levels', "
                         "'options', 'probs' of equal lengths), e.g. levels=['edge 1←0'], "
                         "options=[['none', 'skip_connect']], probs=[[0.3, 0.7]]")
    return [str(v) for v in levels], [[str(o) for o in opts] for opts in options], \
        [[float(x) for x in p] for p in probs]


def _heatmap_trace(levels: list[str], options: list[list[str]], probs: list[list[float]],
                   showscale: bool = True) -> go.Heatmap:
    width = max(len(o) for o in options)
    same = all(o == options[0] for o in options)
    z = np.full((len(levels), width), np.nan)
    text = [[""] * width for _ in levels]
    for i, (opts, p) in enumerate(zip(options, probs)):
        z[i, :len(p)] = p
        for j, o in enumerate(opts):
            text[i][j] = o
    x = options[0] if same else [f"option {j + 1}" for j in range(width)]
    # the colour scale runs from 0 to the largest probability, so an early, near-uniform policy
    # still shows its preferences; the cells print their probability (and option, when options differ)
    cells = z.size <= 400
    return go.Heatmap(z=z, x=x, y=levels, text=text, zmin=0.0, zmax=float(np.nanmax(z)) if z.size else 1.0,
                      colorscale="Viridis", hovertemplate="%{y}<br>%{text}: p = %{z:.3f}<extra></extra>",
                      texttemplate=("%{z:.2f}" if same else "%{text}<br>%{z:.2f}") if cells else None,
                      textfont=dict(size=9), colorbar=dict(title="p", thickness=12) if showscale else None,
                      showscale=showscale, meta={"role": "policy"})


def policy_heatmap(levels: Sequence[str], options: Sequence[Sequence[str]], probs: Sequence[Sequence[float]],
                   mode: str | None = None, title: str | None = None, height: int = 360) -> go.Figure:
    """Decisions x options: the controller's probabilities along its mode."""
    levels, options, probs = _check_policy(levels, options, probs)
    if not levels:
        return empty_figure("no decisions", title or "ENAS policy", height)
    fig = go.Figure(_heatmap_trace(levels, options, probs))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(**base_layout(title or (f"ENAS policy · mode {mode}" if mode else "ENAS policy"), height))
    return fig


def _check_history(history: Any) -> list[dict[str, Any]]:
    if not isinstance(history, Sequence) or any(not isinstance(h, Mapping) or not _HISTORY_KEYS <= set(h)
                                                 for h in history):
        raise ValueError(f"history: expected the 'history' of an ENAS snapshot, rows with keys {sorted(_HISTORY_KEYS)} "
                         "(e.g. [{'step': 20, 'reward': 0.4, 'baseline': 0.38, 'entropy': 1.2, 'mode': '[4,3,3]', "
                         "'p_mode': 0.1}])")
    return [dict(h) for h in history]


def _decision_traces(history: list[dict[str, Any]], names: Sequence[str] | None,
                     options: Sequence[Sequence[str]] | None) -> list[go.Scatter]:
    """Per decision, the probability of the option it prefers now, over the updates."""
    if not history or not all(isinstance(h.get("probs"), Sequence) for h in history):
        return []
    steps = [h["step"] for h in history]
    last = history[-1]["probs"]
    out = []
    for level, p in enumerate(last):
        j = int(np.argmax(p))
        label = str(options[level][j]) if options and level < len(options) and j < len(options[level]) else str(j)
        name = str(names[level]) if names and level < len(names) else f"decision {level + 1}"
        ys = [h["probs"][level][j] if level < len(h["probs"]) and j < len(h["probs"][level]) else None
              for h in history]
        out.append(go.Scatter(x=steps, y=ys, mode="lines", name=f"{name}: {label}", line=dict(color=op_color(label), width=1.5),
                              showlegend=False, hovertemplate=f"{name}: p({label}) = %{{y:.3f}}<extra>step %{{x}}</extra>",
                              meta={"role": "decision", "level": level}))
    return out


def _history_traces(history: list[dict[str, Any]], levels: int, truth: Mapping[str, float],
                    names: Sequence[str] | None = None, options: Sequence[Sequence[str]] | None = None
                    ) -> dict[str, list[go.Scatter]]:
    steps = [h["step"] for h in history]
    out = {
        "reward": [go.Scatter(x=steps, y=[h["reward"] for h in history], mode="lines", name="reward (mean of update)",
                              line=dict(color=REWARD_COLOR), meta={"role": "reward"}),
                   go.Scatter(x=steps, y=[h["baseline"] for h in history], mode="lines", name="baseline b",
                              line=dict(color=MUTED, dash="dash"), meta={"role": "baseline"})],
        "policy": [go.Scatter(x=steps, y=[h["entropy"] / max(1, levels) for h in history], mode="lines",
                              name="entropy per decision (nats)", line=dict(color="#009e73"), meta={"role": "entropy"}),
                   go.Scatter(x=steps, y=[max(h["p_mode"], 1e-12) for h in history], mode="lines",
                              name="p(mode), right axis (log)", line=dict(color="#cc79a7"),
                              meta={"role": "p_mode", "secondary": True})],
    }
    decisions = _decision_traces(history, names, options)
    if decisions:
        out["decisions"] = decisions
    if truth:
        pts = [(h["step"], truth[h["mode"]], h["mode"]) for h in history if h["mode"] in truth]
        out["truth"] = [go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                   name="ground truth of the mode (%)", text=[p[2] for p in pts],
                                   hovertemplate="step %{x}<br>%{text}<br>%{y:.2f} %<extra></extra>",
                                   line=dict(color=HIGHLIGHT), marker=dict(size=4), meta={"role": "truth"})]
    return out


def policy_history(history: Sequence[Mapping[str, Any]], levels: int = 1, benchmark: Any = None,
                   title: str | None = None, height: int = 520, level_names: Sequence[str] | None = None,
                   options: Sequence[Sequence[str]] | None = None) -> go.Figure:
    """Reward and baseline, entropy and p(mode), each decision's preferred option, and the mode's
    ground truth, per update (``levels``: the number of decisions, to normalise the entropy)."""
    rows = _check_history(history)
    if not rows:
        return empty_figure("the controller has not been updated yet", title or "ENAS training", height)
    truth = truth_map(benchmark, sorted({h["mode"] for h in rows}))
    traces = _history_traces(rows, levels, truth, level_names, options)
    n = len(traces)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        specs=[[{"secondary_y": key == "policy"}] for key in traces],
                        subplot_titles=[{"reward": "validation reward and baseline", "policy": "policy",
                                         "decisions": "each decision: p(the option it prefers now)",
                                         "truth": "the mode's ground truth"}[k] for k in traces])
    for r, key in enumerate(traces, start=1):
        for tr in traces[key]:
            fig.add_trace(tr, row=r, col=1, **({"secondary_y": True} if (tr.meta or {}).get("secondary") else {}))
    fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=2, col=1, secondary_y=True)
    fig.update_xaxes(title_text="trainer step", row=n, col=1)
    fig.update_layout(**base_layout(title or "ENAS controller training", height))
    return fig


def enas_panel(snapshot: Mapping[str, Any], context: Any = None) -> go.Figure:
    """Live panel: the policy now (left) and its training (right)."""
    if not snapshot.get("levels"):
        return empty_figure("no controller yet", "ENAS")
    levels, options, probs = _check_policy(snapshot["levels"], snapshot["options"], snapshot["probs"])
    history = _check_history(snapshot.get("history") or [])
    bench = getattr(context, "benchmark", None)
    truth = truth_map(bench, sorted({h["mode"] for h in history} | {str(snapshot.get("mode"))}))
    traces = _history_traces(history, len(levels), truth, levels, options) if history else {}
    n = max(1, len(traces))
    names = {"reward": "reward and baseline", "policy": "entropy per decision, p(mode)",
             "decisions": "each decision: p(the option it prefers now)", "truth": "ground truth of the mode (%)"}
    titles = ["policy along its mode"] + ([names[k] for k in traces] if traces else [""])
    keys = list(traces) or [""]
    right = [[{"type": "xy", "secondary_y": k == "policy"}] for k in keys]
    fig = make_subplots(rows=n, cols=2, column_widths=[0.42, 0.58], horizontal_spacing=0.2, vertical_spacing=0.12,
                        specs=[[{"type": "heatmap", "rowspan": n}, *right[0]]] + [[None, *r] for r in right[1:]],
                        subplot_titles=titles)
    fig.add_trace(_heatmap_trace(levels, options, probs, showscale=False), row=1, col=1)
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=9), row=1, col=1)
    for r, key in enumerate(traces, start=1):
        for tr in traces[key]:
            sec = {"secondary_y": True} if (tr.meta or {}).get("secondary") else {}
            fig.add_trace(tr, row=r, col=2, **sec)
        if key == "policy":
            fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=r, col=2, secondary_y=True)
    mode = str(snapshot.get("mode"))
    extra = f" ({truth[mode]:.2f} % ground truth)" if mode in truth else ""
    status = (f"ENAS · step {snapshot.get('steps', 0)} · {snapshot.get('updates', 0)} controller updates<br>"
              f"<span style='font-size:11px'>mode {mode}{extra}</span>")
    fig.update_layout(**base_layout(status, 220 + 150 * n, margin=dict(l=120, r=60, t=90, b=60),
                                    legend=dict(orientation="h", yanchor="top", y=-0.08, x=0.0)))
    return fig
