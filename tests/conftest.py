"""Shared fixtures: every test gets its own workspace folder so nothing touches ~/.nasbench_lab."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _workspace(tmp_path, monkeypatch):
    ws = tmp_path / "workspace"
    monkeypatch.setenv("NASBENCH_LAB_HOME", str(ws))
    yield ws
