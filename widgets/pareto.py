"""ParetoSearch: a multi-objective arena run live, its Pareto fronts growing as queries come in.

A :class:`~nasbench_lab.search.multiobjective.ParetoArena` runs in a background
:class:`~nasbench_lab.runs.Run`; :meth:`ParetoSearch.refresh` reads the new step events (each
carries the queried architecture's objective values and the stream's hypervolume gap) and restyles
the two FigureWidgets in place with the traces the pure builders give for the same data
(:func:`nasbench_lab.viz.pareto.pareto_traces`, :func:`nasbench_lab.viz.pareto.hv_gap_figure`).
The front view shows one seed (``seed``, default the first) of every strategy.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from nasbench_lab.runs import Run
from nasbench_lab.search.arena import regret_curves
from nasbench_lab.search.multiobjective import ParetoArena
from nasbench_lab.viz.pareto import hv_gap_figure, pareto_figure, pareto_traces

from ._common import TERMINAL, FollowsRun, box, card, error_box, figure_widget, status_badge


class ParetoSearch(FollowsRun):
    """Live Pareto fronts and hypervolume gaps of a :class:`ParetoArena` (display it as a cell's
    last expression). Arena arguments as for :class:`ParetoArena`; ``start=True`` starts at once."""


    def __init__(self, space: str = "nb201", dataset: str = "cifar10",
                 strategies: list[str] | tuple[str, ...] = ("random", "nsga2"), seeds: int = 3, budget: int = 100,
                 objectives: str = "acc,flops", seed: int | None = None, store: Any = False, start: bool = False,
                 **arena_options: Any) -> None:
        self.arena = ParetoArena(space, dataset, list(strategies), seeds=seeds, budget=budget, objectives=objectives,
                                 **arena_options)
        self.seed = self.arena.seeds[0] if seed is None else int(seed)
        if self.seed not in self.arena.seeds:
            raise ValueError(f"seed: {seed!r} is not one of the arena's seeds {self.arena.seeds}")
        self.store = store
        self.run: Run | None = None
        self._seq = 0
        self._task = None
        self._closed = False
        self._points: dict[str, list[list[float]]] = {n: [] for n in self.arena.names}
        self._series: dict[tuple[str, int], tuple[list[float], list[float]]] = {
            (s.strategy_name, s.seed): ([], []) for s in self.arena.streams}
        obj = self.arena.names_obj[:2]
        self.front = figure_widget(pareto_figure(self._points, self._true(), obj))
        self.gap = figure_widget(hv_gap_figure(regret_curves({}, self.arena.names), self.arena.names))
        self.status = W.HTML(status_badge("created"))
        self.progress = W.IntProgress(value=0, min=0, max=self.arena.total_steps, layout=W.Layout(width="260px"))
        self.error = W.HTML("")
        self.table = W.HTML("")
        title = W.HTML(f"<b>{html.escape(repr(self.arena))}</b>")
        self.widget = card([title, W.HBox([self.status, self.progress]), self.error, box(self.front), box(self.gap),
                            self.table])
        if start:
            self.start()

    def _true(self) -> list[list[float]]:
        front = self.arena.table_front[self.arena.table_front["on_front"]]
        return front[list(self.arena.names_obj[:2])].to_numpy().tolist()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self.run is not None:
            raise ValueError("ParetoSearch: this search has started already; make a new one")
        self.run = Run(self.arena, store=self.store, snapshot_every=max(1, self.arena.total_steps // 50),
                       checkpoint_every=0)
        self.run.start()
        self.start_auto_refresh()

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop(wait=True)
        self.refresh()

    def show_refresh_error(self, text: str) -> None:
        self.error.value = error_box(text, None)

    # ------------------------------------------------------------------ refreshing
    def refresh(self) -> int:
        """Pull the new events once and restyle the figures; returns how many events were read."""
        if self._closed or self.run is None:
            return 0
        events = self.new_events()
        steps = 0
        for ev in events:
            if ev.kind == "step":
                d = ev.data
                key = (d["strategy"], int(d["seed"]))
                times, gaps = self._series[key]
                times.append(float(d["sim_time"]))
                gaps.append(float(d["hv_gap"]))
                if key[1] == self.seed:
                    self._points[key[0]].append([float(v) for v in d["objectives"][:2]])
                steps += 1
            elif ev.kind == "error":
                self.error.value = error_box(f"the search failed: {ev.data.get('error')}", ev.data.get("traceback"))
        self.status.value = status_badge(self.run.status)
        self.progress.value = self.arena.step_count
        if steps or self.run.status in TERMINAL:
            self._redraw()
        if self.run.status in TERMINAL:
            self.publish_static()  # a cell's last refresh() keeps the end in an executed notebook
        return len(events)

    def static_figures(self) -> list:
        drawn = any(self._points.values())
        return [self.front if drawn else None, self.gap if drawn else None]

    def static_html(self) -> str:
        status = self.run.status if self.run is not None else "created"
        return (f"<div><b>{html.escape(repr(self.arena))}</b> {status_badge(status)}{self.error.value}"
                f"{self.table.value}</div>")

    def static_text(self) -> str:
        return f"<ParetoSearch {self.arena!r}: {self.run.status if self.run is not None else 'created'}>"

    def _redraw(self) -> None:
        new = pareto_traces(self._points, self._true(), self.arena.names_obj[:2])
        with self.front.batch_update():
            for old, tr in zip(self.front.data, new):
                old.x, old.y = tr.x, tr.y
        curves = regret_curves(self._series, self.arena.names)
        new_gap = hv_gap_figure(curves, self.arena.names).data
        with self.gap.batch_update():
            for old, tr in zip(self.gap.data, new_gap):
                old.x, old.y = tr.x, tr.y
        if self.run is not None and self.run.status == "finished":
            t = self.arena.hv_table()
            self.table.value = t.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)

    def close(self) -> None:
        self._stop_auto_refresh()
        self.front.close()
        self.gap.close()
        self.widget.close()
