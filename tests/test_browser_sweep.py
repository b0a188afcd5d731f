"""Notebook 07 in a real JupyterLab: the sweep view follows a live sweep (a compare-samplers
sweep on a pool of 2 worker processes): runs move from queued/running to done, the result table
fills in, with a clean console. Uses the shared server and helpers of tests/browser_util.py."""

from __future__ import annotations

import pytest
from browser_util import (
    assert_clean_console,
    browser,
    cell_index,
    open_notebook,
    run_all_above,
    shot,
    wait_until,
)
from test_browser import lab  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

JS_SWEEP = """() => {
  const v = document.querySelector('.nbl-sweep');
  if (!v) return null;
  const runs = Array.from(v.querySelectorAll('.nbl-sweep-run')).map(r => r.dataset.status);
  return {runs, results: v.querySelectorAll('.nbl-sweep-result').length,
          counts: (v.querySelector('.nbl-sweep-counts') || {}).textContent || ''};
}"""


def test_sweep_view_follows_a_live_sweep_in_jupyterlab(lab, tmp_path):  # noqa: F811 - the fixture of test_browser
    url, cells = lab("09_sweeps.ipynb", "STEPS, SEEDS, RANK_IMAGES, WORKERS = 6, [0, 1], 16, 2\n")
    wait_cell = cell_index(cells, "await view.wait()")
    seen: list[dict] = []
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)

        def look() -> dict | None:
            v = page.evaluate(JS_SWEEP)
            if v and v["runs"]:
                seen.append(v)
            return v

        first = wait_until(lambda: (v := look()) and len(v["runs"]) == 4 and v, 300, "the sweep view with its 4 runs")
        assert set(first["runs"]) <= {"queued", "running", "done"}
        final = wait_until(lambda: (v := look()) and v["runs"].count("done") == 4 and v["results"] == 4 and v, 600,
                           "all 4 runs done and in the result table")
        assert "4 done" in final["counts"] and "0 running" in final["counts"]
        # it was live: the view showed the sweep before it ended (runs not yet done), and the
        # done count never went back
        done = [s["runs"].count("done") for s in seen]
        assert min(done) < 4 and done == sorted(done), done
        view = page.locator(".nbl-sweep").first
        shot(page, view, tmp_path, "sweep_view.png")
        assert_clean_console(page)
