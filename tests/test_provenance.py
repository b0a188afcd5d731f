"""``--csv`` results carry a provenance sidecar: the command, the code (git commit), the machine."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nasbench_lab import cli, provenance

ROOT = Path(__file__).resolve().parent.parent


def test_a_csv_command_writes_its_sidecar_with_the_command_and_the_commit(tmp_path, capsys):
    csv = tmp_path / "darts.csv"
    argv = ["darts", "--methods", "darts", "--seeds", "0", "--steps", "1", "--channels", "4", "--cells", "1",
            "--batch-size", "8", "--hessian-every", "0", "--device", "cpu", "--csv", str(csv)]
    assert cli.main(argv) == 0
    capsys.readouterr()
    side = provenance.sidecar(csv)
    assert side == tmp_path / "darts.csv.provenance.json" and side.is_file()
    rec = json.loads(side.read_text())
    assert rec == provenance.read(csv)
    assert rec["argv"] == argv and rec["command"].startswith("nasbench-lab darts --methods darts")
    assert rec["machine"]["cores"] >= 1 and rec["wall_s"] > 0
    if (ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        assert rec["commit"].split("+")[0] == head
    else:
        assert rec["commit"] is None


def test_no_sidecar_without_a_result_file(tmp_path):
    with pytest.raises(ValueError, match="path: no result file"):
        provenance.write(tmp_path / "missing.csv", ["search"])
    assert provenance.read(tmp_path / "missing.csv") is None
