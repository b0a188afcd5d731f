"""scripts/budget-check: standalone training at a reproduce table's budget (issue 24), on the tiny
CIFAR-10 files the tests write; the shipped check ran it on the real images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from nasbench_lab import provenance
from tests.test_data import write_cifar10

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "budget-check"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_budget_check_trains_each_layout_and_resumes(tmp_path):
    write_cifar10(tmp_path / "data", per_batch=40)
    out = tmp_path / "check.csv"
    args = ("--data-root", str(tmp_path / "data"), "--out", str(out), "--steps", "3", "--batch-size", "8",
            "--archs", "[7,1,2]", "[3,4,3]", "--val-images", "30")
    p = _run(*args)
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(out)
    # sorted by the table's accuracy: [7,1,2] is Table 2.1's best (92.01), [3,4,3] has 90.92
    assert df.arch.tolist() == ["[7,1,2]", "[3,4,3]"] and df.truth.tolist() == [92.01, 90.92]
    assert (df.steps == 3).all() and (df.val_images == 30).all() and df.val_acc.between(0, 100).all()
    # 100 training images of the 200 (the tiny files' half split) in batches of 8: 12 steps an epoch
    assert df.train_images.tolist() == [100, 100] and df.epochs.round(4).tolist() == [0.25, 0.25]
    prov = provenance.read(out)
    assert prov["runs"] == 2 and prov["protocol"]["steps"] == 3
    assert prov["command"].startswith("scripts/budget-check --data-root ") and prov["argv"][0] == "--data-root"
    # two layouts: τ is +1 when the standalone order is the table's, -1 when reversed, None on a tie
    a, b = df.val_acc
    assert prov["kendall_tau_vs_truth"] == (None if a == b else 1.0 if a > b else -1.0)
    # a second call retrains nothing: the records are kept as they were
    work = out.with_suffix(".runs")
    before = {f.name: f.read_text() for f in work.glob("*.json")}
    p2 = _run(*args)
    assert p2.returncode == 0 and '"val_acc"' not in p2.stdout  # no run printed: none trained
    assert {f.name: f.read_text() for f in work.glob("*.json")} == before
    assert json.loads(before["7-1-2_s0_3.json"])["arch"] == "[7,1,2]"


def test_budget_check_rejects_a_layout_outside_the_space(tmp_path):
    p = _run("--data-root", str(tmp_path), "--out", str(tmp_path / "x.csv"), "--archs", "[9,9]")
    assert p.returncode == 2 and "--archs" in p.stderr and "[7,1,2]" in p.stderr


def test_budget_check_names_a_missing_data_folder_before_training(tmp_path):
    p = _run("--data-root", str(tmp_path / "none"), "--out", str(tmp_path / "x.csv"))
    assert p.returncode == 2 and "--data-root" in p.stderr and "data_batch_1" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "x.csv").exists()
