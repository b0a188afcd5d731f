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
