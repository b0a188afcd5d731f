"""SweepView: a sweep live — runs queued / running / done / failed, per-run progress, the result table filling in."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import ipywidgets as W

from nasbench_lab.runs.openmp import release_idle_team
from nasbench_lab.sweep import STATES, Sweep

from ._common import AutoRefresh, badge, card, error_box, fmt_number, inline_error, row, section_title
from ._static import StaticCopy

#: a colour per sweep state
_COLORS = {"queued": "#6c757d", "running": "#1f77b4", "done": "#2e7d32", "failed": "#c62828", "stopped": "#ef6c00"}
#: columns of the run table that are the sweep's own (the rest are the task's result)
_OWN = ("key", "name", "run_id", "status", "attempts", "step", "total", "seconds", "error")


def _bar(step: int, total: Any) -> str:
    frac = min(1.0, step / total) if isinstance(total, int | float) and total and total == total else 0.0
    return (f"<div style='width:110px;height:8px;background:#eee;border-radius:4px;display:inline-block'>"
            f"<div style='width:{100 * frac:.0f}%;height:8px;background:#1f77b4;border-radius:4px'></div></div>"
            f"<span style='color:#666;font-size:11px;margin-left:6px'>{step}/{total if total == total else '?'}</span>")


class SweepView(StaticCopy, AutoRefresh):
    """Follow a :class:`~nasbench_lab.sweep.Sweep` (``sweep.start()`` runs it in the background;
    this view reads only ``sweep.table()``, so it never slows the runs). ``refresh()`` redraws
    now (tests, scripts); in a notebook the kernel's event loop refreshes it while the sweep runs.
    The "Stop" button stops the sweep like Ctrl-C: what finished is kept."""

    interval_s: float = 0.5

    def __init__(self, sweep: Sweep, result_columns: tuple[str, ...] | None = None) -> None:
        if not isinstance(sweep, Sweep):
            raise ValueError(f"sweep: expected a nasbench_lab.sweep.Sweep, got {type(sweep).__name__}")
        self.sweep = sweep
        self.result_columns = result_columns
        self._version = -1
        self.counts = W.HTML("")
        self.runs = W.HTML("")
        self.results = W.HTML("")
        self.message = W.HTML("")
        self.stop_button = W.Button(description="■ Stop", tooltip="stop the sweep; finished runs are kept",
                                    layout=W.Layout(width="90px"))
        self.stop_button.on_click(lambda _b: self.sweep.stop())
        self.stop_button.add_class("nbl-sweep-stop")
        title = W.HTML(f"<div style='font-size:16px;font-weight:600;color:#222'>Sweep: {html.escape(sweep.name)}"
                       f"<span style='font-weight:400;color:#777;font-size:12px;margin-left:10px'>"
                       f"{html.escape(sweep.cfg.describe())}</span></div>")
        self.widget = card([title, row([self.counts, self.stop_button, self.message]), section_title("Runs"),
                            self.runs, section_title("Results"), self.results])
        self.widget.add_class("nbl-sweep")
        self.refresh()
        self.start_auto_refresh()

    # ------------------------------------------------------------------ without a kernel (widgets/_static.py)
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def static_html(self) -> str:
        return (f"<div class='nbl-sweep-static'><b>Sweep: {html.escape(self.sweep.name)}</b> "
                f"<span style='color:#777;font-size:12px'>{html.escape(self.sweep.cfg.describe())}</span>"
                f"<div>{self.counts.value}</div>{self.message.value}<div><b>Runs</b></div>{self.runs.value}"
                f"<div><b>Results</b></div>{self.results.value}</div>")

    def static_text(self) -> str:
        counts = self.sweep.counts()
        return f"<SweepView {self.sweep.name}: " + ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s]) + ">"

    def refresh(self) -> bool:
        """Redraw if the sweep changed since the last draw; whether it did."""
        if self.sweep.version == self._version and self._version >= 0:
            return False
        self._version = self.sweep.version
        df = self.sweep.table()
        counts = self.sweep.counts()
        self.counts.value = " ".join(badge(f"{counts[s]} {s}", _COLORS[s]) for s in STATES if counts[s] or s in
                                     ("queued", "running", "done"))
        self.counts.value = f"<span class='nbl-sweep-counts'>{self.counts.value}</span>"
        rows = []
        for r in df.to_dict("records"):
            status = str(r["status"])
            err = f"<div style='color:#c62828;font-size:11px'>{html.escape(str(r['error']))}</div>" \
                if r.get("error") and status in ("failed", "stopped") else ""
            retry = f" <span style='color:#ef6c00;font-size:11px'>(attempt {r['attempts']})</span>" \
                if (r.get("attempts") or 0) > 1 else ""
            rows.append(f"<tr class='nbl-sweep-run' data-status='{status}'><td style='padding:1px 10px 1px 0'>"
                        f"{html.escape(str(r['name']))}</td><td>{badge(status, _COLORS.get(status, '#6c757d'))}"
                        f"{retry}</td><td style='padding-left:10px'>{_bar(int(r['step'] or 0), r['total'])}{err}</td></tr>")
        self.runs.value = f"<table style='font-size:13px;border-collapse:collapse'>{''.join(rows)}</table>"
        done = df[df["status"] == "done"] if not df.empty else df
        cols = [c for c in (self.result_columns or [c for c in df.columns if c not in _OWN]) if c in df.columns]
        if done.empty or not cols:
            self.results.value = "<div style='color:#888;font-size:12px'>the results appear here as runs finish</div>"
        else:
            head = "".join(f"<th style='text-align:left;padding:2px 10px 2px 0;color:#555'>{html.escape(c)}</th>"
                           for c in ["run", *cols])
            body = "".join("<tr class='nbl-sweep-result'>" + "".join(
                f"<td style='padding:1px 10px 1px 0'>{fmt_number(v)}</td>" for v in [r["name"], *[r[c] for c in cols]])
                + "</tr>" for r in done.to_dict("records"))
            self.results.value = f"<table style='font-size:13px;border-collapse:collapse'><tr>{head}</tr>{body}</table>"
        if self.sweep.error is not None:
            self.message.value = error_box(f"the sweep stopped: {type(self.sweep.error).__name__}: {self.sweep.error}", None)
        return True

    async def wait(self, timeout: float | None = None) -> dict[str, int]:
        """``await view.wait()``: wait for the sweep's end while the kernel keeps refreshing; its counts."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.start_auto_refresh()
        while (self.sweep.running or self.sweep.started is None) and (timeout is None or loop.time() - t0 < timeout):
            await asyncio.sleep(0.2)
        self.refresh()
        self.publish_static()  # from the awaiting cell: an executed notebook keeps the final view
        return self.sweep.counts()

    async def _refresher(self) -> None:
        while not self._closed:
            try:
                self.refresh()
            except Exception as exc:  # keep refreshing; show what went wrong
                self.message.value = inline_error(f"refresh failed: {type(exc).__name__}: {exc}")
            release_idle_team()
            if self.sweep.started is not None and not self.sweep.running and self.sweep.ended is not None:
                self.refresh()
                self.publish_static()
                return
            await asyncio.sleep(self.interval_s)
