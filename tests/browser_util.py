"""Helpers for the browser tests: a JupyterLab server, headless Chromium, waiting and screenshots.

Importable by any test module (``from browser_util import ...``; pytest puts ``tests/`` on the
path). One :class:`LabServer` can serve many notebooks: each test copies what it needs into its
own sub-folder of the server's root (``LabServer.notebook_copy``), so the browser tests share one
JupyterLab start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from waits import ms, seconds

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test-output"
#: the JupyterLab main area is about this wide beside the default left sidebar at a 1500 px window
VIEWPORT = {"width": 1500, "height": 2200}
#: browser console lines that mean a widget lost its state (checked by :func:`assert_clean_console`)
WIDGET_FAILURES = ("Failed to initialize model", "Error displaying widget", "Could not create a view",
                   "Error: Could not create", "model not found", "Class FigureModel not found",
                   # plotly.js 3 on a colour it cannot read (numeric bar colours): drawn black, warned per bar
                   "Invalid color specifier")


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (install it with: apt-get install -y chromium chromium-driver)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass
    (on an idle machine: stretched by the tests' wait factor, tests/waits.py)."""
    timeout = seconds(timeout)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_while_progressing(predicate: Callable[[], Any], progress: Callable[[], Any], stall: float,
                           what: str, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy, for as long as ``progress()`` keeps
    changing: fail only when it has stood still for ``stall`` seconds (stretched like every wait).
    For the end of a live run, whose length depends on how fast this machine trains while the
    browser draws beside it; what is tested is that it ends and shows its result, not how soon."""
    stall = seconds(stall)
    last, since = progress(), time.monotonic()
    while True:
        value = predicate()
        if value:
            return value
        now_progress = progress()
        if now_progress != last:
            last, since = now_progress, time.monotonic()
        elif time.monotonic() - since > stall:
            raise AssertionError(f"waiting for {what}: no progress for {stall:.0f} s (stuck at {last!r})")
        time.sleep(interval)


def lab_settings(folder: Path) -> Path:
    """User settings for a test server: no news pop-up, every cell rendered (no windowing, so
    locators find them all)."""
    settings = folder / "@jupyterlab"
    for ext, name, values in (("apputils-extension", "notification", {"fetchNews": "false", "checkForUpdates": False}),
                              ("notebook-extension", "tracker", {"windowingMode": "none"})):
        (settings / ext).mkdir(parents=True, exist_ok=True)
        (settings / ext / f"{name}.jupyterlab-settings").write_text(json.dumps(values))
    return folder


def url_answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


class LabServer:
    """A JupyterLab on a free 127.0.0.1 port over ``root`` (its own config, runtime and settings
    folders under ``home``), with a random token; ``stop()`` ends it."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        require_chromium()
        self.home = home
        self.root = home / "notebooks"
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        run_env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "jconfig"), "JUPYTER_RUNTIME_DIR": str(home / "jrt"),
                   "JUPYTERLAB_SETTINGS_DIR": str(lab_settings(home / "lab-settings")),
                   "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"), **(env or {})}
        run_env.pop("NASBENCH_LAB_CI", None)
        self.env = run_env  # for commands that must see what the server sees (e.g. `jupyter trust`)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--IdentityProvider.token={self.token}",
             "--ServerApp.ip=127.0.0.1", f"--port={self.port}", f"--ServerApp.root_dir={self.root}",
             "--ServerApp.port_retries=0", "--LabApp.expose_app_in_browser=True",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            env=run_env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited: {self.log_path.read_text()[-2000:]}")
            return url_answers(f"{self.base}/api/status?token={self.token}")

        wait_until(up, 120, "JupyterLab to answer")

    def notebook_copy(self, folder: str, notebook: str, params: str = "") -> tuple[str, list]:
        """Copy the repo's ``notebooks/`` into ``<root>/<folder>``, append ``params`` to
        ``notebook``'s parameters cell (which also points the kernel at its own workspace,
        ``<folder>/workspace``); returns (its URL, its cells)."""
        dest = self.root / folder
        shutil.copytree(REPO / "notebooks", dest)
        path = dest / notebook
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += (f"\nimport os\nos.environ['NASBENCH_LAB_HOME'] = {str(dest / 'workspace')!r}\n" + params)
        nbformat.write(nb, path)
        return f"{self.base}/lab/tree/{folder}/{notebook}?token={self.token}&reset", nb.cells

    def shutdown_kernels(self) -> None:
        """Stop every kernel (a finished test's notebooks must not train beside the next test)."""
        req = urllib.request.Request(f"{self.base}/api/kernels?token={self.token}")
        with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=5) as r:
            for k in json.loads(r.read()):
                delete = urllib.request.Request(f"{self.base}/api/kernels/{k['id']}?token={self.token}",
                                                method="DELETE")
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(delete, timeout=10).close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@contextlib.contextmanager
def browser(tmp: Path, viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A headless Chromium page; its console lines collect in ``page.console_lines``; a
    full-page screenshot is kept when the block fails."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = b.new_page(viewport=viewport or VIEWPORT)
        lines: list[str] = []
        page.on("console", lambda m: lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: lines.append(f"pageerror: {e}"))
        page.console_lines = lines  # type: ignore[attr-defined]
        try:
            yield page
        except Exception:
            with contextlib.suppress(Exception):
                shot(page, None, tmp, f"failure_{tmp.name}.png")
            (tmp / "console.log").write_text("\n".join(lines))
            raise
        finally:
            b.close()


def assert_clean_console(page: Any) -> None:
    """No widget of the page lost its model (anywidget's init deadline, a missing model...), and
    plotly.js read every colour it was given."""
    bad = [line for line in page.console_lines if any(f in line for f in WIDGET_FAILURES)]
    assert not bad, "widget errors in the browser console:\n" + "\n".join(bad[:10])


def open_notebook(page: Any, url: str) -> None:
    """Open ``url`` and wait until the notebook's kernel is idle and connected."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=ms(120))
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           "#jp-main-statusbar :text('Idle')", timeout=ms(120))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=ms(120))


def cell_index(cells: list, text: str) -> int:
    return next(i for i, c in enumerate(cells) if text in c.source)


def menu(page: Any, name: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=name).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def select_cell(page: Any, index: int) -> None:
    """Make cell ``index`` the active one (a click can land on a neighbour while the page settles)."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt").click()
    page.evaluate("""(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                              nb.activeCellIndex = i; nb.deselectAll(); }""", index)
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex") == index


