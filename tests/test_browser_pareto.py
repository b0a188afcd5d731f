"""Notebook 05 in a real JupyterLab: the live Pareto view renders and grows (faint points, bold
fronts, the dashed true front), then the hypervolume table appears. Reuses the helpers of
tests/test_browser.py."""

from __future__ import annotations

import pytest

from tests.test_browser import _browser, _cell_index, _open_notebook, _run_all_above, _shot, _wait_until, lab  # noqa: F401

pytestmark = pytest.mark.browser

JS_PARETO = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(d => d.layout && d.layout.title && String(d.layout.title.text).startsWith('Pareto fronts'))
  .map(d => ({roles: d.data.map(t => (t.meta && t.meta.role) || ''), points: d.data.map(t => (t.x || []).length),
              dash: d.data.map(t => (t.line && t.line.dash) || ''), width: d.getBoundingClientRect().width}))"""


def test_pareto_front_grows_live_in_jupyterlab(lab):  # noqa: F811 - the fixture of test_browser
    info = lab("05_multi_objective.ipynb", "SEEDS, BUDGET, BUDGET_SAMPLES, LATENCY_CHECK = 2, 150, 2000, 0\n")
    cells = info["cells"]
    wait_cell = _cell_index(cells, "await search.wait()")
    with _browser(info["tmp"]) as page:
        _open_notebook(page, info["url"])
        _run_all_above(page, wait_cell)
        first = _wait_until(lambda: (v := page.evaluate(JS_PARETO)) and v[0]["points"][0] > 0 and v[0], 240,
                            "the Pareto view with its first points")
        assert first["roles"] == ["points", "front", "points", "front", "true_front"]
        assert first["dash"][-1] == "dash" and first["points"][-1] >= 5 and first["width"] > 300
        later = _wait_until(lambda: (v := page.evaluate(JS_PARETO)) and v[0]["points"][2] > first["points"][2]
                            and v[0], 240, "the fronts to grow")
        assert later["points"][1] >= 1 and later["points"][3] >= 1  # a bold front per strategy
        _shot(page, page.locator(".jp-Cell").nth(wait_cell - 1), info["tmp"], "pareto_live.png")
