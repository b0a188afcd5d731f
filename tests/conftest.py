"""Shared fixtures: every test gets its own workspace folder so nothing touches ~/.nasbench_lab."""

from __future__ import annotations

import pytest
import torch

# One intra-op thread: the tests use tiny tensors, and notebooks, JupyterLab and Chromium run beside
# pytest on CI's 2 cores; a second torch thread mostly adds contention.
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
