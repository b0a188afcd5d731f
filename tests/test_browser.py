"""The tour notebook in a real JupyterLab, driven by headless Chromium (Playwright).

Starts JupyterLab on a free local port over a temporary copy of the notebooks, opens
00_start_here.ipynb, runs the cells above the "wait" cell from the Run menu (so the kernel is idle
and the dashboard live), checks that the loss curve grows in the DOM, presses Pause and sees the
status change, then runs the rest and sees the final ranking. Screenshots go to the test's folder
and to <repo>/test-output/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test-output"
STEPS = 400

# The loss curve of the dashboard: the plotly graph whose layout title is "Training curves".
JS_POINTS = """() => {
  const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find(d => d.layout && d.layout.title && d.layout.title.text === 'Training curves');
  return gd && gd.data && gd.data[0] && gd.data[0].x ? gd.data[0].x.length : -1;
}"""
JS_RANKING = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(d => d.layout && d.layout.title && String(d.layout.title.text).includes('Kendall')).length"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _start_lab(tmp_path: Path, notebook: str, params: str, procs: list) -> dict:
    """Copy the notebooks, append ``params`` to ``notebook``'s parameters cell, start JupyterLab."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (install it with: apt-get install -y chromium chromium-driver)")
    root = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", root)
    nb_path = root / notebook
    nb = nbformat.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + params
    nbformat.write(nb, nb_path)
    # user settings: no news pop-up; every cell rendered (no windowing), so locators find them all
    settings = tmp_path / "lab-settings" / "@jupyterlab"
    for ext, name, values in (("apputils-extension", "notification", {"fetchNews": "false", "checkForUpdates": False}),
                              ("notebook-extension", "tracker", {"windowingMode": "none"})):
        (settings / ext).mkdir(parents=True)
        (settings / ext / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
    token = secrets.token_hex(16)
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jconfig"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "jrt"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces")}
    env.pop("NASBENCH_LAB_CI", None)
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--IdentityProvider.token={token}",
         "--ServerApp.ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}",
         "--ServerApp.port_retries=0", "--LabApp.expose_app_in_browser=True", *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    procs.append((proc, log))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    _wait_until(up, 120, "JupyterLab to answer")
    return {"url": f"{base}/lab/tree/{notebook}?token={token}&reset", "tmp": tmp_path, "cells": nb.cells}


@pytest.fixture
def lab(tmp_path):
    """``lab(notebook, params)``: a JupyterLab serving a copy of the notebooks (stopped afterwards)."""
    procs: list = []
    yield lambda notebook, params: _start_lab(tmp_path, notebook, params, procs)
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def _browser(tmp: Path):
    """A Chromium page; a full-page screenshot is kept when the block fails."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1500, "height": 2200})
        try:
            yield page
        except Exception:
            _shot(page, None, tmp, f"failure_{tmp.name}.png")
            raise
        finally:
            browser.close()


def _open_notebook(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           "#jp-main-statusbar :text('Idle')", timeout=120_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=120_000)


def _cell_index(cells, text: str) -> int:
    return next(i for i, c in enumerate(cells) if text in c.source)


def _run_all_above(page, index: int) -> None:
    _select_cell(page, index)
    executed = "() => Array.from(document.querySelectorAll('.jp-InputPrompt')).some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    _run_from_menu(page, "Run All Above Selected Cell", "notebook:run-all-above", lambda: page.evaluate(executed))


def _prompt_set(page, index: int):
    js = f"() => document.querySelectorAll('.jp-Notebook .jp-Cell')[{index}]" \
         ".querySelector('.jp-InputPrompt').textContent.trim() !== '[ ]:'"
    return lambda: page.evaluate(js)


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def _select_cell(page, index: int) -> None:
    """Make cell ``index`` the active one (a click can land on a neighbour while the page settles)."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt").click()
    page.evaluate("""(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                              nb.activeCellIndex = i; nb.deselectAll(); }""", index)
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex") == index


def _run_from_menu(page, item: str, command: str, started) -> None:
    """Run cells from the Run menu; if nothing starts (the kernel was still connecting), run the
    same command once more through the app's command registry."""
    _menu(page, "Run", item)
    try:
        _wait_until(started, 30, f"'{item}' to start")
    except AssertionError:
        page.evaluate("(c) => window.jupyterapp.commands.execute(c)", command)
        _wait_until(started, 60, f"'{item}' to start (second try)")


def _shot(page, locator, tmp, name: str) -> Path:
    OUT.mkdir(exist_ok=True)
    path = tmp / name
    if locator is not None:
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    shutil.copy(path, OUT / name)
    return path


