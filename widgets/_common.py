"""Small pieces shared by the workbench widgets: figure widgets, badges, inline messages."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from nasbench_lab.errors import describe
from nasbench_lab.metrics import summary_label
from nasbench_lab.runs.openmp import release_idle_team
from nasbench_lab.viz.style import STATUS_COLORS

from ._figure import LiveFigure
from ._static import StaticCopy

#: the few CSS rules ipywidgets' Layout cannot express (gaps, rounded cards), scoped by class
CSS = """<style>
.nbl-card { border: 1px solid #dcdcdc; border-radius: 8px; padding: 10px 14px; background: #fff;
            box-shadow: 0 1px 3px rgba(0,0,0,0.06); }
.nbl-row { gap: 8px; }
.nbl-tight { gap: 4px; }
.nbl-mono select { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.nbl-card .widget-button { border-radius: 4px; }
.nbl-fig { width: 100%; min-width: 0; flex: 1 1 auto; }
/* a view drawn from state saved in the notebook, with no kernel behind it: one quiet note on the
   card instead of ipywidgets' red broken-chain icon on every child */
.nbl-card.jupyter-widgets-disconnected::before, .nbl-card .jupyter-widgets-disconnected::before { display: none; }
.nbl-offline { display: none; color: #777; font-size: 12px; font-style: italic; }
.nbl-card.jupyter-widgets-disconnected .nbl-offline { display: block; }
</style>"""


#: shown by the CSS above only where the card has no kernel (a saved notebook opened later)
OFFLINE_NOTE = ("<div class='nbl-offline'>saved view: no kernel is connected, so it shows the state at the "
                "end of the run and its controls do nothing (run the notebook to use them)</div>")


def card(children: list[W.Widget], **layout: Any) -> W.VBox:
    """The outer box of a workbench widget (border, rounded corners, padding)."""
    out = W.VBox([W.HTML(CSS, layout=W.Layout(display="none")), W.HTML(OFFLINE_NOTE), *children],
                 layout=W.Layout(width="100%", **layout))
    out.add_class("nbl-card")
    return out


def row(children: list[W.Widget], cls: str = "nbl-row", **layout: Any) -> W.HBox:
    """A horizontal box with a gap between its children."""
    out = W.HBox(children, layout=W.Layout(align_items="center", **layout))
    out.add_class(cls)
    return out


def figure_widget(fig: go.Figure) -> LiveFigure:
    """A :class:`~._figure.LiveFigure` that fills its container's width (the figure keeps its
    height; the browser view follows the container's size)."""
    fw = LiveFigure(fig)
    fw.layout.autosize = True
    fw.add_class("nbl-fig")
    return fw


def copy_figure(fw: LiveFigure, fig: go.Figure) -> None:
    """Show ``fig`` in the existing figure widget ``fw`` (never a new widget), in one message.

    Traces of the same number and types are restyled in place; otherwise the traces are swapped.
    The layout is replaced as a whole (the browser receives the whole figure, so nothing of the
    old one, such as its annotations, stays behind).
    """
    with fw.hold():
        same = len(fw.data) == len(fig.data) and all(a.type == b.type for a, b in zip(fw.data, fig.data))
        if not same:
            fw.data = ()
            fw.add_traces(list(fig.data))
        elif fig.data:
            with fw.batch_update():
                for old, new in zip(fw.data, fig.data):
                    old.update(new.to_plotly_json(), overwrite=True)
        fw.layout = fig.layout
        fw.layout.autosize = True


def box(child: W.Widget, width: str = "100%", **layout: Any) -> W.Box:
    """Wrap a widget to give it a width in a flex row (FigureWidget's ``layout`` is plotly's)."""
    return W.Box([child], layout=W.Layout(width=width, min_width="0", **layout))


def badge(text: str, color: str) -> str:
    return (f"<span style='background:{color};color:white;border-radius:10px;padding:2px 10px;"
            f"font-weight:600;font-size:12px;letter-spacing:0.3px'>{html.escape(text)}</span>")


def status_badge(status: str) -> str:
    return badge(status, STATUS_COLORS.get(status, "#6c757d"))


def inline_error(message: str | BaseException | None) -> str:
    """Red inline message (empty string clears it); an exception is worded as the CLI words it
    (:func:`nasbench_lab.errors.describe`), so one mistake reads the same in both."""
    if isinstance(message, BaseException):
        message = describe(message)[0]
    if not message:
        return ""
    return (f"<div style='color:#c62828;font-size:12px;line-height:1.35;white-space:pre-wrap'>"
            f"⚠ {html.escape(str(message))}</div>")


def error_box(title: str, traceback: str | None) -> str:
    tb = html.escape(traceback or "")
    return (f"<div style='border:1px solid #e57373;background:#fff5f5;border-radius:6px;padding:8px 12px'>"
            f"<div style='color:#c62828;font-weight:600'>⚠ {html.escape(title)}</div>"
            f"<details style='margin-top:4px'><summary style='cursor:pointer;color:#555'>traceback</summary>"
            f"<pre style='font-size:11px;max-height:260px;overflow:auto;margin:4px 0'>{tb}</pre></details></div>")


def table_html(rows: list[tuple[str, Any]]) -> str:
    """A compact two-column key/value table."""
    body = "".join(f"<tr><td style='color:#666;padding:1px 12px 1px 0'>{html.escape(str(k))}</td>"
                   f"<td style='font-weight:500'>{v}</td></tr>" for k, v in rows)
    return f"<table style='font-size:13px;border-collapse:collapse'>{body}</table>"


def fmt_number(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


#: summary keys shown first (the rest follow in the job's order)
_SUMMARY_ORDER = ("selected", "selected_tied", "kendall_tau", "kendall_tau_top10", "spearman", "top10_overlap")


def summary_rows(summary: dict[str, Any], skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """A job's summary as table rows: one label per key (:func:`nasbench_lab.metrics.summary_label`),
    rank correlations to 3 decimals, "tied with 0" left out."""
    keys = [k for k in _SUMMARY_ORDER if k in summary] + [k for k in summary if k not in _SUMMARY_ORDER]
    rows = []
    for k in keys:
        v = summary[k]
        if k in skip or v is None or isinstance(v, dict | list) or (k == "selected_tied" and not v):
            continue
        if k == "selected_true_rank" and summary.get("selected_truth_rank_in_space") == v:
            continue  # the ranked set is the whole space: one "true rank" row, not two equal ones
        if isinstance(v, float) and (k.startswith(("kendall", "spearman")) or k.endswith("overlap")):
            text = f"{v:.3f}"
        else:
            text = fmt_number(v)
        rows.append((summary_label(k), text))
    return rows


def section_title(text: str) -> W.HTML:
    return W.HTML(f"<div style='font-weight:600;font-size:13px;color:#333;margin:6px 0 2px'>{html.escape(text)}</div>")


class AutoRefresh:
    """Pulls a run's events from the kernel's event loop: ``_refresher()`` is the subclass's loop.

    The training thread never touches the widgets; an asyncio task in the kernel does, at a
    bounded rate, and a synchronous ``refresh()`` serves tests and scripts.
    """

    _closed: bool = False
    _task: asyncio.Task | None = None

    async def _refresher(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def start_auto_refresh(self) -> bool:
        """Refresh from the running event loop (the kernel's); False where none is running."""
        if self._closed or (self._task is not None and not self._task.done()):
            return self._task is not None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._task = loop.create_task(self._refresher())
        return True

    def _stop_auto_refresh(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()


#: run states after which no more events come
TERMINAL = ("finished", "failed", "stopped")


class FollowsRun(StaticCopy, AutoRefresh):
    """An :class:`AutoRefresh` view of one ``self.run`` (set by the subclass) that reads its
    events through ``refresh()`` and reports refresh errors through ``show_refresh_error``; a
    :class:`~._static.StaticCopy` filled again when the run ends."""

    run: Any = None
    _seq: int = 0
    interval_s: float = 1 / 3

    def refresh(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def show_refresh_error(self, text: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def new_events(self) -> list:
        """The run's events since the last call (the view's cursor ``_seq`` moves past them)."""
        events = self.run.events.since(self._seq)
        if events:
            self._seq = events[-1].seq
        return events

    async def _refresher(self) -> None:
        while not self._closed and self.run is not None:
            try:
                self.refresh()
            except Exception as exc:  # keep refreshing; show what went wrong
                self.show_refresh_error(f"refresh failed: {type(exc).__name__}: {exc}")
            # The kernel's thread may have run torch since the last refresh (a user's cell, or a
            # view that reads a tensor): its idle OpenMP team would slow the run's thread
            # (nasbench_lab.runs.openmp), so it is ended after each refresh.
            release_idle_team()
            if self.run.status in TERMINAL and self._seq >= self.run.events.last_seq:
                self.publish_static()
                return
            await asyncio.sleep(self.interval_s)

    async def wait(self, timeout: float | None = None) -> str:
        """``await view.wait()``: wait for the run's end while the kernel keeps refreshing."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.start_auto_refresh()
        while self.run is not None and self.run.status not in TERMINAL and (timeout is None or loop.time() - t0 < timeout):
            await asyncio.sleep(0.1)
        self.refresh()
        self.publish_static()  # from the awaiting cell: an executed notebook keeps the final views
        return self.run.status if self.run is not None else "created"
