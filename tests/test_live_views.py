"""What the browser receives from the live views: the whole current figure as synced state (so a
view created late, or after a reload, draws the present), in one message per change; plotly.js
once per kernel; the ranking phase and the reason for a missing ranking."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

from nasbench_lab import spaces
from nasbench_lab.metrics import summary_label
from nasbench_lab.runs import Job, Run
from nasbench_lab.widgets import ArchitectureExplorer, RunDashboard
from nasbench_lab.widgets._common import copy_figure
from nasbench_lab.widgets._figure import VIEW_ESM, LiveFigure, plotly_library

POOLING = [str(a) for a in spaces.get("pooling").enumerate()]


def _plain(v: Any) -> Any:
    """JSON-comparable: numpy arrays as lists (to_plotly_json would base64 them)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    return json.loads(json.dumps(v, cls=PlotlyJSONEncoder))


def synced_equals_figure(fw: LiveFigure) -> bool:
    """The synced state (what a new browser view draws) is the figure the kernel holds now."""
    return (_plain(fw._widget_data) == _plain([t.to_plotly_json() for t in fw.data])
            and _plain(fw._widget_layout) == _plain(fw.layout.to_plotly_json()))


def _messages(fw: LiveFigure) -> list[dict]:
    sent: list[dict] = []
    fw._send = lambda msg, buffers=None: sent.append(msg)  # the comm is a dummy outside a kernel
    return sent


def test_every_change_resyncs_the_whole_figure_in_one_message():
    fw = LiveFigure(go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout=dict(title="first")))
    sent = _messages(fw)
    fw.data[0].y = np.array([5.0, 6.0])
    assert synced_equals_figure(fw) and len(sent) == 1
    new = go.Figure([go.Bar(x=["a"], y=[1]), go.Bar(x=["b"], y=[2])],
                    layout=dict(title="second", annotations=[dict(text="note", x=0, y=0)]))
    copy_figure(fw, new)  # traces swapped, layout replaced: one message with data and layout
    assert len(sent) == 2 and {"_widget_data", "_widget_layout"} <= set(sent[1]["state"])
    assert synced_equals_figure(fw) and fw.layout.title.text == "second"
    copy_figure(fw, go.Figure(go.Bar(x=["c"], y=[3]), layout=dict(title="third")))
    assert synced_equals_figure(fw) and not fw._widget_layout.get("annotations")  # the old note is gone


def test_plotly_js_reaches_the_page_once_and_figure_models_stay_small():
    before = plotly_library()
    a, b = LiveFigure(), LiveFigure()
    assert plotly_library() is before  # one library model per kernel, however many figures
    assert "module.exports" in before._source and len(before._source) > 1_000_000  # plotly.js itself
    assert len(before._esm) < 2_000  # the model's own code: anywidget's 2 s init deadline covers only it
    assert len(a._esm) < 10_000 and a._esm == VIEW_ESM == b._esm  # what each figure model imports
    before.close()
    assert plotly_library() is not before  # closed (Widget.close_all()): a new one comes


class ToyJob(Job):
    """Steps report loss 1/step on the pooling archs in turn; ``finish`` ranks like the Trainer:
    "phase" events per architecture, then the "ranking" event (``hold`` pauses it half-way)."""

    kind = "toy"

    def __init__(self, steps: int = 10, hold: threading.Event | None = None) -> None:
        self.total_steps, self.step_count, self.hold = steps, 0, hold
        self.reached = threading.Event()

    def config(self) -> dict[str, Any]:
        return {"space": "pooling", "method": "toy", "dataset": "cifar10", "steps": self.total_steps,
                "rank_at_end": True}

    def step(self) -> dict[str, Any]:
        self.step_count += 1
        return {"loss": 1.0 / self.step_count, "reward": 0.5, "arch": POOLING[self.step_count % 36]}

    def snapshot(self) -> dict[str, Any]:
        return {"counts": {POOLING[0]: self.step_count}}

    def finish(self) -> dict[str, Any]:
        n = 6
        for done in range(n + 1):
            self.emit("phase", phase="ranking", done=done, total=n, periodic=False)
            if done == 3 and self.hold is not None:
                self.reached.set()
                self.hold.wait(10)
        table = [{"arch": a, "estimate": 50.0 + i, "est_rank": n - i, "tied": 0} for i, a in enumerate(POOLING[:n])]
        self.emit("ranking", summary={"n": n, "kendall_tau": 0.2, "kendall_tau_top10": 0.1, "top10_overlap": 0.5},
                  table=table)
        return {"n": n}


def test_a_dashboard_syncs_its_current_state_for_views_created_later():
    run = Run(ToyJob(steps=8), store=False, snapshot_every=4)
    dash = RunDashboard(run, auto_refresh=False)
    run.start()
    run.wait(10)
    dash.refresh(force_slow=True)
    assert len(dash.curves.data[0].x) == 8 and POOLING[8 % 36] in dash.dag.layout.title.text
    for fw in dash.figures:  # what a reloaded browser tab receives is what the kernel shows now
        assert synced_equals_figure(fw), fw.layout.title.text
    assert "Supernet" in dash.ranking_fig._widget_layout["title"]["text"]


def test_the_ranking_phase_shows_with_its_own_progress_and_labels_read_alike():
    hold = threading.Event()
    job = ToyJob(steps=5, hold=hold)
    run = Run(job, store=False)
    dash = RunDashboard(run, auto_refresh=False)
    run.start()
    assert job.reached.wait(10)
    dash.refresh()
    assert "ranking" in dash.status.value and "running" in dash.status.value
    assert "<b>ranking</b> (final, step 5): 3 / 6 architectures" in dash.progress_text.value
    assert (dash.progress.value, dash.progress.max) == (3, 6)
    hold.set()
    run.wait(10)
    dash.refresh(force_slow=True)
    assert "ranking" not in dash.status.value and "5 / 5 steps" in dash.progress_text.value
    summary = dash.summary.value
    for key in ("kendall_tau_top10", "top10_overlap"):
        assert summary_label(key) in summary
    assert "Kendall τ (true top-10)" in summary and "top-10 overlap" in summary and "kendall tau top10" not in summary


def test_after_stop_the_ranking_panel_says_why_there_is_none():
    run = Run(ToyJob(steps=20), store=False)
    dash = RunDashboard(run, auto_refresh=False)
    run.step(3)
    run.stop()
    dash.refresh(force_slow=True)
    note = " ".join(a.text for a in dash.ranking_fig.layout.annotations)
    assert "No final ranking: stopped at step 3 of 20." in note
    assert f"Run.resume(&#x27;{run.run_id}&#x27;)" in note or f"Run.resume('{run.run_id}')" in note
    assert synced_equals_figure(dash.ranking_fig)


def test_the_explorer_syncs_the_architecture_it_shows():
    ex = ArchitectureExplorer("pooling")
    ex.select("[7,1,2]")
    assert "[7,1,2]" in ex.dag.layout.title.text and synced_equals_figure(ex.dag)
    assert synced_equals_figure(ex.distribution)
