"""The live gradient-interference panel of a run dashboard (issue 28).

It draws each ``"interference"`` event of a one-shot run (``interference_every``): the clustered
cosine matrix of a small fixed set of children, the cosine against their distance beside the
published trend, and the layers that carry the conflict. Clicking a matrix cell puts the two
children side by side (their DAGs, distance and cosine). Your own pick of children (one canonical
string per line) is measured from the next measurement on.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from nasbench_lab.errors import describe
from nasbench_lab.spaces import SearchSpace
from nasbench_lab.training.interference import XU_TREND
from nasbench_lab.viz.dag import arch_caption, arch_title, dag_figure
from nasbench_lab.viz.interference import interference_figure
from nasbench_lab.viz.style import empty_figure

from ._common import box, copy_figure, figure_widget, inline_error, row, section_title


class InterferencePanel:
    """``update(step, data)`` with an ``"interference"`` event's data; ``widget`` to display.

    ``monitor``: the run's :class:`~nasbench_lab.training.interference.InterferenceMonitor`
    (for "Use my pick"); None hides the pick box.
    """

    def __init__(self, space: SearchSpace | None, monitor: Any = None, every: int | None = None) -> None:
        self.space = space
        self.monitor = monitor
        self.data: dict[str, Any] | None = None
        self.updates = 0
        note = (f"measured every {every} steps on a fixed set of children" if every else "no measurement yet")
        self.fig = figure_widget(empty_figure(f"Gradient interference: {note}; the first one appears then",
                                              "Gradient interference", 440))
        self.fig.on_point_click(self._on_click)
        self.pair_text = W.HTML("<span style='color:#777;font-size:12px'>click a cell of the matrix to put its two "
                                "children side by side</span>")
        # the pair's two DAG figures are built at the first click (fewer models for the browser to start)
        self.left: Any = None
        self.right: Any = None
        self.pair_row = W.HBox(layout=W.Layout(width="100%"))
        self.pick_text = W.Textarea(placeholder="your pick: one architecture per line (e.g. [4,3,3])",
                                    layout=W.Layout(width="420px", height="54px"))
        self.pick_button = W.Button(description="Use my pick", tooltip="measure these children from the next "
                                    "measurement on (empty: back to the run's own choice)")
        self.pick_button.on_click(lambda _b: self.use_pick(self.pick_text.value))
        self.message = W.HTML("")
        picker = row([self.pick_text, self.pick_button, self.message]) if monitor is not None else W.HTML("")
        self.widget = W.VBox([section_title("Where the supernet fights itself"), box(self.fig), self.pair_text,
                              self.pair_row, picker], layout=W.Layout(width="100%"))

    @property
    def figures(self) -> list:
        """Its FigureWidgets (the matrix panel, and the pair's two DAGs once shown)."""
        return [f for f in (self.fig, self.left, self.right) if f is not None]

    def update(self, step: int | None, data: dict[str, Any]) -> None:
        """Draw one measurement (the FigureWidget is updated in place)."""
        self.data = {**data, "step": step}
        self.updates += 1
        copy_figure(self.fig, interference_figure(self.data, reference=XU_TREND))

    def use_pick(self, text: str) -> bool:
        """Measure these children (one per line) from the next measurement on; "" resets."""
        self.message.value = ""
        archs = [line.strip() for line in str(text).splitlines() if line.strip()]
        try:
            self.monitor.pick(archs or None)
        except ValueError as exc:
            self.message.value = inline_error(describe(exc)[0])
            return False
        self.message.value = (f"<span style='font-size:12px;color:#2e7d32'>{len(archs)} children from the next "
                              "measurement on</span>" if archs else
                              "<span style='font-size:12px;color:#555'>back to the run's own choice</span>")
        return True

    def _on_click(self, points: list[dict[str, Any]]) -> None:
        p = next((q for q in points if isinstance(q.get("x"), str) and str(q["x"]).startswith("#")), None)
        if p is None or self.data is None:
            return
        try:
            self.show_pair(int(str(p["y"])[1:]), int(str(p["x"])[1:]))
        except (ValueError, IndexError):
            return

    def show_pair(self, i: int, j: int) -> None:
        """The children ``#i`` and ``#j`` of the last measurement, side by side."""
        data = self.data or {}
        archs = data.get("archs") or []
        a, b = archs[i], archs[j]
        cos = data["cosine"][i][j]
        d = data["distance"][i][j]
        self.pair_text.value = (f"<div style='font-size:13px'><b>#{i}</b> vs <b>#{j}</b>: distance {d}, cosine "
                                + ("— (no shared weights)" if cos is None else f"<b>{cos:+.3f}</b>") + "</div>")
        if self.left is None:
            self.left = figure_widget(empty_figure("", "child A", 240))
            self.right = figure_widget(empty_figure("", "child B", 240))
            self.pair_row.children = [box(self.left, "50%"), box(self.right, "50%")]
        for fw, name, arch in ((self.left, f"#{i}", a), (self.right, f"#{j}", b)):
            if self.space is None:
                copy_figure(fw, empty_figure(html.escape(arch), name, 240))
                continue
            title, lines = arch_title(f"child {name}", arch_caption(self.space, arch), width=44)
            copy_figure(fw, dag_figure(self.space, arch, height=230 + 17 * lines, title=title, title_lines=lines))
