"""What an executed notebook shows where no kernel serves its widgets (issue 29).

A teacher hands out executed notebooks. Opened in JupyterLab, a widget output can only draw
from a live kernel or from widget state saved in the notebook, and an *untrusted* notebook (any
notebook you did not run yourself) renders no widget at all: it falls back to the output's
safest representation, which for a plain ipywidget is ``VBox(children=(HTML(...`` text.

So every workbench view is displayed as several outputs, each a mime bundle:

* the view itself: the widget, plus ``text/html`` (title, status, summary) and a one-line
  ``text/plain`` for a reader without widgets;
* one output per figure (its "static slot"): a plotly figure (``application/vnd.plotly.v1+json``,
  a *safe* mime type, drawn in untrusted notebooks too) beside a widget view with an empty model
  id, which JupyterLab's widget renderer hides. With widgets available (trusted, live or saved
  state) the reader sees the live view only; without, the static figures.

The slots are filled again (``update_display``) and every widget's state is sent again when a
run ends (``publish_static``, called from the views' ``wait()`` and their last refresh). The
second matters for state saved by nbclient (``store_widget_state``): it keeps only the widget
messages of the cell it is executing, so a view refreshed by a background task would otherwise
be saved as it was when its cell ran ("running 0/300" under a header that says "finished").
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go
import plotly.io as pio

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: a widget view of no model: JupyterLab's widget renderer hides its output ("the view was removed")
HIDDEN_VIEW = {"version_major": 2, "version_minor": 0, "model_id": ""}


def figure_bundle(fig: go.Figure | None) -> dict[str, Any]:
    """A static slot: ``fig`` as plotly JSON for readers without widgets (None: an empty slot)."""
    bundle: dict[str, Any] = {WIDGET_MIME: dict(HIDDEN_VIEW), "text/plain": ""}
    if fig is not None:
        spec = json.loads(pio.to_json(go.Figure(fig), validate=False))
        spec.setdefault("layout", {}).pop("width", None)  # follow the output area's width
        spec["layout"]["autosize"] = True
        spec["config"] = {"displaylogo": False, "responsive": True}
        bundle[PLOTLY_MIME] = spec
        title = spec["layout"].get("title", {})
        bundle["text/plain"] = f"<figure: {title.get('text', '') if isinstance(title, dict) else title}>"
    return bundle


def resend_state(widget: W.Widget) -> int:
    """Send the full state of ``widget`` and of every widget below it again; returns how many."""
    seen: set[int] = set()
    stack = [widget]
    while stack:
        w = stack.pop()
        if not isinstance(w, W.Widget) or id(w) in seen or w.comm is None:
            continue
        seen.add(id(w))
        w.send_state()
        for name in w.keys:
            value = getattr(w, name, None)
            if isinstance(value, W.Widget):
                stack.append(value)
            elif isinstance(value, list | tuple):
                stack.extend(v for v in value if isinstance(v, W.Widget))
    return len(seen)


class StaticCopy:
    """Mixin of the workbench views (``self.widget``): displayed as the widget plus static slots.

    Subclasses say what a reader without a kernel needs: ``static_figures()`` (one entry per
    slot, None where nothing is drawn yet; the count is fixed at display time) and
    ``static_html()`` / ``static_text()`` (the header and summary).
    """

    widget: W.Widget
    _static_ids: list[list[str]] | None = None

    def static_figures(self) -> list[go.Figure | None]:
        return []

    def static_html(self) -> str:
        return ""

    def static_text(self) -> str:
        return f"<{type(self).__name__}: a live view; run the notebook to use it>"

    def _main_bundle(self) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_() or {})  # a closed widget has none
        bundle["text/plain"] = self.static_text()
        html_text = self.static_html()
        if html_text:
            bundle["text/html"] = html_text
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        figures = self.static_figures()
        ids = [uuid.uuid4().hex for _ in range(1 + len(figures))]
        self._static_ids = [*(self._static_ids or []), ids]
        display(self._main_bundle(), raw=True, display_id=ids[0])
        for fig, did in zip(figures, ids[1:]):
            display(figure_bundle(fig), raw=True, display_id=did)

    def publish_static(self) -> None:
        """Fill the static slots with the figures as they are now, and send every widget's state
        again (from the cell running now, so nbclient saves it)."""
        if not self._static_ids:
            return
        from IPython.display import update_display

        figures = self.static_figures()
        main = self._main_bundle()
        for ids in self._static_ids:
            update_display(main, raw=True, display_id=ids[0])
            for fig, did in zip(figures, ids[1:]):
                update_display(figure_bundle(fig), raw=True, display_id=did)
        resend_state(self.widget)
