"""The notebooks in a real JupyterLab, driven by headless Chromium (Playwright).

* the README's first command, ``scripts/lab``, run as a user would from another folder: the URL
  it prints opens the start notebook, with no pop-up over it;
* the tour (00): the dashboard runs live (curve grows, Pause holds it), finishes with its ranking;
  after the notebook is saved and the tab reloaded, every view shows its current state;
* every method family's dashboard: the thesis samplers (03: MCTS on a learned tree, the mixture
  and density samplers from the Launcher), DARTS (04: alpha trajectories, monitors, the alarm),
  black-box search (02: the live arena). No panel may be blank or untitled, and no widget may
  lose its model (the browser console is checked).

One JupyterLab serves all of them (the ``lab_server`` fixture, tests/conftest.py). Screenshots
of every view go to the test's folder and to <repo>/test-output/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from browser_util import (
    REPO,
    assert_clean_console,
    blank_panels,
    browser,
    cell_index,
    open_notebook,
    panel,
    plot_info,
    prompt_set,
    require_chromium,
    run_all_above,
    run_cell,
    run_from_menu,
    select_cell,
    shot,
    url_answers,
    wait_until,
    wait_while_progressing,
)
from waits import ms

pytestmark = pytest.mark.browser

STEPS = 200  # long enough to see the curve grow and pause it mid-run; short enough for a busy 2-core box

# The loss curve of the dashboard: the plotly graph whose layout title is "Training curves".
JS_POINTS = """() => {
  const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find(d => d.layout && d.layout.title && d.layout.title.text === 'Training curves');
  return gd && gd.data && gd.data[0] && gd.data[0].x ? gd.data[0].x.length : -1;
}"""
JS_RANKING = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(d => d.layout && d.layout.title && String(d.layout.title.text).includes('Kendall')).length"""


@pytest.fixture
def lab(lab_server, tmp_path):
    """``lab(notebook, params)`` -> (url, cells): a copy of the notebooks on the shared server;
    the test's kernels are shut down afterwards."""
    yield lambda notebook, params="": lab_server.notebook_copy(tmp_path.name, notebook, params)
    lab_server.shutdown_kernels()


def assert_titled_and_drawn(card, what: str) -> None:
    blank = blank_panels(card)
    assert not blank, f"{what}: blank or untitled panels {blank}"


