"""Notebook 07 in a real JupyterLab: the dashboard's gradient-interference panel updates live
(a later step's measurement replaces the first), is titled and drawn, and a click on a matrix cell
puts the two children side by side. Uses the shared server and helpers of tests/browser_util.py."""

from __future__ import annotations

import re

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
STEPS, EVERY = 24, 6


def test_interference_panel_updates_live_and_a_click_shows_the_pair(lab, tmp_path):  # noqa: F811
    url, cells = lab("07_interference.ipynb", f"STEPS, EVERY, K, IMAGES, BATCH_SIZE = {STEPS}, {EVERY}, 4, 16, 16\n")
    wait_cell = cell_index(cells, "await dash.wait()")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)
        dash = page.locator(".nbl-card").filter(has_text="nb201 · uniform · digits").first
        dash.wait_for(timeout=ms(180))

        def measured():
            g = panel(dash, "Gradient interference · step")
            if g and g["types"][:1] == ["heatmap"]:
                return {**g, "step": int(re.search(r"step (\d+)", g["title"]).group(1))}
            return None

        first = wait_until(measured, 300, "the first interference measurement")
        later = wait_until(lambda: (g := measured()) and g["step"] > first["step"] and g, 300,
                           "a later measurement to replace the first")
        assert later["step"] % EVERY == 0 and later["width"] > 300
        assert later["roles"][:2] == ["matrix", "measured"] and "reference" in later["roles"]
        assert later["points"][0] == 4  # the 4 x 4 matrix (rows)
        shot(page, dash, tmp_path, "interference_live.png")

        # a click on a matrix cell: the two children side by side, with their distance and cosine
        gd = dash.locator(".js-plotly-plot").filter(has_text="pairwise cosine").first
        cell = gd.locator(".nsewdrag[data-subplot='xy']").first
        box = cell.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.875, box["y"] + box["height"] * 0.125)  # row 0, column 3
        wait_until(lambda: panel(dash, "child #") is not None, 60, "the pair's DAGs after the click")
        titles = [g["title"] for g in dash.evaluate("""el => Array.from(el.querySelectorAll('.js-plotly-plot'))
            .map(gd => ({title: gd.layout && gd.layout.title ? String(gd.layout.title.text || '') : ''}))""")]
        assert sum(t.startswith("child #") for t in titles) == 2
        assert re.search(r"#\d+ vs #\d+: distance \d+, cosine", dash.inner_text())
        dash.locator("span", has_text="finished").first.wait_for(timeout=ms(300))
        assert not blank_panels(dash), blank_panels(dash)
        shot(page, dash, tmp_path, "interference_pair.png")
        assert_clean_console(page)
