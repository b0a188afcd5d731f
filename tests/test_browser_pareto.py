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
    panel,
    run_all_above,
    shot,
    wait_until,
)
from test_browser import lab  # noqa: F401 - the fixture
from waits import ms

pytestmark = pytest.mark.browser
QUERIES = 150  # queries per (strategy, seed)
ONE_SHOT_STEPS = 12  # the budgeted one-shot run of section 2b

JS_PARETO = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(d => d.layout && d.layout.title && String(d.layout.title.text).startsWith('Pareto fronts'))
  .map(d => ({roles: d.data.map(t => (t.meta && t.meta.role) || ''), points: d.data.map(t => (t.x || []).length),
              dash: d.data.map(t => (t.line && t.line.dash) || ''), width: d.getBoundingClientRect().width}))"""


def test_pareto_front_grows_live_in_jupyterlab(lab, tmp_path):  # noqa: F811 - the fixture of test_browser
    """Notebook 05: the budgeted one-shot run's Budget panel (every trained architecture inside
    the shaded band), then the Pareto fronts of NSGA-II and random search growing live."""
    params = f"SEEDS, QUERIES, BUDGET_SAMPLES, LATENCY_CHECK, ONE_SHOT_STEPS = 2, {QUERIES}, 2000, 0, {ONE_SHOT_STEPS}\n"
    url, cells = lab("05_multi_objective.ipynb", params)
    wait_cell = cell_index(cells, "await search.wait()")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)
        one_shot = page.locator(".nbl-card").filter(has_text="nb201 · mcts").first
        one_shot.wait_for(timeout=ms(180))
        # (plotly sizes a figure to its output area after the layout settles: late on a busy machine)
        band = wait_until(lambda: (g := panel(one_shot, "Budget: flops")) and sum(g["points"]) >= ONE_SHOT_STEPS
                          and g["width"] > 300 and g, 240, "the Budget panel, full width, with every step of the one-shot run")
        assert f"{ONE_SHOT_STEPS} steps, 0 outside" in band["title"] and band["width"] > 300, band
        assert not blank_panels(one_shot), f"budgeted one-shot: blank or untitled panels {blank_panels(one_shot)}"
        shot(page, one_shot, tmp_path, "budget_one_shot.png")
        first = wait_until(lambda: (v := page.evaluate(JS_PARETO)) and v[0]["points"][0] > 0 and v[0]["width"] > 300
                           and v[0], 240,
                           "the Pareto view with its first points")
        assert first["roles"] == ["points", "front", "points", "front", "true_front"]
        assert first["dash"][-1] == "dash" and first["points"][-1] >= 5 and first["width"] > 300
        # every query of the shown seed reaches the browser (a fast search may be done already when
        # the first points show, so the check is the final state, not a growth between two looks)
        later = wait_until(lambda: (v := page.evaluate(JS_PARETO)) and v[0]["points"][0] == QUERIES
                           and v[0]["points"][2] == QUERIES and v[0], 300, f"all {QUERIES} queries of both strategies")
        assert first["points"][0] <= QUERIES and 1 <= later["points"][1] < QUERIES and 1 <= later["points"][3] < QUERIES
        card = page.locator(".jp-Cell").nth(wait_cell - 1).locator(".jp-OutputArea")
        assert not blank_panels(card), f"Pareto search: blank or untitled panels {blank_panels(card)}"
        shot(page, card, tmp_path, "pareto_live.png")
        assert_clean_console(page)