def test_tour_notebook_dashboard_runs_live_in_jupyterlab(lab):
    # a budget long enough to watch and pause, small batches to keep the CPU run short
    info = lab("00_start_here.ipynb", f"STEPS = {STEPS}\nBATCH_SIZE = 16\nRANK_IMAGES = 32\n")
    wait_cell = _cell_index(info["cells"], "await dash.wait()")
    with _browser(info["tmp"]) as page:
        _open_notebook(page, info["url"])
        assert "await dash.wait()" in page.locator(".jp-Notebook .jp-Cell").nth(wait_cell).text_content()
        _run_all_above(page, wait_cell)

        # the dashboard renders (a real widget view, not "Loading widget...") and its curve grows
        dash = page.locator(".nbl-card").filter(has_text="Training curves").first
        dash.wait_for(timeout=180_000)
        first = _wait_until(lambda: max(0, page.evaluate(JS_POINTS)) or None, 180, "the first loss points")
        grown = _wait_until(lambda: (n := page.evaluate(JS_POINTS)) > first and n, 180,
                            f"the loss curve to grow past {first} points")
        assert grown > first
        assert dash.locator("text=running").count() >= 1
        assert "Loading widget" not in dash.inner_text()

        dash.locator("button", has_text="Pause").click()
        dash.locator("span", has_text="paused").first.wait_for(timeout=60_000)
        time.sleep(1.5)  # the refresher has drawn the last steps; the curve must now stand still
        held = page.evaluate(JS_POINTS)
        time.sleep(2.0)
        assert page.evaluate(JS_POINTS) == held < STEPS
        _shot(page, dash, info["tmp"], "dashboard_paused.png")

        # resume and run the rest: the final ranking scatter appears with its Kendall tau
        dash.locator("button", has_text="Resume").click()
        _select_cell(page, wait_cell)
        _run_from_menu(page, "Run Selected Cell and All Below", "notebook:run-all-below", _prompt_set(page, wait_cell))
        _wait_until(lambda: page.evaluate(JS_RANKING) >= 2, 300, "the ranking scatter")  # dashboard + cell
        dash.locator("span", has_text="finished").first.wait_for(timeout=60_000)
        assert page.evaluate(JS_POINTS) == STEPS
        _shot(page, dash, info["tmp"], "dashboard_finished.png")
        explorer = page.locator(".nbl-card").filter(has_text="Architecture explorer").first
        assert explorer.locator(".js-plotly-plot").count() == 2  # its DAG and accuracy histogram
        _shot(page, explorer, info["tmp"], "explorer.png")
        runs = page.locator(".nbl-card").filter(has_text="Run browser").first
        runs.wait_for(timeout=60_000)
        assert runs.locator("select option").count() >= 1
        # the newest run opens by itself: its stored curves replay in full
        replayed = runs.locator(".js-plotly-plot").first
        _wait_until(lambda: replayed.evaluate("gd => gd.data && gd.data[0] && gd.data[0].x ? gd.data[0].x.length : 0")
                    == STEPS, 60, "the run browser to replay the stored curves")
        _shot(page, runs, info["tmp"], "run_browser.png")


def _plot_info(card) -> list[dict]:
    """Title, trace types, subplot titles and point counts of every plotly graph in ``card``."""
    return card.evaluate("""el => Array.from(el.querySelectorAll('.js-plotly-plot')).map(gd => ({
        title: gd.layout && gd.layout.title ? String(gd.layout.title.text || '') : '',
        types: (gd.data || []).map(t => t.type || 'scatter'),
        roles: (gd.data || []).map(t => (t.meta && t.meta.role) || ''),
        notes: ((gd.layout && gd.layout.annotations) || []).map(a => String(a.text || '')),
        points: (gd.data || []).map(t => (t.x && t.x.length) || (t.values && t.values.length) || 0),
        visits: (gd.data || []).filter(t => t.type === 'icicle').map(t => Math.max(...t.values)),
        width: gd.getBoundingClientRect().width }))""")


def _panel(card, title_part: str) -> dict | None:
    return next((g for g in _plot_info(card) if title_part in g["title"]), None)


SAMPLER_STEPS = 100


