"""The tour notebook in a real JupyterLab, driven by headless Chromium (Playwright).

Starts JupyterLab on a free local port over a temporary copy of the notebooks, opens
00_start_here.ipynb, runs the cells above the "wait" cell from the Run menu (so the kernel is idle
and the dashboard live), checks that the loss curve grows in the DOM, presses Pause and sees the
status change, then runs the rest and sees the final ranking. Screenshots go to the test's folder
and to <repo>/test-output/ (git-ignored).
"""

from __future__ import annotations

import json
import os
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


@pytest.fixture
def lab(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (install it with: apt-get install -y chromium chromium-driver)")
    root = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", root)
    nb_path = root / "00_start_here.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    # a budget long enough to watch and pause, small batches to keep the CPU run short
    params.source += f"\nSTEPS = {STEPS}\nBATCH_SIZE = 16\nRANK_IMAGES = 32\n"
    nbformat.write(nb, nb_path)
    wait_cell = next(i for i, c in enumerate(nb.cells) if "await dash.wait()" in c.source)
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
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait_until(up, 120, "JupyterLab to answer")
        yield {"url": f"{base}/lab/tree/00_start_here.ipynb?token={token}&reset", "tmp": tmp_path,
               "wait_cell": wait_cell}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        try:
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                   "#jp-main-statusbar :text('Idle')", timeout=120_000)
            cells = page.locator(".jp-Notebook .jp-Cell")
            wait_cell = lab["wait_cell"]
            assert "await dash.wait()" in cells.nth(wait_cell).text_content()
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=120_000)
            _select_cell(page, wait_cell)
            executed = "() => Array.from(document.querySelectorAll('.jp-InputPrompt')).some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
            _run_from_menu(page, "Run All Above Selected Cell", "notebook:run-all-above",
                           lambda: page.evaluate(executed))

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
            _shot(page, dash, lab["tmp"], "dashboard_paused.png")

            # resume and run the rest: the final ranking scatter appears with its Kendall tau
            dash.locator("button", has_text="Resume").click()
            _select_cell(page, wait_cell)
            prompt = f"() => document.querySelectorAll('.jp-Notebook .jp-Cell')[{wait_cell}]" \
                     ".querySelector('.jp-InputPrompt').textContent.trim() !== '[ ]:'"
            _run_from_menu(page, "Run Selected Cell and All Below", "notebook:run-all-below",
                           lambda: page.evaluate(prompt))
            _wait_until(lambda: page.evaluate(JS_RANKING) >= 2, 300, "the ranking scatter")  # dashboard + cell
            dash.locator("span", has_text="finished").first.wait_for(timeout=60_000)
            assert page.evaluate(JS_POINTS) == STEPS
            _shot(page, dash, lab["tmp"], "dashboard_finished.png")
            explorer = page.locator(".nbl-card").filter(has_text="Architecture explorer").first
            assert explorer.locator(".js-plotly-plot").count() == 2  # its DAG and accuracy histogram
            _shot(page, explorer, lab["tmp"], "explorer.png")
            runs = page.locator(".nbl-card").filter(has_text="Run browser").first
            runs.wait_for(timeout=60_000)
            assert runs.locator("select option").count() >= 1
            # the newest run opens by itself: its stored curves replay in full
            replayed = runs.locator(".js-plotly-plot").first
            _wait_until(lambda: replayed.evaluate("gd => gd.data && gd.data[0] && gd.data[0].x ? gd.data[0].x.length : 0")
                        == STEPS, 60, "the run browser to replay the stored curves")
            _shot(page, runs, lab["tmp"], "run_browser.png")
        except Exception:
            _shot(page, None, lab["tmp"], "failure.png")
            raise
        finally:
            browser.close()
