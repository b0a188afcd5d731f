"""Notebook 05 in a real JupyterLab: the live Pareto view renders and grows (faint points, bold
fronts, the dashed true front), titled and drawn, with a clean console. Uses the shared server
and helpers of tests/browser_util.py (the ``lab`` fixture of tests/test_browser.py)."""

from __future__ import annotations

import pytest
from browser_util import (
    assert_clean_console,
    blank_panels,
    browser,
    cell_index,
    open_notebook,
    run_all_above,
    shot,
    wait_until,
)
from test_browser import lab  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
BUDGET = 150  # queries per (strategy, seed)

JS_PARETO = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(d => d.layout && d.layout.title && String(d.layout.title.text).startsWith('Pareto fronts'))
  .map(d => ({roles: d.data.map(t => (t.meta && t.meta.role) || ''), points: d.data.map(t => (t.x || []).length),
              dash: d.data.map(t => (t.line && t.line.dash) || ''), width: d.getBoundingClientRect().width}))"""


def test_pareto_front_grows_live_in_jupyterlab(lab, tmp_path):  # noqa: F811 - the fixture of test_browser
    url, cells = lab("05_multi_objective.ipynb", f"SEEDS, BUDGET, BUDGET_SAMPLES, LATENCY_CHECK = 2, {BUDGET}, 2000, 0\n")
    wait_cell = cell_index(cells, "await search.wait()")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)
        first = wait_until(lambda: (v := page.evaluate(JS_PARETO)) and v[0]["points"][0] > 0 and v[0], 240,
                           "the Pareto view with its first points")
        assert first["roles"] == ["points", "front", "points", "front", "true_front"]
        assert first["dash"][-1] == "dash" and first["points"][-1] >= 5 and first["width"] > 300
        # every query of the shown seed reaches the browser (a fast search may be done already when
        # the first points show, so the check is the final state, not a growth between two looks)
        later = wait_until(lambda: (v := page.evaluate(JS_PARETO)) and v[0]["points"][0] == BUDGET
                           and v[0]["points"][2] == BUDGET and v[0], 300, f"all {BUDGET} queries of both strategies")
        assert first["points"][0] <= BUDGET and 1 <= later["points"][1] < BUDGET and 1 <= later["points"][3] < BUDGET
        card = page.locator(".jp-Cell").nth(wait_cell - 1).locator(".jp-OutputArea")
        assert not blank_panels(card), f"Pareto search: blank or untitled panels {blank_panels(card)}"
        shot(page, card, tmp_path, "pareto_live.png")
        assert_clean_console(page)
