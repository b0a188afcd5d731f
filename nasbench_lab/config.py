"""Process-wide settings: where the workspace lives and which device to use."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def workspace(path: str | os.PathLike | None = None) -> Path:
    """The workspace folder (run store, checkpoints, user-built benchmarks).

    Order: the argument, ``$NASBENCH_LAB_HOME``, then ``~/.nasbench_lab``. Created on first use.
    """
    root = Path(path or os.environ.get("NASBENCH_LAB_HOME") or Path.home() / ".nasbench_lab")
    root = root.expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def device(name: str | torch.device | None = None) -> torch.device:
    """``auto``/None picks cuda, then mps, then cpu; anything else is passed to torch.device."""
    if name is None or str(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: {name!r} is not a device; expected 'auto', 'cpu', 'cuda' or 'cuda:0'") from exc