# ----------------------------------------------------------------------------- the README's command
class _Output:
    """The launched command's output, read in a thread (so its pipe never fills up)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def url(self) -> str | None:
        return next((m.group(1) for line in self.lines if (m := re.search(r"open: (http\S+)", line))), None)


def test_the_readme_launch_command_opens_the_start_notebook(tmp_path):
    """``scripts/lab`` from another folder, as root in CI, without a display: it says what it does,
    prints the URL, and that URL shows the start notebook with no news pop-up over it."""
    require_chromium()
    start_nb = REPO / "notebooks" / "00_start_here.ipynb"
    before = start_nb.read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "JUPYTER_TOKEN")}
    # a user's own Jupyter folders are not touched; their settings start empty (no news setting)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        env[var] = str(tmp_path / sub)
    # the README's command where its .venv is the one running the tests; else the same CLI here
    if Path(sys.prefix).resolve() == (REPO / ".venv").resolve():
        cmd = [str(REPO / "scripts" / "lab")]
    else:
        cmd = [sys.executable, "-m", "nasbench_lab.cli", "lab"]
    cmd += ["--", "--ServerApp.shutdown_no_activity_timeout=900"]  # passed through; a safety net
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    out = _Output(proc)
    try:
        url = wait_until(lambda: out.url() or (proc.poll() is not None and pytest.fail(
            "the launcher exited:\n" + "\n".join(out.lines))), 300, "the launcher to print the URL")
        banner = out.lines[:out.lines.index(next(line for line in out.lines if "open: http" in line)) + 1]
        assert len(banner) <= 6, banner  # a few lines, not a wall
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/lab/tree/00_start_here\.ipynb\?token=[0-9a-f]{48}", url)
        if os.geteuid() == 0:
            assert any("--allow-root" in line for line in banner)
        assert any("no display" in line for line in banner)
        base, token = url.split("/lab/")[0], url.split("token=")[1]
        wait_until(lambda: url_answers(f"{base}/api/status?token={token}"), 120, "JupyterLab to answer")
        with browser(tmp_path) as page:
            page.goto(url)
            heading = page.locator(".jp-Notebook .jp-MarkdownOutput h1", has_text="nasbench_lab: start here")
            heading.wait_for(timeout=ms(120))
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                   "#jp-main-statusbar :text('Idle')", timeout=ms(120))
            time.sleep(3)  # JupyterLab asks its news question a moment after start-up
            assert page.get_by_text("official Jupyter news").count() == 0
            assert page.locator(".jp-Notebook .jp-Cell").count() > 5
            shot(page, None, tmp_path, "launch_start_notebook.png")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
    assert start_nb.read_bytes() == before  # opening it changed nothing in the repo


# ----------------------------------------------------------------------------- 00: the tour
def test_tour_notebook_dashboard_runs_live_and_shows_its_state_after_a_reload(lab, tmp_path):
    # a budget long enough to watch and pause, small batches to keep the CPU run short
    url, cells = lab("00_start_here.ipynb", f"STEPS = {STEPS}\nBATCH_SIZE = 16\nRANK_IMAGES = 32\n")
    wait_cell = cell_index(cells, "await dash.wait()")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        assert "await dash.wait()" in page.locator(".jp-Notebook .jp-Cell").nth(wait_cell).text_content()
        run_all_above(page, wait_cell)

        # the dashboard renders (a real widget view, not "Loading widget...") and its curve grows
        dash = page.locator(".nbl-card").filter(has_text="Training curves").first
        dash.wait_for(timeout=ms(180))
        first = wait_until(lambda: max(0, page.evaluate(JS_POINTS)) or None, 180, "the first loss points")
        grown = wait_until(lambda: (n := page.evaluate(JS_POINTS)) > first and n, 180,
                           f"the loss curve to grow past {first} points")
        assert grown > first
        assert dash.locator("text=running").count() >= 1
        assert "Loading widget" not in dash.inner_text()

        dash.locator("button", has_text="Pause").click()
        dash.locator("span", has_text="paused").first.wait_for(timeout=ms(60))
        time.sleep(1.5)  # the refresher has drawn the last steps; the curve must now stand still
        held = page.evaluate(JS_POINTS)
        time.sleep(2.0)
        assert page.evaluate(JS_POINTS) == held < STEPS
        assert_titled_and_drawn(dash, "paused dashboard")
        shot(page, dash, tmp_path, "dashboard_paused.png")

        # resume and run the rest: the final ranking scatter appears with its Kendall tau
        dash.locator("button", has_text="Resume").click()
        select_cell(page, wait_cell)
        run_from_menu(page, "Run Selected Cell and All Below", "notebook:run-all-below", prompt_set(page, wait_cell))
        # the rest of the run, then the ranking (dashboard + cell): as long as the run moves on
        wait_while_progressing(lambda: page.evaluate(JS_RANKING) >= 2,
                               lambda: (page.evaluate(JS_POINTS), dash.inner_text()), 300, "the ranking scatter")
        dash.locator("span", has_text="finished").first.wait_for(timeout=ms(60))
        assert page.evaluate(JS_POINTS) == STEPS
        assert_titled_and_drawn(dash, "finished dashboard")
        shot(page, dash, tmp_path, "dashboard_finished.png")
        # issue 27: the Export button writes the found network into the workspace and says how to load it
        dash.locator("button", has_text="Export").first.click()
        exported = dash.locator("text=exported to").first
        exported.wait_for(timeout=ms(120))
        assert "model.safetensors" in dash.inner_text() or "load_file" in dash.inner_text()
        shot(page, dash, tmp_path, "dashboard_exported.png")
        explorer = page.locator(".nbl-card").filter(has_text="Architecture explorer").first
        assert [g["title"] for g in plot_info(explorer)][0].startswith("pooling")  # its DAG, then the histogram
        assert len(plot_info(explorer)) == 2
        # move the explorer: its drawing follows
        neighbour = explorer.locator(".widget-button").filter(has_not_text="Export").first  # a neighbour, not the Export button
        moved_to = neighbour.inner_text().strip()
        neighbour.click()
        wait_until(lambda: panel(explorer, moved_to), 60, f"the explorer to draw {moved_to}")
        assert_titled_and_drawn(explorer, "explorer")
        shot(page, explorer, tmp_path, "explorer.png")
        runs = page.locator(".nbl-card").filter(has_text="Run browser").first
        runs.wait_for(timeout=ms(60))
        assert runs.locator("select option").count() >= 1
        # the newest run opens by itself: its stored curves replay in full
        wait_until(lambda: (g := panel(runs, "Training curves")) and g["points"][0] == STEPS, 60,
                   "the run browser to replay the stored curves")
        assert_titled_and_drawn(runs, "run browser")
        shot(page, runs, tmp_path, "run_browser.png")
        assert_clean_console(page)

        # save (as JupyterLab's autosave would), reload the tab: the kernel still runs, and every
        # view draws what it showed before, not the figure it started with
        before = {name: [(g["title"], g["points"]) for g in plot_info(card)]
                  for name, card in (("dash", dash), ("explorer", explorer), ("runs", runs))}
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        time.sleep(3)
        page.reload()
        open_notebook(page, url.replace("&reset", ""))
        for name, card in (("dash", dash), ("explorer", explorer), ("runs", runs)):
            card.wait_for(timeout=ms(120))
            wait_until(lambda c=card, n=name: [(g["title"], g["points"]) for g in plot_info(c)] == before[n], 120,
                       f"the {name} views to show their state after the reload")
            assert_titled_and_drawn(card, f"{name} after reload")
        assert panel(explorer, moved_to) and page.evaluate(JS_POINTS) == STEPS
        assert dash.locator("span", has_text="finished").count() >= 1
        shot(page, dash, tmp_path, "dashboard_after_reload.png")
        assert_clean_console(page)


# ----------------------------------------------------------------------------- 03: one-shot samplers
SAMPLER_STEPS = 100


def test_thesis_samplers_views_render_live_in_jupyterlab(lab, tmp_path):
    """Notebook 03: the MCTS-learned dashboard live (tree, dendrogram, Kendall tau vs step), then
    the mixture and density samplers from the Launcher form, each with its own view."""
    url, cells = lab("03_one_shot_samplers.ipynb", f"STEPS = {SAMPLER_STEPS}\nBATCH_SIZE = 16\nRANK_IMAGES = 32\n"
                                                   "RANK_EVERY = 25\n")
    wait_cell = cell_index(cells, "await dash.wait()")
    launcher_cell = cell_index(cells, "nl.widgets.Launcher(")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)
        dash = page.locator(".nbl-card").filter(has_text="mcts-learned").first
        dash.wait_for(timeout=ms(180))
        # after the uniform warm-up, the learned tree: icicle + node-link + dendrogram, its visits growing
        wait_until(lambda: panel(dash, "mcts-learned"), 180, "the MCTS panel")
        tree = wait_until(lambda: (g := panel(dash, "mcts-learned")) and "icicle" in g["types"]
                          and "learned tree" in g["notes"] and g, 240, "the learned tree in the MCTS panel")
        later = wait_until(lambda: (g := panel(dash, "mcts-learned")) and "icicle" in g["types"]
                           and g["visits"][0] > tree["visits"][0] and g, 120, "the root's visits to grow")
        assert later["visits"][0] > tree["visits"][0] > 0
        assert "top levels (hover: UCT)" in tree["notes"] and tree["width"] > 300
        tau = wait_until(lambda: (g := panel(dash, "Kendall τ vs step")) and g["points"][0] >= 2 and g, 240,
                         "two points of Kendall tau vs step")
        assert tau["roles"] == ["tau", "tau_top10"] and tau["width"] > 200
        dash.locator("span", has_text="finished").first.wait_for(timeout=ms(240))
        final = panel(dash, "Kendall τ vs step")
        assert final["points"][0] == SAMPLER_STEPS // 25  # 3 periodic rankings and the final one
        wait_until(lambda: panel(dash, "Supernet ranking"), 60, "the final ranking scatter")
        assert_titled_and_drawn(dash, "mcts-learned dashboard")
        shot(page, dash, tmp_path, "samplers_mcts_learned.png")

        # the Launcher: mixture (its default options) and density, one after the other; the
        # first run the Launcher creates is the one that used to come up blank
        run_cell(page, launcher_cell)
        form = page.locator(".jp-Cell").nth(launcher_cell).locator(".jp-OutputArea")
        form.locator("button", has_text="Create run").wait_for(timeout=ms(60))
        assert form.locator("input[type=text]").nth(1).input_value() == '{"models": 4}'
        for method, title, check in (
                ("mixture", "mixture of 4 supernets",
                 lambda g: "heatmap" in g["types"] and "p(m | c)" in g["notes"] and g["roles"][1:5] == [
                     "model0", "model1", "model2", "model3"]),
                ("density", "density (numerable, functional)",
                 lambda g: "debiased" in g["title"] and g["roles"][0] == "archs" and g["points"][0] == 36)):
            form.locator("select").nth(1).select_option(method)
            form.locator("button", has_text="Create run").click()
            card = form.locator(".nbl-card").filter(has_text=f"pooling · {method} · digits").first
            card.wait_for(timeout=ms(120))
            view = wait_until(lambda c=card, t=title, ok=check: (g := panel(c, t)) and ok(g) and g, 240,
                              f"the {method} view")
            assert view["width"] > 300
            wait_until(lambda c=card: (g := panel(c, "Training curves")) and g["points"][0] >= 10, 120,
                       f"the {method} loss curve")
            wait_until(lambda c=card: (g := panel(c, "Current architecture")) and any(g["points"]), 60,
                       f"the {method} architecture")
            card.locator("button", has_text="Stop").click()
            card.locator("span", has_text="stopped").first.wait_for(timeout=ms(120))
            # no final ranking after Stop, and the panel says why
            wait_until(lambda c=card: (g := panel(c, "Ranking")) and any("No final ranking" in n for n in g["notes"]),
                       60, f"the {method} ranking panel to say why it is empty")
            assert_titled_and_drawn(card, f"{method} dashboard")
            shot(page, card, tmp_path, f"samplers_{method}.png")
        assert_clean_console(page)


# ----------------------------------------------------------------------------- 04: DARTS
DARTS_STEPS = 200


def test_darts_alpha_view_and_collapse_alarm_render_live_in_jupyterlab(lab, tmp_path):
    """Notebook 04: DARTS on the NB-201 supernet; the alpha trajectories grow live, the dominant
    eigenvalue grows over its early value (DARTS-ES) and the dashboard raises the alarm banner."""
    url, cells = lab("04_darts_and_collapse.ipynb", f"STEPS = {DARTS_STEPS}\nBATCH_SIZE = 16\nCHANNELS = 4\n"
                                                    "HESSIAN_EVERY = 20\nHESSIAN_BATCH = 16\nES_START_EPOCH = 0\n")
    wait_cell = cell_index(cells, "await dash.wait()")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)
        dash = page.locator(".nbl-card").filter(has_text="nb201 · darts · digits").first
        dash.wait_for(timeout=ms(180))

        def alphas():
            g = panel(dash, "darts on nb201")
            # 6 edges x 5 ops of trajectories; the panel title carries the step
            if g and g["roles"].count("alpha") == 30:
                return {**g, "step": int(re.search(r"step (\d+)/", g["title"]).group(1))}
            return None

        first = wait_until(alphas, 180, "the alpha trajectories")
        grown = wait_until(lambda: (g := alphas()) and g["step"] > first["step"] and g, 180,
                           "the alpha trajectories to advance")
        assert grown["step"] > first["step"] and grown["points"][0] >= 2 and grown["width"] > 300
        assert any(re.match(r"derived cell — \d+\.\d\d % \(cifar10\)", n) for n in grown["notes"])
        # the blank panels of issue 11: the curves and the current architecture are drawn too
        wait_until(lambda: (g := panel(dash, "Training curves")) and g["points"][0] >= 2, 120, "the DARTS curves")
        wait_until(lambda: (g := panel(dash, "Current architecture")) and any(g["points"]), 120,
                   "the current DARTS cell")
        banner = dash.locator(".nbl-alarm")
        banner.wait_for(timeout=ms(240))
        assert "Collapse alarm" in banner.inner_text() and "eigenvalue" in banner.inner_text()
        dash.locator("span", has_text="finished").first.wait_for(timeout=ms(240))
        assert_titled_and_drawn(dash, "DARTS dashboard")
        shot(page, dash, tmp_path, "darts_dashboard.png")
        controls = page.locator(".jp-Cell").nth(cell_index(cells, "DartsControls(dash)"))
        assert "alpha lr" in controls.inner_text()
        assert_clean_console(page)


# ----------------------------------------------------------------------------- 02: black-box search
def test_blackbox_live_arena_renders_in_jupyterlab(lab, tmp_path):
    """Notebook 02 up to the live arena: its regret curves grow to the budget, titled and labelled."""
    url, cells = lab("02_blackbox_search.ipynb", 'STRATEGIES, SEEDS, QUERIES = ["random", "rea", "ls", "bo", "mcts"], 2, 25\n')
    wait_cell = cell_index(cells, "live.run.wait(")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)
        arena = page.locator(".jp-Cell").nth(wait_cell - 1).locator(".jp-OutputArea")
        wait_until(lambda: (g := panel(arena, "Regret")) and min(g["points"][1:6:2]) > 0 and g, 300,
                   "the live arena's regret curves")
        arena.locator("text=finished").first.wait_for(timeout=ms(300))
        # random, rea, ls: a band (there and back) and a mean line each, then the exact reference
        g = wait_until(lambda: (g := panel(arena, "Regret")) and g["points"] == [50, 25] * 3 + [25] and g, 60,
                       "the curves to reach the budget of 25 queries")
        assert g["roles"][:2] == ["band", "mean"] and g["width"] > 500
        assert_titled_and_drawn(arena, "live arena")
        shot(page, arena, tmp_path, "arena_live.png")
        assert_clean_console(page)


# ----------------------------------------------------------------------------- 08: segmentation
SEG_STEPS = 40
# the trellis view: how many sampled paths went through its nodes (the "nodes" trace's colours)
JS_TRELLIS_VISITS = """el => { const gd = Array.from(el.querySelectorAll('.js-plotly-plot'))
  .find(d => (d.data || []).some(t => t.meta && t.meta.role === 'path'));
  if (!gd) return -1;
  const nodes = gd.data.find(t => t.meta && t.meta.role === 'nodes');
  return nodes && Array.isArray(nodes.marker.color) ? nodes.marker.color.reduce((a, b) => a + b, 0) : 0; }"""


def test_segmentation_trellis_view_renders_live_in_jupyterlab(lab, tmp_path):
    """Notebook 08: iterative MCTS on the Auto-DeepLab trellis; the trellis view (path and visits
    per node) updates live, and the masks panel comes up when the run ends."""
    url, cells = lab("08_segmentation.ipynb", f"STEPS = {SEG_STEPS}\nBATCH_SIZE = 8\nRANK_IMAGES = 16\n")
    wait_cell = cell_index(cells, "await dash.wait()")
    with browser(tmp_path) as page:
        open_notebook(page, url)
        run_all_above(page, wait_cell)
        dash = page.locator(".nbl-card").filter(has_text="mcts-iterative").first
        dash.wait_for(timeout=ms(180))
        view = wait_until(lambda: (g := panel(dash, "Current architecture")) and "path" in g["roles"] and g, 180,
                          "the trellis view")
        assert view["roles"] == ["moves", "nodes", "path"] and view["points"][2] == 8  # stem, 6 layers, ASPP
        wait_until(lambda: dash.evaluate(JS_TRELLIS_VISITS) > 0, 120, "visits on the trellis")
        dash.locator("span", has_text="finished").first.wait_for(timeout=ms(300))
        # every step's path visits one node per layer: 6 x the steps in all, once the view has caught up
        wait_until(lambda: dash.evaluate(JS_TRELLIS_VISITS) == 6 * SEG_STEPS, 60, "every visit on the trellis")
        masks = wait_until(lambda: (g := panel(dash, "validation scenes")) and g, 120, "the masks panel")
        assert masks["types"].count("image") == 9  # 3 scenes x (image, truth, prediction)
        wait_until(lambda: panel(dash, "Supernet ranking"), 60, "the final ranking scatter")
        assert_titled_and_drawn(dash, "segmentation dashboard")
        shot(page, dash, tmp_path, "segmentation_trellis.png")
        assert_clean_console(page)
