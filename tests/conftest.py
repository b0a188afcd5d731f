"""Shared fixtures: every test gets its own workspace folder so nothing touches ~/.nasbench_lab."""

from __future__ import annotations

import os

import pytest
import torch

# One intra-op thread: the tests use tiny tensors, and notebooks, JupyterLab and Chromium run beside
# pytest on CI's 2 cores; a second torch thread mostly adds contention. The environment variable
# reaches every process a test starts (kernels, the CLI, sweep workers): with the other test worker
# busy, a kernel's second thread made the tour's browser test 3x slower (486 s -> 165 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _workspace(tmp_path, monkeypatch):
    ws = tmp_path / "workspace"
    monkeypatch.setenv("NASBENCH_LAB_HOME", str(ws))
    yield ws


@pytest.fixture(scope="session")
def cifar10_root():
    """A folder with the real CIFAR-10 batches (``realdata.cifar10_root``), or a skip saying why not."""
    import realdata

    why = realdata.unavailable()
    if why:
        pytest.skip(why)
    return realdata.cifar10_root()


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """One JupyterLab for every browser test of the session (see tests/browser_util.py); each test
    copies the notebooks it needs into its own folder of the server's root."""
    from browser_util import LabServer

    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def executed_notebook(tmp_path_factory):
    """``executed_notebook(name)`` -> a copy of ``notebooks/<name>`` executed top to bottom at the CI
    budget in a real kernel, with its widget state saved (as nbclient saves it). Each notebook is
    executed once per session: tests/test_notebooks.py checks it runs, the browser test opens the
    same executed copy without a kernel (tests/test_browser_static.py)."""
    import copy
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient
    from waits import seconds

    cache: dict[str, nbformat.NotebookNode] = {}
    root = Path(__file__).resolve().parent.parent / "notebooks"

    def get(name: str) -> nbformat.NotebookNode:
        if name not in cache:
            folder = tmp_path_factory.mktemp(Path(name).stem)
            nb = nbformat.read(root / name, as_version=4)
            with pytest.MonkeyPatch.context() as mp:  # the kernel inherits these
                mp.setenv("NASBENCH_LAB_CI", "1")  # the parameters cell picks small budgets
                mp.setenv("NASBENCH_LAB_HOME", str(folder / "workspace"))
                client = NotebookClient(nb, timeout=int(seconds(300)), kernel_name="python3",
                                        store_widget_state=True, resources={"metadata": {"path": str(folder)}})
                client.execute()
            cache[name] = nb
        return copy.deepcopy(cache[name])

    return get
