"""Provenance of a result file: the exact command, versions, machine and date, in a JSON sidecar.

A table a notebook loads instead of recomputing (``notebooks/results/``) must say how it was
made, so a reader can rerun it or judge it. ``nasbench-lab ... --csv PATH`` writes
``PATH.provenance.json`` beside the table when the command succeeds (see :func:`nasbench_lab.cli.main`).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SUFFIX = ".provenance.json"


def sidecar(path: str | os.PathLike) -> Path:
    """Where the provenance of ``path`` lives: ``PATH.provenance.json``."""
    return Path(str(path) + SUFFIX)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes), None outside a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def describe(argv: Sequence[str], seconds: float | None = None, program: str = "nasbench-lab",
             **extra: Any) -> dict[str, Any]:
    """The record: command line (``program`` + argv; a script passes its own path), package/torch/
    python versions, git commit, machine (host OS, CPU, cores, CUDA device if any), UTC date, CPU and
    wall seconds."""
    import torch

    import nasbench_lab

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "command": " ".join(shlex.quote(a) for a in (program, *argv)),
        "argv": list(argv),
        "nasbench_lab": getattr(nasbench_lab, "__version__", "unknown"),
        "commit": _commit(),  # the code that made it: a rerun on another commit may differ in rounding
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "machine": {"platform": platform.platform(), "cpu": _cpu(), "cores": os.cpu_count(), "cuda": cuda,
                    "torch_threads": torch.get_num_threads(), "niceness": os.nice(0) if hasattr(os, "nice") else None},
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": None if seconds is None else round(seconds, 1),
        "cpu_s": round(time.process_time(), 1),
        **extra,
    }


def write(path: str | os.PathLike, argv: Sequence[str], seconds: float | None = None, program: str = "nasbench-lab",
          **extra: Any) -> Path:
    """Write the sidecar of ``path`` (the result file must exist) and return its path."""
    if not Path(path).is_file():
        raise ValueError(f"path: no result file at {path!r} to describe (write the table first)")
    out = sidecar(path)
    out.write_text(json.dumps(describe(argv, seconds, program, **extra), indent=2) + "\n")
    return out


def read(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance of ``path``, or None when it has no sidecar."""
    p = sidecar(path)
    return json.loads(p.read_text()) if p.is_file() else None