def test_thesis_samplers_views_render_live_in_jupyterlab(lab):
    """Notebook 03: the MCTS-learned dashboard live (tree, dendrogram, Kendall tau vs step), then
    the mixture and density samplers from the Launcher form, each with its own view."""
    info = lab("03_one_shot_samplers.ipynb", f"STEPS = {SAMPLER_STEPS}\nBATCH_SIZE = 16\nRANK_IMAGES = 32\n"
                                            "RANK_EVERY = 25\n")
    cells = info["cells"]
    wait_cell = _cell_index(cells, "await dash.wait()")
    launcher_cell = _cell_index(cells, "nl.widgets.Launcher(")
    with _browser(info["tmp"]) as page:
        _open_notebook(page, info["url"])
        _run_all_above(page, wait_cell)
        dash = page.locator(".nbl-card").filter(has_text="mcts-learned").first
        dash.wait_for(timeout=180_000)
        # after the uniform warm-up, the learned tree: icicle + node-link + dendrogram, its visits growing
        _wait_until(lambda: _panel(dash, "mcts-learned"), 180, "the MCTS panel")
        tree = _wait_until(lambda: (g := _panel(dash, "mcts-learned")) and "icicle" in g["types"]
                           and "learned tree" in g["notes"] and g, 240, "the learned tree in the MCTS panel")
        later = _wait_until(lambda: (g := _panel(dash, "mcts-learned")) and "icicle" in g["types"]
                            and g["visits"][0] > tree["visits"][0] and g, 120, "the root's visits to grow")
        assert later["visits"][0] > tree["visits"][0] > 0
        assert "top levels (hover: UCT)" in tree["notes"] and tree["width"] > 300
        tau = _wait_until(lambda: (g := _panel(dash, "Kendall τ vs step")) and g["points"][0] >= 2 and g, 240,
                          "two points of Kendall tau vs step")
        assert tau["roles"] == ["tau", "tau_top10"] and tau["width"] > 200
        dash.locator("span", has_text="finished").first.wait_for(timeout=240_000)
        final = _panel(dash, "Kendall τ vs step")
        assert final["points"][0] == SAMPLER_STEPS // 25  # 3 periodic rankings and the final one
        _shot(page, dash, info["tmp"], "samplers_mcts_learned.png")

        # the Launcher: mixture (its default options) and density, one after the other
        _select_cell(page, launcher_cell)
        _run_from_menu(page, "Run Selected Cell", "notebook:run-cell", _prompt_set(page, launcher_cell))
        form = page.locator(".jp-Cell").nth(launcher_cell).locator(".jp-OutputArea")
        form.locator("button", has_text="Create run").wait_for(timeout=60_000)
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
            card.wait_for(timeout=120_000)
            view = _wait_until(lambda c=card, t=title, ok=check: (g := _panel(c, t)) and ok(g) and g, 240,
                               f"the {method} view")
            assert view["width"] > 300
            _wait_until(lambda c=card: (g := _panel(c, "Training curves")) and g["points"][0] >= 10, 120,
                        f"the {method} loss curve")
            _shot(page, card, info["tmp"], f"samplers_{method}.png")
            card.locator("button", has_text="Stop").click()
            card.locator("span", has_text="stopped").first.wait_for(timeout=120_000)


DARTS_STEPS = 200


def test_darts_alpha_view_and_collapse_alarm_render_live_in_jupyterlab(lab):
    """Notebook 04: DARTS on the NB-201 supernet; the alpha trajectories grow live, the dominant
    eigenvalue grows over its early value (DARTS-ES) and the dashboard raises the alarm banner."""
    info = lab("04_darts_and_collapse.ipynb", f"STEPS = {DARTS_STEPS}\nBATCH_SIZE = 16\nCHANNELS = 4\n"
                                             "HESSIAN_EVERY = 20\nHESSIAN_BATCH = 16\n")
    wait_cell = _cell_index(info["cells"], "await dash.wait()")
    with _browser(info["tmp"]) as page:
        _open_notebook(page, info["url"])
        _run_all_above(page, wait_cell)
        dash = page.locator(".nbl-card").filter(has_text="nb201 · darts · digits").first
        dash.wait_for(timeout=180_000)

        def alphas():
            g = _panel(dash, "darts on nb201")
            # 6 edges x 5 ops of trajectories; the panel title carries the step
            if g and g["roles"].count("alpha") == 30:
                return {**g, "step": int(re.search(r"step (\d+)/", g["title"]).group(1))}
            return None

        first = _wait_until(alphas, 180, "the alpha trajectories")
        grown = _wait_until(lambda: (g := alphas()) and g["step"] > first["step"] and g, 180,
                            "the alpha trajectories to advance")
        assert grown["step"] > first["step"] and grown["points"][0] >= 2 and grown["width"] > 300
        assert any(re.match(r"derived cell — \d+\.\d\d % \(cifar10\)", n) for n in grown["notes"])  # the derived cell and its accuracy
        banner = dash.locator(".nbl-alarm")
        banner.wait_for(timeout=240_000)
        assert "Collapse alarm" in banner.inner_text() and "eigenvalue" in banner.inner_text()
        dash.locator("span", has_text="finished").first.wait_for(timeout=240_000)
        _shot(page, dash, info["tmp"], "darts_dashboard.png")
        controls = page.locator(".jp-Cell").nth(_cell_index(info["cells"], "DartsControls(dash)"))
        assert "alpha lr" in controls.inner_text()
