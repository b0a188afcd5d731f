"""StrategyArena: pick strategies, seeds and a budget, press Start, watch regret curves grow.

The arena (:class:`nasbench_lab.search.Arena`) runs in a background :class:`~nasbench_lab.runs.Run`.
Updates are pulled: :meth:`StrategyArena.refresh` reads ``run.events.since(last_seq)``, extends the
per-(strategy, seed) regret series and restyles the existing FigureWidget traces in place with
the very numbers :func:`nasbench_lab.search.arena.regret_curves` gives the static figure. In a
kernel an asyncio task on the kernel's event loop calls it about three times a second; tests
and scripts call ``refresh()`` themselves.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd

from nasbench_lab.runs import Run
from nasbench_lab.search import strategies as st_mod
from nasbench_lab.search.arena import Arena, final_regret, regret_curves, time_grid
from nasbench_lab.viz.search import regret_figure, regret_traces

from ._common import TERMINAL, FollowsRun, box, card, error_box, figure_widget, inline_error, status_badge


def _benchmarks() -> list[tuple[str, str]]:
    from nasbench_lab import benchmarks

    return [tuple(x) for x in benchmarks.available()]


class StrategyArena(FollowsRun):
    """Controls for space, dataset column, strategies, seeds and budget; live regret curves
    (against queries or simulated time) with the exact random-search expectation; a table of the
    final regret per strategy. Display it as the last expression of a cell.

    ``start=True`` starts at once with the given settings. ``store``: a RunStore, None (the
    default workspace store) or False (no store). ``strategy_options`` as for :class:`Arena`.
    """


    def __init__(self, space: str = "nb201", dataset: str = "cifar10",
                 strategies: list[str] | tuple[str, ...] = ("random", "rea", "ls", "bo"), seeds: int = 5,
                 budget: int = 100, strategy_options: dict[str, dict[str, Any]] | None = None,
                 store: Any = False, start: bool = False) -> None:
        self.strategy_options = strategy_options
        self.store = store
        self.run: Run | None = None
        self.arena: Arena | None = None
        self._seq = 0
        self._series: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
        self._task = None
        self._closed = False
        self._build(space, dataset, list(strategies), seeds, budget)
        if start:
            self.start()

    # ------------------------------------------------------------------ layout
    def _build(self, space: str, dataset: str, strategies: list[str], seeds: int, budget: int) -> None:
        pairs = _benchmarks()
        spaces_ = list(dict.fromkeys(s for s, _ in pairs)) or [space]
        self.space = W.Dropdown(options=spaces_, value=space if space in spaces_ else spaces_[0], description="space",
                                layout=W.Layout(width="220px"))
        self.dataset = W.Dropdown(options=self._datasets(self.space.value), description="dataset",
                                  layout=W.Layout(width="240px"))
        if dataset in self.dataset.options:
            self.dataset.value = dataset
        self.space.observe(self._on_space, names="value")
        names = [n for n in st_mod.names() if n != "hyperband"]  # a table has no fidelities
        self.strategies = W.SelectMultiple(options=names, value=tuple(s for s in strategies if s in names),
                                           description="strategies", rows=len(names),
                                           layout=W.Layout(width="240px"))
        self.seeds = W.BoundedIntText(value=int(seeds), min=1, max=1000, description="seeds",
                                      layout=W.Layout(width="160px"))
        self.budget = W.BoundedIntText(value=int(budget), min=1, max=100_000, description="budget",
                                       layout=W.Layout(width="180px"))
        self.axis = W.ToggleButtons(options=[("queries", "query"), ("simulated time", "time")], value="query",
                                    style={"button_width": "130px"})
        self.axis.observe(lambda _: self._redraw(), names="value")
        self.start_button = W.Button(description="Start", button_style="success", icon="play",
                                     layout=W.Layout(width="100px"))
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True, layout=W.Layout(width="100px"))
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="260px"))
        self.status = W.HTML(status_badge("created"))
        self.message = W.HTML("")
        self.error = W.HTML("")
        self.figure = figure_widget(regret_figure(pd.DataFrame(columns=["strategy", "x", "mean", "lo", "hi"]),
                                                  None, strategies=list(self.strategies.value)))
        self.table = W.HTML(self._table_html(None))
        left = W.VBox([self.space, self.dataset, self.seeds, self.budget])
        buttons = W.VBox([W.HBox([self.start_button, self.stop_button]), self.progress,
                          W.HBox([self.status]), self.axis])
        self.widget = card([W.HBox([left, self.strategies, buttons]), self.message, self.error,
                            box(self.figure), self.table])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @staticmethod
    def _datasets(space: str) -> list[str]:
        return [d for s, d in _benchmarks() if s == space]

    def _on_space(self, change: dict[str, Any]) -> None:
        self.dataset.options = self._datasets(change["new"])

    # ------------------------------------------------------------------ control
    def start(self) -> bool:
        """Build the arena from the controls and start it; False (with an inline message) when the
        settings are invalid or a run is already going."""
        if self.run is not None and self.run.status not in TERMINAL:
            self.message.value = inline_error("a run is already going; stop it first")
            return False
        try:
            arena = Arena(self.space.value, self.dataset.value, list(self.strategies.value), seeds=int(self.seeds.value),
                          budget=int(self.budget.value),
                          strategy_options={k: v for k, v in (self.strategy_options or {}).items()
                                            if k in self.strategies.value} or None)
        except Exception as exc:  # bad settings, or a resource that failed: said inline, never lost in a log
            self.message.value = inline_error(exc)
            return False
        self.message.value = ""
        self.error.value = ""
        self.arena = arena
        self._series = {(s.strategy_name, s.seed): ([], []) for s in arena.streams}
        self._seq = 0
        self.progress.max, self.progress.value = arena.total_steps, 0
        with self.figure.hold():
            self.figure.data = ()
            self.figure.add_traces(regret_traces(regret_curves({}, arena.names), arena.names, None))
        self.run = Run(arena, store=self.store, snapshot_every=max(1, arena.total_steps // 50),
                       checkpoint_every=0)
        self.run.start()
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.start_auto_refresh()
        return True

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop(wait=True)
        self.refresh()

    def show_refresh_error(self, text: str) -> None:
        self.message.value = inline_error(text)

    # ------------------------------------------------------------------ refreshing
    def refresh(self) -> int:
        """Pull the new events once and update the views; returns how many events were read."""
        if self._closed or self.run is None:
            return 0
        events = self.new_events()
        steps = 0
        for ev in events:
            if ev.kind == "step":
                d = ev.data
                times, regrets = self._series.setdefault((d["strategy"], int(d["seed"])), ([], []))
                times.append(float(d["sim_time"]))
                regrets.append(float(d["regret"]))
                steps += 1
            elif ev.kind == "error":
                self.error.value = error_box(f"the arena failed: {ev.data.get('error')}", ev.data.get("traceback"))
        status = self.run.status
        self.status.value = status_badge(status)
        self.progress.value = self.run.job.step_count
        if status in TERMINAL:
            self.start_button.disabled, self.stop_button.disabled = False, True
        if steps or status in TERMINAL:
            self._redraw()
        if status in TERMINAL:
            self.publish_static()  # a cell's last refresh() keeps the end in an executed notebook
        return len(events)

    def static_figures(self) -> list:
        return [self.figure if self._series else None]

    def static_html(self) -> str:
        status = self.run.status if self.run is not None else "created"
        return f"<div>{status_badge(status)}{self.error.value}{self.table.value}</div>"

    def static_text(self) -> str:
        return f"<{self!r}: {self.run.status if self.run is not None else 'created'}>"

    def curves(self) -> pd.DataFrame:
        """The curves currently drawn (same function and numbers as ``Arena.curves``)."""
        names = self.arena.names if self.arena is not None else []
        return regret_curves(self._series, names, by=self.axis.value)

    def _redraw(self) -> None:
        if self.arena is None:
            return
        names = self.arena.names
        by = self.axis.value
        grid = time_grid(self._series) if by == "time" else None
        curves = regret_curves(self._series, names, by=by, grid=grid)
        reference = self.arena.reference(by=by, grid=grid) if (by == "query" or grid is not None) else None
        new = regret_traces(curves, names, reference)
        with self.figure.batch_update():
            for old, tr in zip(self.figure.data, new):
                old.x, old.y = tr.x, tr.y
            self.figure.layout.xaxis.title.text = "queries" if by == "query" else "simulated time (s)"
            self.figure.layout.xaxis.type = "log" if by == "time" else "linear"
        table = final_regret(self._series, names)
        if self.run is not None and self.run.status == "finished":
            table = self.arena.regret_table()
        self.table.value = self._table_html(table)

    @staticmethod
    def _table_html(table: pd.DataFrame | None) -> str:
        if table is None or not len(table):
            return "<div style='color:#888;font-size:12px'>final regret per strategy appears here</div>"
        head = "".join(f"<th style='text-align:right;padding:2px 10px'>{html.escape(c)}</th>" for c in
                       ("strategy", "queries", "seeds", "regret (mean ± sem)", "vs random (p)"))
        body = []
        for _, r in table.iterrows():
            mean, sem = r.get("regret_mean", np.nan), r.get("regret_sem", np.nan)
            p = r.get("p_vs_random", np.nan)
            cells = (html.escape(str(r["strategy"])), str(int(r.get("queries", 0))), str(int(r.get("seeds", 0))),
                     f"{mean:.3f} ± {sem:.3f}" if np.isfinite(sem) else (f"{mean:.3f}" if np.isfinite(mean) else "-"),
                     f"{p:.3g}" if isinstance(p, float) and np.isfinite(p) else "-")
            body.append("<tr>" + "".join(f"<td style='text-align:right;padding:2px 10px'>{c}</td>" for c in cells)
                        + "</tr>")
        return f"<table style='font-size:13px;border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>"

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop refreshing and remove the widgets (a running arena goes on)."""
        self._stop_auto_refresh()
        self.figure.close()
        self.widget.close()

    def __repr__(self) -> str:
        return f"<StrategyArena {self.run!r}>"
