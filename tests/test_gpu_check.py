"""scripts/gpu-check --smoke: the device check's plumbing on CPU (digits, a few steps)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_smoke_writes_a_report_of_real_numbers(tmp_path):
    out = tmp_path / "report.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu-check"), "--smoke", "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    rep = json.loads(out.read_text())
    assert rep["smoke"] is True and rep["device"] == "cpu"
    for key in ("pooling_trainer_ratio", "pooling_dashboard_attached_ratio", "pooling_trainer_steps_per_s"):
        assert math.isfinite(rep["bench"][key]) and rep["bench"][key] > 0
    for method, thesis in (("uniform", 0.16), ("density", 0.34)):
        r = rep["thesis"][method]
        assert r["steps"] == 3 and r["thesis_kendall_tau"] == thesis
        assert -1.0 <= r["kendall_tau"] <= 1.0  # judged against Table 2.1's 36 layouts
        assert r["epoch_s"] > 0
    assert rep["pooling_epoch_s"] == rep["thesis"]["uniform"]["epoch_s"]


def test_gpu_check_needs_a_data_root_without_smoke(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu-check"), "--out", str(tmp_path / "r.json")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--data-root" in p.stderr
