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
    th = rep["thesis"]
    assert th["table"] == "table-5.1-pooling" and th["scale"] == "tiny"
    for method, thesis in (("uniform", 0.16), ("fair", 0.21), ("density", 0.34)):
        r = th["runs"][method]
        assert r["thesis_kendall_tau"] == thesis and r["steps_planned"] == 12
        if r["finished"]:  # judged against Table 2.1's layouts
            assert r["steps_done"] == 12 and -1.0 <= r["kendall_tau"] <= 1.0
        else:  # out of its share of the budget on a slow box: stopped with a checkpoint, speed reported
            assert "resume" in r["stopped"] and r["steps_done"] < 12


def test_gpu_check_needs_a_data_root_without_smoke(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu-check"), "--out", str(tmp_path / "r.json")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--data-root" in p.stderr
