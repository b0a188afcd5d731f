"""RunDashboard: controls and live views of one :class:`~nasbench_lab.runs.Run`.

Updates are *pulled*: :meth:`RunDashboard.refresh` reads ``run.events.since(last_seq)`` and
extends the existing FigureWidgets in place. In a kernel an asyncio task on the kernel's own
event loop calls it about three times a second (so the training thread never touches a widget
and never waits for the UI); tests and scripts call ``refresh()`` themselves. The costlier views
(the DAG of the current architecture, the method's panel) are redrawn at most once a second.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd

from nasbench_lab import spaces
from nasbench_lab.errors import describe
from nasbench_lab.metrics import ranking_summary, summary_label
from nasbench_lab.runs import Run
from nasbench_lab.runs.progress import eta_text
from nasbench_lab.spaces import SearchSpace
from nasbench_lab.viz.budget import budget_figure
from nasbench_lab.viz.curves import ema_extend, training_curves
from nasbench_lab.viz.dag import arch_caption, arch_title, dag_figure
from nasbench_lab.viz.panels import PanelContext, panel_figure
from nasbench_lab.viz.ranking import ranking_scatter, tau_curve
from nasbench_lab.viz.sampling import sampling_frequency
from nasbench_lab.viz.style import empty_figure

from ._common import (
    TERMINAL,
    AutoRefresh,
    badge,
    box,
    card,
    copy_figure,
    error_box,
    figure_widget,
    inline_error,
    row,
    section_title,
    status_badge,
    summary_rows,
    table_html,
)
from ._static import StaticCopy
from .export import ExportButton
from .interference import InterferencePanel

#: metrics drawn as curves when the job reports them, in this order of preference
CURVE_PRIORITY = ("loss", "reward", "regret", "best_so_far", "val_loss", "acc", "accuracy")
_BOOKKEEPING = {"step", "seed", "query", "lr", "arch_lr", "time", "sim_time"}


def resolve_benchmark(space: str | None, dataset: str | None, benchmark: Any = "auto") -> Any:
    """``"auto"``: the ground truth of (space, dataset) if any; a string: that dataset's table of
    the space; None/False: none; anything else is taken as a Benchmark."""
    if benchmark is None or benchmark is False:
        return None
    if isinstance(benchmark, str):
        if space is None:
            return None
        from nasbench_lab.benchmarks import get

        if benchmark == "auto":
            try:
                return get(space, dataset=dataset) if dataset else None
            except ValueError:
                return None
        return get(space, dataset=benchmark)  # an explicit choice: a wrong name is an error
    return benchmark


class RunDashboard(StaticCopy, AutoRefresh):
    """Start / pause / resume / step / stop a run and watch it live.

    ``benchmark``: ``"auto"`` (ground truth of the run's space and dataset when one exists), a
    dataset name (that table of the run's space, e.g. ``"cifar10"``), a Benchmark, or None.
    ``metrics``: the two step metrics drawn as curves; None picks them from the first step
    (loss and reward for trainers, regret for black-box searches, see ``CURVE_PRIORITY``).
    Display it as the last expression of a cell (or ``display(dash)``); ``close()`` stops the
    refresher and removes the widgets but leaves the run alone.
    """

    #: seconds between automatic refreshes while the run is active, and between DAG/panel redraws
    interval_s = 1 / 3
    slow_interval_s = 1.0

    def __init__(self, run: Run, benchmark: Any = "auto", metrics: Sequence[str] | None = None,
                 smoothing: float = 0.9, auto_refresh: bool = True, title: str | None = None) -> None:
        if not isinstance(run, Run):
            raise ValueError(f"run: expected a nasbench_lab.runs.Run, got {type(run).__name__} "
                             "(e.g. Run(Trainer(space='pooling', steps=100)))")
        self.run = run
        cfg = _job_config(run)
        self.space: SearchSpace | None = _job_space(run, cfg)
        self.method = str(cfg.get("method", getattr(run.job, "kind", "")))
        self.dataset = cfg.get("dataset")
        self.benchmark = resolve_benchmark(self.space.name if self.space else None, self.dataset, benchmark)
        # None: chosen from the first step event (loss/reward for trainers, regret for searches)
        self._auto_metrics = metrics is None
        self.metrics = tuple(metrics) if metrics is not None else ("loss", "reward")
        self.smoothing = float(smoothing)
        self._seq = 0
        self._closed = False
        self._task: asyncio.Task | None = None
        self._x: dict[str, list[float]] = {m: [] for m in self.metrics}
        self._raw: dict[str, list[float]] = {m: [] for m in self.metrics}
        self._smooth: dict[str, list[float]] = {m: [] for m in self.metrics}
        self._arch: str | None = None
        #: how often each architecture was sampled (the trellis view's visits per node)
        self._sampled: dict[str, int] = {}
        self._sampled_shown = 0  # how many samples the drawn view counts (a repeated path adds visits)
        self._shown_arch: str | None = None
        self._snapshot: dict[str, Any] | None = None
        self._snapshot_dirty = False
        self._last_slow = -math.inf
        self._tau: dict[str, list[float]] = {"step": [], "all": [], "top10": []}
        self._alarms: dict[str, dict[str, Any]] = {}  # the latest alarm per rule
        self.ranking: pd.DataFrame | None = None
        self._ranking_summary: dict[str, Any] | None = None
        self._step_times: list[tuple[float, int]] = []
        # a budgeted one-shot run (issue 17): its metric per sampled architecture, against the band
        band = getattr(run.job, "band", None)
        self.budget = band.budget.to_dict() if band is not None else None
        self._budget_pts: tuple[list[float], list[float]] = ([], [])
        self._budget_dirty = False
        self._shown_status: str | None = None
        self._phase: dict[str, Any] | None = None  # {"phase": "ranking", "done", "total", "periodic"} while it lasts
        self._final_ranking = False
        self._error_shown = False
        self._build(title)
        self._prefill_from_store()
        self.refresh()
        if auto_refresh:
            self.start_auto_refresh()

    # ------------------------------------------------------------------ layout
    def _build(self, title: str | None) -> None:
        run = self.run
        parts = [p for p in (self.space.name if self.space else None, self.method, self.dataset) if p]
        title = title or " · ".join(parts) or type(run.job).__name__
        self.title_text = title
        self.title = W.HTML(f"<div style='font-size:16px;font-weight:600;color:#222'>{html.escape(title)}"
                            f"<span style='font-weight:400;color:#777;font-size:12px;margin-left:10px'>"
                            f"run {html.escape(str(run.run_id))}</span></div>")
        self.status = W.HTML(status_badge(run.status))
        total = max(1, run.job.total_steps)
        self.progress = W.IntProgress(value=0, min=0, max=total, bar_style="info",
                                      layout=W.Layout(width="260px", height="18px"))
        self.progress_text = W.HTML("")
        self.buttons = {
            "start": W.Button(description="Start", icon="play", tooltip="run freely until the end",
                              button_style="success"),
            "pause": W.Button(description="Pause", icon="pause", tooltip="pause after the current step",
                              button_style="warning"),
            "resume": W.Button(description="Resume", icon="play", tooltip="continue a paused run",
                               button_style="success"),
            "step": W.Button(description="Step", icon="step-forward", tooltip="advance n steps, then pause"),
            "stop": W.Button(description="Stop", icon="stop", tooltip="stop for good (records and checkpoint kept)",
                             button_style="danger"),
        }
        for name, b in self.buttons.items():
            b.layout = W.Layout(width="96px")
            b.on_click(lambda _b, name=name: self._on_button(name))
        self.step_n = W.IntText(value=10, description="n", layout=W.Layout(width="120px"),
                                style={"description_width": "16px"})
        self.message = W.HTML("")  # inline input errors
        self.error = W.HTML("", layout=W.Layout(display="none"))
        # "alarm" events (e.g. DARTS' collapse rules) raise a banner that stays until the run ends
        self.alarm = W.HTML("", layout=W.Layout(display="none"))
        self.curves = figure_widget(training_curves(None, self.metrics, self.smoothing,
                                                    title="Training curves", height=280))
        self.curves.layout.uirevision = "curves"  # keep a user's zoom across updates
        self.dag = figure_widget(empty_figure("the current architecture appears with the first step",
                                              "Current architecture", 260))
        self.panel = figure_widget(empty_figure("the method's view appears with its first snapshot",
                                                "Method view", 300))
        cfg = _job_config(run)
        every = cfg.get("rank_every")
        self._rank_every = int(every) if isinstance(every, int) and every > 0 else 0
        note = ("the supernet's ranking against the truth appears at the end of training"
                + (f"; Kendall τ every {every} steps is plotted below" if every else "")
                if self.benchmark is not None else
                "no ground truth for this space/dataset: the final ranking shows estimates only")
        self.ranking_fig = figure_widget(empty_figure(note, "Ranking", 300))
        # Kendall tau vs step, shown once the job ranks periodically (rank_every)
        self.tau_fig = figure_widget(tau_curve([], [], height=230, top10=[]))
        self.tau_box = box(self.tau_fig, "50%", display="none")
        self.summary = W.HTML(self._summary_html())
        self.budget_fig = figure_widget(budget_figure([], [], self.budget)) if self.budget else None
        # gradient interference (issue 28): shown when the job measures it (interference_every) or an event arrives
        # (built only then: every figure model is one more for the browser to initialise)
        ievery = cfg.get("interference_every")
        self._interference_every = int(ievery) if isinstance(ievery, int) and ievery > 0 else None
        self.interference: InterferencePanel | None = None
        self._interference_box = W.Box(layout=W.Layout(width="100%"))
        if self._interference_every:
            self._show_interference()
        self._interference_pending: tuple[int | None, dict[str, Any]] | None = None
        # a segmentation run: predicted masks beside the true ones for a few validation scenes, drawn
        # with the selected path once the run has ended (the task decides; no sampler knows)
        task = getattr(run.job, "task", None)
        self.masks_fig = (figure_widget(empty_figure("predicted masks of the selected path appear when the run "
                                                     "ends", "Masks", 260))
                          if getattr(task, "name", "") == "segmentation" else None)
        self._masks_drawn = False

        header = W.HBox([self.title, row([self.status, self.progress, self.progress_text])],
                        layout=W.Layout(justify_content="space-between", align_items="center", width="100%",
                                        flex_flow="row wrap"))
        # the found network as a folder that needs no nasbench_lab (from the run's stored checkpoint)
        self.export = ExportButton(self._export_target)
        controls = row([*self.buttons.values(), self.step_n, self.export.button, self.message], "nbl-tight",
                       flex_flow="row wrap")
        # the method's own view gets the full width: it is what the method is doing
        self._dag_box, self._ranking_box = box(self.dag, "42%"), box(self.ranking_fig, "58%")
        self._summary_box = W.VBox([section_title("Run"), self.summary], layout=W.Layout(width="50%", padding="8px 12px"))
        self._row2 = W.HBox(layout=W.Layout(width="100%"))
        self._row3 = W.HBox(layout=W.Layout(width="100%"))
        # jobs that never rank (DARTS, searches) get no empty ranking box: the summary takes its place
        self._arrange(bool(cfg.get("rank_at_end") or cfg.get("rank_every")))
        self.widget = card([header, controls, self.export.output, self.alarm, self.error, box(self.curves), box(self.panel),
                            *([box(self.budget_fig)] if self.budget_fig is not None else []),
                            self._interference_box, self._row2, self._row3,
                            *([box(self.masks_fig)] if self.masks_fig is not None else [])])
        self._update_buttons(run.status)

    def _show_interference(self) -> InterferencePanel:
        """The interference panel, built on first use."""
        if self.interference is None:
            self.interference = InterferencePanel(self.space, getattr(self.run.job, "interference", None),
                                                  self._interference_every)
            self._interference_box.children = [self.interference.widget]
        return self.interference

    def _arrange(self, ranking: bool) -> None:
        self._ranking_shown = ranking
        if ranking:
            self._dag_box.layout.width = "42%"
            self._row2.children = [self._dag_box, self._ranking_box]
            self._row3.children = [self.tau_box, self._summary_box]
        else:
            self._dag_box.layout.width = "50%"
            self._row2.children = [self._dag_box, self._summary_box]
            self._row3.children = [self.tau_box]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ without a kernel (widgets/_static.py)
    def static_figures(self) -> list:
        """One slot per figure; a figure still showing its placeholder note stays empty."""
        drawn = {"curves": any(self._x[m] for m in self.metrics), "dag": self._shown_arch is not None,
                 "panel": self._snapshot is not None, "ranking": self._final_ranking,
                 "tau": self.tau_box.layout.display != "none",  # shown live only once it ranks periodically
                 "budget": bool(self._budget_pts[0])}
        figs = [("curves", self.curves), ("dag", self.dag), ("panel", self.panel), ("ranking", self.ranking_fig),
                ("tau", self.tau_fig)] + ([("budget", self.budget_fig)] if self.budget_fig is not None else [])
        return [fig if drawn[name] else None for name, fig in figs]

    def static_text(self) -> str:
        step, total = self.run.progress
        return f"<RunDashboard {self.title_text}: {self.run.status}, {step:,} / {total:,} steps>"

    def static_html(self) -> str:
        return (f"<div>{self.title.value}<div style='margin:4px 0'>{status_badge(self.run.status)} "
                f"{self.progress_text.value}</div>{self.alarm.value}{self.error.value}{self.summary.value}</div>")

    def _export_target(self) -> tuple[Any, dict[str, Any], str]:
        """The job as it stands (what the dashboard shows), never while its thread trains it."""
        if self.run.status == "running":
            raise ValueError("the run is training: pause it or wait until it finishes, then export")
        return self.run.job, {"run_id": self.run.run_id}, self.run.run_id

    # ------------------------------------------------------------------ controls
    def _on_button(self, name: str) -> None:
        self.message.value = ""
        try:
            if name == "start":
                self.run.start()
            elif name == "pause":
                self.run.pause()
            elif name == "resume":
                self.run.resume()
            elif name == "step":
                self.step(self.step_n.value)
            elif name == "stop":
                self.run.stop(wait=False)
        except Exception as exc:  # a widget callback must not raise into nowhere: say it inline
            self.message.value = inline_error(f"{name}: {describe(exc)[0]}")
        self.start_auto_refresh()
        self.refresh()

    def start(self) -> RunDashboard:
        """Start the run (as the Start button does)."""
        self._on_button("start")
        return self

    def step(self, n: Any) -> bool:
        """Advance ``n`` steps without blocking; a bad ``n`` shows inline (returns False)."""
        try:
            n_int = int(n)
            if n_int != n or n_int < 1:
                raise ValueError
        except (TypeError, ValueError):
            self.message.value = inline_error(f"n: expected a positive whole number of steps, got {n!r} (e.g. 10)")
            return False
        if self.run.status in TERMINAL:
            self.message.value = inline_error(f"step: the run is {self.run.status}; nothing left to step")
            return False
        self.message.value = ""
        self.run.step(n_int, wait=False)
        self.start_auto_refresh()
        return True

    def _update_buttons(self, status: str) -> None:
        enabled = {
            "created": {"start", "step", "stop"},
            "running": {"pause", "stop"},
            "paused": {"resume", "step", "stop"},
        }.get(status, set())
        for name, b in self.buttons.items():
            b.disabled = name not in enabled
        self.step_n.disabled = "step" not in enabled

    # ------------------------------------------------------------------ refreshing
    async def _refresher(self) -> None:
        tick = 0
        while not self._closed:
            tick += 1
            try:
                self.refresh()
            except Exception as exc:  # keep refreshing; show what went wrong
                self.message.value = inline_error(f"dashboard refresh failed: {type(exc).__name__}: {exc}")
            if tick >= 12 and self.run.status in TERMINAL and self._seq >= self.run.events.last_seq:
                self.refresh(force_slow=True)
                self.publish_static()
                return  # everything shown; the buttons restart the refresher if needed
            await asyncio.sleep(self.interval_s)

    async def wait(self, timeout: float | None = None) -> str:
        """``await dash.wait()``: wait for the end while the kernel keeps refreshing the view."""
        t0 = time.monotonic()
        self.start_auto_refresh()
        while self.run.status not in TERMINAL and (timeout is None or time.monotonic() - t0 < timeout):
            await asyncio.sleep(0.1)
        self.refresh(force_slow=True)
        self.publish_static()  # from the awaiting cell: an executed notebook keeps the final views
        return self.run.status

    @property
    def figures(self) -> list:
        """The dashboard's FigureWidgets (curves, DAG, method panel, ranking)."""
        extra = [f for f in (self.budget_fig, self.masks_fig) if f is not None]
        return [self.curves, self.dag, self.panel, self.ranking_fig, self.tau_fig, *extra,
                *(self.interference.figures if self.interference is not None else [])]

    @property
    def refreshing(self) -> bool:
        return self._task is not None and not self._task.done()

    def refresh(self, force_slow: bool = False) -> int:
        """Pull the new events once and update the views; returns how many events were read."""
        if self._closed:
            return 0
        events = self.run.events.since(self._seq)
        if events:
            self._seq = events[-1].seq
        if self._auto_metrics:
            first = next((e for e in events if e.kind == "step"), None)
            if first is not None:
                self._choose_metrics(first.data)
        new: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in self.metrics}
        for ev in events:
            if ev.kind == "step":
                for m in self.metrics:
                    v = ev.data.get(m)
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        new[m][0].append(float(ev.step))
                        new[m][1].append(float(v))
                if "arch" in ev.data:
                    self._arch = str(ev.data["arch"])
                    self._sampled[self._arch] = self._sampled.get(self._arch, 0) + 1
                if self.budget is not None and isinstance(ev.data.get(self.budget["metric"]), int | float):
                    self._budget_pts[0].append(float(ev.step))
                    self._budget_pts[1].append(float(ev.data[self.budget["metric"]]))
                    self._budget_dirty = True
                self._phase = None  # training again
                self._step_times.append((ev.time, int(ev.step or 0)))
            elif ev.kind == "snapshot":
                self._snapshot = ev.data.get("data")
                self._snapshot_dirty = True
            elif ev.kind == "phase":
                self._phase = dict(ev.data)
            elif ev.kind == "ranking":
                self._phase = None
                self._on_ranking(ev.step, ev.data)
            elif ev.kind == "alarm":
                self._on_alarm(ev.step, ev.data)
            elif ev.kind == "interference":
                self._interference_pending = (ev.step, dict(ev.data))  # the newest one is drawn
        if self._interference_pending is not None:
            step, data = self._interference_pending
            self._interference_pending = None
            self._show_interference().update(step, data)
        self._extend_curves(new)
        self._update_status()
        now = time.monotonic()
        if force_slow or now - self._last_slow >= self.slow_interval_s:
            self._last_slow = now
            self._update_slow()
        return len(events)

    def _prefill_from_store(self) -> None:
        """A resumed run starts a fresh event log: draw its earlier steps from the run store."""
        run = self.run
        if run.store is None or run.job.step_count == 0 or run.events.since(0, kinds="step"):
            return
        df = run.store.metrics(run.run_id)
        df = df[df.index <= run.job.step_count]
        if self._auto_metrics and len(df.columns):
            self._choose_metrics({c: 0.0 for c in df.columns})
        new = {m: (df.index[df[m].notna()].astype(float).tolist(), df[m].dropna().astype(float).tolist())
               if m in df.columns else ([], []) for m in self.metrics}
        self._extend_curves(new)

    def _choose_metrics(self, data: dict[str, Any]) -> None:
        """Pick the two curves from what the job reports (once, at its first step)."""
        self._auto_metrics = False
        numeric = [k for k, v in data.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        chosen = [k for k in CURVE_PRIORITY if k in numeric][:2]
        chosen += [k for k in numeric if k not in chosen and k not in _BOOKKEEPING][: 2 - len(chosen)]
        if not chosen or tuple(chosen) == self.metrics:
            return
        self.metrics = tuple(chosen)
        self._x = {m: [] for m in self.metrics}
        self._raw = {m: [] for m in self.metrics}
        self._smooth = {m: [] for m in self.metrics}
        copy_figure(self.curves, training_curves(None, self.metrics, self.smoothing, title="Training curves",
                                                 height=280))

    def _extend_curves(self, new: dict[str, tuple[list[float], list[float]]]) -> None:
        if not any(xs for xs, _ in new.values()):
            return
        traces = {(t.meta["role"], t.meta["metric"]): t for t in self.curves.data}
        with self.curves.batch_update():
            for m, (xs, ys) in new.items():
                if not xs:
                    continue
                prev = self._smooth[m][-1] if self._smooth[m] else None
                self._x[m] += xs
                self._raw[m] += ys
                self._smooth[m] += ema_extend(prev, ys, self.smoothing)
                x = np.asarray(self._x[m])
                traces[("raw", m)].x = x
                traces[("raw", m)].y = np.asarray(self._raw[m])
                traces[("smooth", m)].x = x
                traces[("smooth", m)].y = np.asarray(self._smooth[m])

    def _update_status(self) -> None:
        run = self.run
        status = run.status
        step, total = run.progress
        phase = self._phase if status == "running" else None
        if phase is not None:  # the supernet ranks: say so, with its own bar
            done, n = int(phase.get("done", 0)), max(1, int(phase.get("total", 1)))
            self.progress.max, self.progress.value = n, min(done, n)
            self.progress.bar_style = "warning"
            when = f"every {self._rank_every} steps" if phase.get("periodic") and self._rank_every else (
                "periodic" if phase.get("periodic") else "final")
            self.progress_text.value = (f"<span style='font-size:12px;color:#444'><b>ranking</b> ({when}, step "
                                        f"{step:,}): {done:,} / {n:,} architectures</span>")
        else:
            self.progress.max = max(1, total)
            self.progress.value = min(step, max(1, total))
            self.progress.bar_style = {"failed": "danger", "finished": "success", "paused": "warning"}.get(status, "info")
            rate = self.steps_per_s()
            eta = eta_text(total - step, rate) if status == "running" else None
            self.progress_text.value = (f"<span style='font-size:12px;color:#444'>{step:,} / {total:,} steps"
                                        + (f" · {rate:.1f} steps/s" if rate and status == "running" else "")
                                        + (f" · <b>{eta}</b> left to the last step" if eta else "") + "</span>")
        shown = status if phase is None else f"{status}:ranking"
        if shown != self._shown_status:
            self._shown_status = shown
            self.status.value = status_badge(status) + (" " + badge("ranking", "#ef6c00") if phase else "")
            self._update_buttons(status)
            self.summary.value = self._summary_html(self._ranking_summary)
            if status in ("stopped", "failed") and self._ranking_shown and not self._final_ranking:
                copy_figure(self.ranking_fig, empty_figure(self._no_ranking_note(status, step, total), "Ranking", 300))
        if status == "failed" and not self._error_shown:
            self._error_shown = True
            err = run.error
            title = f"the run failed at step {step}: {type(err).__name__}: {err}" if err else "the run failed"
            self.error.value = error_box(title, run.traceback)
            self.error.layout.display = "block"

    def _no_ranking_note(self, status: str, step: int, total: int) -> str:
        """Why the ranking panel stays empty after Stop (or a failure)."""
        why = (f"stopped at step {step:,} of {total:,}" if status == "stopped"
               else f"the run failed at step {step:,}")
        lines = [f"No final ranking: {why}.", "The supernet ranks every architecture at the end of training."]
        if self._tau["all"]:
            lines.append(f"Last periodic ranking (step {int(self._tau['step'][-1]):,}): "
                         f"Kendall τ = {self._tau['all'][-1]:+.3f} (plot below).")
        if status == "stopped":
            lines.append(f"Continue it with Run.resume({str(self.run.run_id)!r}).")
        return "<br>".join(html.escape(x) for x in lines)

    def steps_per_s(self) -> float | None:
        """Recent training speed from the step events' timestamps."""
        recent = self._step_times[-50:]
        self._step_times = recent
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return None
        return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])

    def _update_slow(self) -> None:
        sampled = sum(self._sampled.values())
        if self._arch is not None and (self._arch != self._shown_arch or sampled != self._sampled_shown) \
                and self.space is not None:
            self._sampled_shown = sampled
            try:
                # the architecture string wrapped under the title: it fits the half-width box
                title, lines = arch_title("Current architecture", arch_caption(self.space, self._arch), width=52)
                fig = dag_figure(self.space, self._arch, height=250 + 17 * lines, title=title, title_lines=lines,
                                 visits=self._sampled)
            except ValueError:
                fig = empty_figure(f"cannot draw {self._arch}", "Current architecture", 260)
            copy_figure(self.dag, fig)
            self._shown_arch = self._arch
        if self._budget_dirty and self.budget_fig is not None:
            self._budget_dirty = False
            copy_figure(self.budget_fig, budget_figure(*self._budget_pts, self.budget))
        if self._snapshot_dirty:
            self._snapshot_dirty = False
            copy_figure(self.panel, self.panel_figure(self._snapshot))
        self.summary.value = self._summary_html(self._ranking_summary)
        if self.masks_fig is not None and not self._masks_drawn and self.run.status in TERMINAL:
            self._masks_drawn = True
            copy_figure(self.masks_fig, self.masks_figure())

    def masks_figure(self, n: int = 3):
        """Image, true mask and predicted mask of the first ``n`` validation scenes, for the path the
        ranking selected (else the last sampled one)."""
        from nasbench_lab.viz.trellis import mask_figure

        job = self.run.job
        arch = (self._ranking_summary or {}).get("selected") or getattr(getattr(job, "ranking", None), "attrs",
                                                                         {}).get("selected") or self._arch
        if arch is None:
            return empty_figure("no path was trained", "Masks", 260)
        try:
            p = job.predictions(arch, n)
        except Exception as exc:  # a view must not break the dashboard
            return empty_figure(f"masks failed: {type(exc).__name__}: {exc}", "Masks", 260)
        return mask_figure(p["images"], p["truth"], p["pred"], p["classes"], iou=p.get("iou"),
                           title=f"{arch}: validation scenes (mIoU {100 * p['mIoU']:.1f} % on these)")

    def panel_figure(self, snapshot: dict[str, Any] | None):
        """The method's own panel, else the sampling frequency from ``counts``, else a note."""
        if self.space is not None:
            ctx = PanelContext(self.space, self.benchmark, self.method)
            try:
                fig = panel_figure(snapshot, ctx)
            except Exception as exc:  # a broken panel must not break the dashboard
                return empty_figure(f"panel failed: {type(exc).__name__}: {exc}", "Method view", 300)
            if fig is not None:
                # panels choose their height (a mixture's heatmap needs more than a histogram)
                fig.update_layout(height=int(min(max(fig.layout.height or 300, 300), 700)))
                return fig
            if snapshot and isinstance(snapshot.get("counts"), dict):
                return sampling_frequency(snapshot["counts"], self.space, benchmark=self.benchmark, height=300)
        return empty_figure("this method publishes no view", "Method view", 300)

    # ------------------------------------------------------------------ ranking
    def _on_ranking(self, step: int | None, data: dict[str, Any]) -> None:
        summary = dict(data.get("summary") or {})
        table = data.get("table")
        df = pd.DataFrame(table) if table else None
        if df is not None and "truth" not in df.columns and self.benchmark is not None and "arch" in df:
            # The job had no ground truth for its dataset; compare with the dashboard's benchmark.
            try:
                df["truth"] = [self.benchmark.query(a) for a in df["arch"]]
                # the job's own order: by estimate, ties broken by validation loss (est_rank)
                score = -df["est_rank"].astype(float) if "est_rank" in df else df["estimate"]
                summary.update(ranking_summary(score, df["truth"]))
                summary["benchmark"] = f"{self.benchmark.space}/{self.benchmark.dataset}"
            except (KeyError, ValueError):
                df = df.drop(columns=["truth"], errors="ignore")
        tau = summary.get("kendall_tau")
        if isinstance(tau, int | float) and math.isfinite(tau):
            top10 = summary.get("kendall_tau_top10")
            self._tau["step"].append(float(step or 0))
            self._tau["all"].append(float(tau))
            self._tau["top10"].append(float(top10) if isinstance(top10, int | float) else math.nan)
            if data.get("periodic") or len(self._tau["step"]) > 1:
                self._draw_tau()
        if df is not None and len(df):
            self._final_ranking = True
            if not self._ranking_shown:
                self._arrange(True)
            df.attrs["summary"] = summary
            self.ranking = df
            copy_figure(self.ranking_fig, ranking_scatter(df, height=340))
        self._ranking_summary = summary
        self.summary.value = self._summary_html(summary)

    def _draw_tau(self) -> None:
        t = self._tau
        with self.tau_fig.batch_update():
            for trace in self.tau_fig.data:
                trace.x = t["step"]
                trace.y = t["top10"] if trace.meta["role"] == "tau_top10" else t["all"]
            last = t["all"][-1]
            # two lines: the numbers below the title, clear of plotly's toolbar (top right)
            self.tau_fig.layout.title.text = f"Kendall τ vs step<br>now {last:+.3f}, n={len(t['step'])}"
            self.tau_fig.layout.margin.t = 68
        if self.tau_box.layout.display == "none":
            self.tau_box.layout.display = "flex"  # its view follows the box's new size by itself

    def _on_alarm(self, step: int | None, data: dict[str, Any]) -> None:
        rule = str(data.get("rule", "alarm"))
        self._alarms[rule] = {"step": step, **data}
        items = "".join(f"<div><b>{html.escape(r)}</b> at step {a['step']}: {html.escape(str(a.get('message', '')))}"
                        "</div>" for r, a in self._alarms.items())
        self.alarm.value = ("<div class='nbl-alarm' style='border:1px solid #e57373;background:#fdecea;color:#b71c1c;"
                            "border-radius:6px;padding:6px 12px;font-size:13px;line-height:1.45'>"
                            f"<div style='font-weight:700'>⚠ Collapse alarm</div>{items}</div>")
        self.alarm.layout.display = "block"

    def _summary_html(self, ranking: dict[str, Any] | None = None) -> str:
        run = self.run
        rows: list[tuple[str, Any]] = [("status", run.status), ("steps", f"{run.progress[0]:,} / {run.progress[1]:,}")]
        if self.benchmark is not None:
            rows.append(("ground truth", f"{self.benchmark.space}/{self.benchmark.dataset}"))
        if self._tau["all"]:
            rows.append((summary_label("kendall_tau"), f"<b>{self._tau['all'][-1]:.3f}</b>"))
        rows += summary_rows(ranking or {}, skip=("kendall_tau", "benchmark"))
        if run.store is not None:
            path = html.escape(str(run.store.path))
            rows.append(("store", f"<code title='{path}'>{html.escape(run.store.path.name)}</code>"))
        return table_html(rows)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop refreshing and remove the widgets; the run itself goes on."""
        self._stop_auto_refresh()
        for w in self.figures:
            w.close()
        self.widget.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<RunDashboard {self.run!r}>"


def _job_config(run: Run) -> dict[str, Any]:
    try:
        return dict(run.job.config() or {})
    except Exception:  # noqa: BLE001 - a job without a usable config still gets a dashboard
        return {}


def _job_space(run: Run, cfg: dict[str, Any]) -> SearchSpace | None:
    sp = getattr(run.job, "space", None)
    if isinstance(sp, SearchSpace):
        return sp
    name = cfg.get("space")
    if isinstance(name, str):
        try:
            return spaces.get(name)
        except (ValueError, ImportError):
            return None
    return None
