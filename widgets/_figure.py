"""LiveFigure: a plotly FigureWidget whose browser view always shows the kernel's figure.

Why not plotly's own ``go.FigureWidget`` (plotly >= 6, an anywidget):

* its ESM is plotly's whole 5 MB widget bundle, which every figure model imports afresh; in a
  busy browser that takes about 2 s per figure (measured: 1.8-2.6 s in headless Chromium on the
  2-core test box), and anywidget gives a model 2 s to initialise, after which it drops every
  message of that model for good (``[anywidget] Failed to initialize model``). The view then
  shows the figure as it was created (empty default axes) for the whole run, the blank
  "Training curves", "Current architecture" and first mixture views of issue 11;
* it sends changes as one-off messages (restyle, relayout...) and keeps the synced state
  (``_widget_data`` / ``_widget_layout``) as it was when the figure was created, so a view
  created later (a reloaded browser tab, a second view) draws the figure's first state.

A LiveFigure keeps the Python API of ``go.FigureWidget`` (``data``, ``layout``,
``batch_update()``, ``add_traces``...) but every change re-sends the whole figure as synced
state (``_widget_data`` / ``_widget_layout``, numpy arrays as binary buffers); its view is a
small ESM that draws that state with ``Plotly.react`` whenever it changes. plotly.js itself (the
``plotly.min.js`` that plotly.py ships) reaches the page once per kernel through one
:class:`PlotlyLibrary` model, so a figure model initialises in milliseconds. ``hold()`` groups
several changes into one message.

What is kept: zoom and legend clicks survive live updates (``layout.uirevision``). What is not:
plotly's browser-to-kernel callbacks (``on_click``, selections); in their place a click on a
point (a heatmap cell) reaches :meth:`LiveFigure.on_point_click` as one custom message.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
from collections.abc import Iterator
from typing import Any

import anywidget
import plotly
import plotly.graph_objects as go
import traitlets

#: the page-wide slot where the library model leaves plotly.js for the views (one per plotly version)
_SLOT = json.dumps(f"__nasbench_lab_plotly__/{plotly.__version__}")

_SLOT_JS = """
function slot() {
  let s = globalThis[SLOT];
  if (!s) {
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    s = globalThis[SLOT] = { promise, resolve, Plotly: null };
  }
  return s;
}
"""

#: the view of one figure: draws the model's synced figure, redraws when it changes
VIEW_ESM = "const SLOT = " + _SLOT + ";" + _SLOT_JS + r"""
const TYPED = { int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
                int32: Int32Array, uint32: Uint32Array, float32: Float32Array, float64: Float64Array };

// plotly.py's serializer sends 1-D numeric numpy arrays as {buffer: DataView, dtype, shape}
function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === "object") {
    if (v.buffer instanceof DataView && typeof v.dtype === "string" && TYPED[v.dtype]) {
      const dv = v.buffer;  // copied: the view's offset need not be aligned to the element size
      return new TYPED[v.dtype](dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength));
    }
    if (ArrayBuffer.isView(v)) return v;
    const out = {};
    for (const [k, x] of Object.entries(v)) if (x !== "_undefined_") out[k] = decode(x);
    return out;
  }
  return v;
}

async function plotlyjs(el) {
  const s = slot();
  if (s.Plotly) return s.Plotly;
  const note = document.createElement("div");
  note.style.cssText = "color:#888;font-size:12px;padding:8px";
  note.textContent = "loading plotly.js…";
  el.appendChild(note);
  const late = setTimeout(() => {
    note.textContent = "plotly.js has not arrived: re-run the cell (nasbench_lab.widgets' PlotlyLibrary model is missing)";
  }, 60000);
  const Plotly = await s.promise;
  clearTimeout(late);
  note.remove();
  return Plotly;
}