def prompt_set(page: Any, index: int) -> Callable[[], bool]:
    """A predicate: cell ``index`` has been queued or run (its prompt is no longer ``[ ]:``)."""
    js = f"() => document.querySelectorAll('.jp-Notebook .jp-Cell')[{index}]" \
         ".querySelector('.jp-InputPrompt').textContent.trim() !== '[ ]:'"
    return lambda: page.evaluate(js)


def run_from_menu(page: Any, item: str, command: str, started: Callable[[], Any]) -> None:
    """Run cells from the Run menu; if nothing starts (the kernel was still connecting), run the
    same command once more through the app's command registry."""
    menu(page, "Run", item)
    try:
        wait_until(started, 30, f"'{item}' to start")
    except AssertionError:
        page.evaluate("(c) => window.jupyterapp.commands.execute(c)", command)
        wait_until(started, 60, f"'{item}' to start (second try)")


def run_all_above(page: Any, index: int) -> None:
    select_cell(page, index)
    executed = "() => Array.from(document.querySelectorAll('.jp-InputPrompt')).some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    run_from_menu(page, "Run All Above Selected Cell", "notebook:run-all-above", lambda: page.evaluate(executed))


def run_cell(page: Any, index: int) -> None:
    select_cell(page, index)
    run_from_menu(page, "Run Selected Cell", "notebook:run-cell", prompt_set(page, index))


#: Playwright's words for a node that a re-render replaced between finding it and taking its picture
TRANSIENT_SHOT_ERRORS = ("not attached", "not visible", "not stable")


def shot(page: Any, locator: Any, tmp: Path, name: str) -> Path:
    """Screenshot ``locator`` (or the whole page) into ``tmp`` and ``<repo>/test-output/``."""
    OUT.mkdir(exist_ok=True)
    path = tmp / name
    if locator is not None:
        for attempt in range(4):
            try:
                locator.scroll_into_view_if_needed()
                locator.screenshot(path=str(path))
                break
            except Exception as exc:
                # A view re-rendered (its state re-sent at the run's end): for a moment its node is
                # detached, or attached but not laid out yet ("not visible"). Wait for it, then retry.
                if not any(s in str(exc) for s in TRANSIENT_SHOT_ERRORS) or attempt == 3:
                    raise
                time.sleep(1)
                with contextlib.suppress(Exception):
                    locator.wait_for(state="visible", timeout=ms(20))
    else:
        page.screenshot(path=str(path))
    shutil.copy(path, OUT / name)
    return path


#: title, trace types and roles, annotations and point counts of every plotly graph under an element
JS_PLOTS = """el => Array.from(el.querySelectorAll('.js-plotly-plot')).map(gd => ({
    title: gd.layout && gd.layout.title ? String(gd.layout.title.text || '') : '',
    types: (gd.data || []).map(t => t.type || 'scatter'),
    roles: (gd.data || []).map(t => (t.meta && t.meta.role) || ''),
    notes: ((gd.layout && gd.layout.annotations) || []).map(a => String(a.text || '')),
    points: (gd.data || []).map(t => (t.x && t.x.length) || (t.values && t.values.length)
                                     || (t.z && t.z.length) || 0),
    visits: (gd.data || []).filter(t => t.type === 'icicle').map(t => Math.max(...t.values)),
    width: gd.getBoundingClientRect().width }))"""


def plot_info(card: Any) -> list[dict]:
    """What the browser draws in every plotly graph under ``card`` (see ``JS_PLOTS``)."""
    return card.evaluate(JS_PLOTS)


def panel(card: Any, title_part: str) -> dict | None:
    return next((g for g in plot_info(card) if title_part in g["title"]), None)


def blank_panels(card: Any) -> list[dict]:
    """Visible graphs under ``card`` that show nothing: no title, or no trace with a point and no
    note (a hidden one, e.g. Kendall tau before the first periodic ranking, is not shown at all)."""
    return [g for g in plot_info(card) if g["width"] > 0
            and (not g["title"].strip() or not (any(g["points"]) or any(n.strip() for n in g["notes"])))]
