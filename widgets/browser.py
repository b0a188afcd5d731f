"""RunBrowser: the runs of a RunStore as a table; open one to replay its curves and read its record."""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as W
import pandas as pd

from nasbench_lab import spaces
from nasbench_lab.runs import RunStore
from nasbench_lab.viz.curves import training_curves
from nasbench_lab.viz.panels import PanelContext, panel_figure
from nasbench_lab.viz.ranking import ranking_scatter
from nasbench_lab.viz.sampling import sampling_frequency
from nasbench_lab.viz.style import empty_figure

from ._common import (
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
from .dashboard import resolve_benchmark
from .export import ExportButton

_COLUMNS = ("id", "name", "kind", "status", "step", "total_steps", "created")


class RunBrowser(StaticCopy):
    """Browse a :class:`~nasbench_lab.runs.RunStore` (default: the workspace's).

    ``runs`` is the store's table; ``open(run_id)`` (or select + "Open") replays the stored
    metrics with :func:`~nasbench_lab.viz.curves.training_curves` and shows config, summary,
    error and the last method snapshot.
    """

    def __init__(self, store: RunStore | str | None = None, metrics: tuple[str, ...] = ("loss", "reward")) -> None:
        if store is None or isinstance(store, str):
            store = RunStore(store)
        if not isinstance(store, RunStore):
            raise ValueError(f"store: expected a RunStore, a path to one, or None, got {type(store).__name__}")
        self.store = store
        self.metrics = metrics
        self.runs: pd.DataFrame = pd.DataFrame(columns=list(_COLUMNS))
        self.current: str | None = None
        self.select = W.Select(options=[], rows=8, layout=W.Layout(width="100%"))
        self.select.add_class("nbl-mono")
        self._syncing = False
        self.select.observe(lambda ch: self.open(ch["new"]) if ch["new"] and not self._syncing else None,
                            names="value")
        self.reload_button = W.Button(description="⟳ Reload", tooltip="re-read the store", layout=W.Layout(width="96px"))
        self.reload_button.on_click(lambda _b: self.reload())
        self.message = W.HTML("")  # inline errors
        self.count = W.HTML("")
        self.header = W.HTML("")
        self.curves = figure_widget(empty_figure("select a run", "Training curves", 280))
        self.panel = figure_widget(empty_figure("the method's last snapshot appears here", "Method view", 300))
        self.ranking_fig = figure_widget(empty_figure("the run's final ranking appears here", "Supernet ranking", 340))
        self.record = W.HTML("")
        self.error = W.HTML("", layout=W.Layout(display="none"))
        # the open run's found network, from its stored checkpoint
        self.export = ExportButton(self._export_target)
        title = W.HTML(f"<div style='font-size:16px;font-weight:600;color:#222'>Run browser"
                       f"<span style='font-weight:400;color:#777;font-size:12px;margin-left:10px'>"
                       f"{html.escape(str(store.path))}</span></div>")
        self.widget = card(
            [title, row([self.reload_button, self.count, self.message]),
             self.select, row([self.header, self.export.button]), self.export.output, self.error, box(self.curves),
             box(self.panel),
             W.HBox([box(self.ranking_fig, "58%"), W.VBox([section_title("Record"), self.record],
                                                          layout=W.Layout(width="42%", padding="0 0 0 12px"))],
                    layout=W.Layout(width="100%"))])
        self.reload()
        if self.select.options:  # open the newest run right away
            self.select.value = self.select.options[0][1]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def static_figures(self) -> list:
        return [self.curves if self.current else None, self.panel if self.current else None,
                self.ranking_fig if self.current else None]

    def static_html(self) -> str:
        return (f"<div><b>Run browser</b> · {len(self.runs)} run(s){' · open: ' + html.escape(self.current) if self.current else ''}"
                f"{self.header.value}{self.record.value}</div>")

    def static_text(self) -> str:
        return f"<RunBrowser {self.store.path}: {len(self.runs)} run(s)>"

    def reload(self) -> pd.DataFrame:
        """Re-read the list of runs (newest first)."""
        self.runs = self.store.runs()
        options = []
        for _, r in self.runs.iterrows():
            created = r["created"].strftime("%Y-%m-%d %H:%M") if pd.notna(r["created"]) else ""
            total = int(r["total_steps"]) if pd.notna(r["total_steps"]) else 0
            label = f"{created}  {r['status']:<9} {int(r['step']):>6}/{total:<6} {r['kind']:<10} {r['name']}"
            options.append((label, r["id"]))
        current = self.select.value
        self.select.options = options
        if current in self.runs["id"].tolist():
            self.select.value = current
        self.count.value = (f"<span style='color:#555;font-size:12px'>{len(options)} run(s)</span>" if options
                            else "<span style='color:#555;font-size:12px'>no runs yet: launch one</span>")
        return self.runs

    def _export_target(self) -> tuple[str, dict[str, Any], str]:
        if self.current is None:
            raise ValueError("select a run first")
        return self.current, {"store": self.store}, self.current

    def open(self, run_id: str) -> bool:
        """Show one run; an unknown id shows inline (returns False)."""
        try:
            rec = self.store.run(run_id)
        except KeyError as exc:
            self.message.value = inline_error(exc.args[0] if exc.args else str(exc))
            return False
        self.current = run_id
        if self.select.value != run_id and run_id in self.runs["id"].tolist():
            self._syncing = True  # highlight the opened run without opening it twice
            try:
                self.select.value = run_id
            finally:
                self._syncing = False
        cfg = rec.get("config") or {}
        space_name = cfg.get("space")
        parts = [p for p in (space_name, cfg.get("method"), cfg.get("dataset")) if p]
        self.header.value = (f"<div style='margin-top:6px'>{status_badge(rec['status'])} "
                             f"<b>{html.escape(rec.get('name') or run_id)}</b> "
                             f"<span style='color:#666'>{html.escape(' · '.join(parts))}</span></div>")
        metrics = self.store.metrics(run_id)
        copy_figure(self.curves, training_curves(metrics, self.metrics, title=f"Training curves · {len(metrics)} steps",
                                                 height=280))
        snaps = [s for s in self.store.snapshots(run_id) if s["kind"] != "ranking"]
        benchmark = self._benchmark(cfg)
        copy_figure(self.panel, self._panel(snaps[-1]["data"] if snaps else None, space_name, cfg.get("method", ""),
                                            benchmark))
        copy_figure(self.ranking_fig, self._ranking(run_id))
        rows: list[tuple[str, Any]] = [("run id", f"<code>{html.escape(run_id)}</code>"),
                                       ("steps", f"{rec.get('step') or 0:,} / {rec.get('total_steps') or 0:,}")]
        rows += summary_rows(rec.get("summary") or {})
        cfg_text = html.escape(json.dumps({k: v for k, v in cfg.items() if k != "job_class"}, indent=1, default=str))
        self.record.value = (table_html(rows) + "<details style='margin-top:6px'><summary style='cursor:pointer'>"
                             f"config</summary><pre style='font-size:11px'>{cfg_text}</pre></details>")
        if rec.get("error"):
            self.error.value = error_box("the run failed", rec["error"])
            self.error.layout.display = "block"
        else:
            self.error.value = ""
            self.error.layout.display = "none"
        self.message.value = ""
        self.export.output.value = ""  # the last export belonged to the previous run
        return True

    @staticmethod
    def _benchmark(cfg: dict[str, Any]) -> Any:
        """The ground truth the run's dashboard used (its space and dataset), or None."""
        try:
            named = cfg.get("benchmark")
            return resolve_benchmark(cfg.get("space"), cfg.get("dataset"), named if isinstance(named, str) else "auto")
        except Exception:  # noqa: BLE001 - no table (or an old config) only leaves the bars uncoloured
            return None

    def _ranking(self, run_id: str):
        """The run's final ranking scatter (stored with the run since issue 29), or why there is none."""
        stored = self.store.snapshots(run_id, kind="ranking")
        if not stored:
            return empty_figure("no final ranking stored for this run", "Supernet ranking", 340)
        data = stored[-1]["data"]
        df = pd.DataFrame(data["table"])
        df.attrs["summary"] = data.get("summary") or {}
        return ranking_scatter(df, height=340)

    def _panel(self, snapshot: dict[str, Any] | None, space_name: str | None, method: str, benchmark: Any = None):
        if snapshot is None or space_name is None:
            return empty_figure("no snapshot stored for this run", "Method view", 300)
        try:
            space = spaces.get(space_name)
            fig = panel_figure(snapshot, PanelContext(space, benchmark, method))
            if fig is None and isinstance(snapshot.get("counts"), dict):
                # bars coloured and ordered by the ground truth, as the live dashboard draws them
                fig = sampling_frequency(snapshot["counts"], space, benchmark=benchmark, height=300)
        except Exception as exc:  # an old snapshot a panel no longer reads must not break browsing
            return empty_figure(f"cannot draw the snapshot: {type(exc).__name__}: {exc}", "Method view", 300)
        return fig if fig is not None else empty_figure("this method publishes no view", "Method view", 300)

    def close(self) -> None:
        for w in (self.curves, self.panel, self.ranking_fig):
            w.close()
        self.widget.close()