export default {
  async render({ model, el }) {
    const Plotly = await plotlyjs(el);
    const gd = document.createElement("div");
    el.appendChild(gd);
    const state = () => {
      const layout = decode(model.get("_widget_layout") || {});
      if (layout.uirevision === undefined) layout.uirevision = "nbl";  // keep a user's zoom across updates
      return [decode(model.get("_widget_data") || []), layout,
              { displaylogo: false, ...(model.get("_config") || {}) }];
    };
    let alive = true, drawn = false, queued = false, dirty = false;
    const draw = () => {
      if (!drawn) { dirty = true; return; }
      if (queued) return;
      queued = true;  // one redraw per frame, however many changes arrived
      requestAnimationFrame(() => {
        queued = false;
        if (alive) Plotly.react(gd, ...state());
      });
    };
    model.on("change:_widget_data", draw);
    model.on("change:_widget_layout", draw);
    await Plotly.newPlot(gd, ...state());
    // a click on a point (a heatmap cell): its coordinates to the kernel (LiveFigure.on_point_click)
    gd.on("plotly_click", (ev) => {
      const points = ((ev && ev.points) || []).map((p) => ({ x: p.x, y: p.y, curve: p.curveNumber }));
      if (points.length) model.send({ event: "click", points });
    });
    drawn = true;
    if (dirty) draw();
    // plotly sizes a figure to its container once; follow the container (cells, tabs, window)
    const ro = new ResizeObserver(() => { if (alive && gd.offsetWidth > 0) Plotly.Plots.resize(gd); });
    ro.observe(el);
    return () => { alive = false; ro.disconnect(); Plotly.purge(gd); };
  },
};
"""


@functools.cache
def _library_source() -> str:
    """plotly.min.js as an ES module whose default export is plotly.js (leaving an existing
    ``window.Plotly`` of another version alone)."""
    from plotly.offline import get_plotlyjs

    return ("const module = { exports: {} };\nconst hadPlotly = 'Plotly' in globalThis, oldPlotly = globalThis.Plotly;\n"
            + get_plotlyjs()
            + "\n;const Plotly = module.exports;\nif (hadPlotly) globalThis.Plotly = oldPlotly;\nexport default Plotly;\n")


#: the library model's own code: tiny, so anywidget's 2 s deadline for a model to initialise covers
#: only this; plotly.js (``_source``, 4.8 MB) is parsed after ``initialize`` returns. As the ESM
#: itself it missed that deadline in a busy browser ("[anywidget] Failed to initialize model").
LIBRARY_ESM = "const SLOT = " + _SLOT + ";" + _SLOT_JS + r"""
export default {
  initialize({ model }) {
    const s = slot();
    if (s.Plotly || s.loading) return;
    s.loading = true;
    const url = URL.createObjectURL(new Blob([model.get("_source")], { type: "text/javascript" }));
    import(url)
      .then((m) => { s.Plotly = m.default; s.resolve(m.default); })
      .catch((e) => { s.loading = false; console.error("nasbench_lab: plotly.js did not load", e); })
      .finally(() => URL.revokeObjectURL(url));
  },
};
"""


class PlotlyLibrary(anywidget.AnyWidget):
    """Delivers plotly.js to the browser once per kernel for every :class:`LiveFigure` (it has no
    view; its model's ``initialize`` fills the page-wide slot the figure views wait on)."""

    _esm = LIBRARY_ESM
    #: plotly.js as a module, given by :func:`plotly_library` (read on first use, not at import: 4.8 MB)
    _source = traitlets.Unicode("").tag(sync=True)


_LIBRARY: PlotlyLibrary | None = None


def plotly_library() -> PlotlyLibrary:
    """The kernel's one :class:`PlotlyLibrary` (created, or re-created after ``close()``)."""
    global _LIBRARY
    if _LIBRARY is None or _LIBRARY.comm is None:
        _LIBRARY = PlotlyLibrary(_source=_library_source())
    return _LIBRARY


class LiveFigure(go.FigureWidget):
    """A ``go.FigureWidget`` that syncs the whole figure as state (see the module docstring)."""

    _esm = VIEW_ESM
    _nbl_hold = 0
    _nbl_dirty = False
    _nbl_live = False
    _nbl_clicks: list | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        plotly_library()  # before this figure's own model, so plotly.js is on its way
        super().__init__(*args, **kwargs)
        self._nbl_live = True

    @contextlib.contextmanager
    def hold(self) -> Iterator[LiveFigure]:
        """Send the figure once, at the end of the block, whatever changed inside it."""
        self._nbl_hold += 1
        try:
            yield self
        finally:
            self._nbl_hold -= 1
            if not self._nbl_hold and self._nbl_dirty:
                self.sync()

    def on_point_click(self, callback: Any) -> None:
        """``callback(points)`` on a click in the browser; ``points``: ``[{"x", "y", "curve"}]``."""
        if not self._nbl_clicks:
            self._nbl_clicks = []
            self.on_msg(self._nbl_message)
        self._nbl_clicks.append(callback)

    def click(self, x: Any, y: Any, curve: int = 0) -> None:
        """What a browser click on the point (``x``, ``y``) does (scripts and tests)."""
        self._nbl_message(self, {"event": "click", "points": [{"x": x, "y": y, "curve": curve}]}, [])

    def _nbl_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "click" and isinstance(content.get("points"), list):
            for cb in list(self._nbl_clicks or []):
                cb(content["points"])

    def sync(self) -> None:
        """Send the whole figure (data and layout in one message) to the browser."""
        self._nbl_dirty = False
        with self.hold_sync():
            self._widget_data = copy.deepcopy(self._data)
            self._widget_layout = copy.deepcopy(self._layout_obj._props)

    def _nbl_changed(self, *_args: Any, **_kwargs: Any) -> None:
        if not self._nbl_live:
            return
        if self._nbl_hold:
            self._nbl_dirty = True
        else:
            self.sync()

    # plotly calls these after each change; a LiveFigure sends its state instead of a message
    _send_relayout_msg = _nbl_changed
    _send_restyle_msg = _nbl_changed
    _send_update_msg = _nbl_changed
    _send_animate_msg = _nbl_changed
    _send_addTraces_msg = _nbl_changed
    _send_deleteTraces_msg = _nbl_changed
    _send_moveTraces_msg = _nbl_changed
