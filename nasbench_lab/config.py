"""Process-wide settings: where the workspace lives and which device to use."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def workspace(path: str | os.PathLike | None = None) -> Path:
    """The workspace folder (run store, checkpoints, user-built benchmarks).

    Order: the argument, ``$NASBENCH_LAB_HOME``, then ``~/.nasbench_lab``. Created on first use.
    """
    given = path or os.environ.get("NASBENCH_LAB_HOME")
    root = Path(given or Path.home() / ".nasbench_lab").expanduser()
    if not root.is_dir() and (root.exists() or root.is_symlink()):
        # mkdir would say only "File exists": name the setting and what is in the way
        what = "a link to nowhere" if not root.exists() else "a file"
        source = "workspace" if path else ("NASBENCH_LAB_HOME" if given else "the default workspace")
        raise NotADirectoryError(f"{source}: {root} is {what}, not a folder; move it away or point NASBENCH_LAB_HOME "
                                 "at a folder (e.g. export NASBENCH_LAB_HOME=~/nasbench_lab_workspace)")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _mps() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def device(name: str | torch.device | None = None) -> torch.device:
    """``auto``/None picks cuda, then mps, then cpu; else ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    A device this machine does not have is a ValueError now (not a traceback at the first tensor
    moved there), and it is never silently replaced by another one.
    """
    if name is None or str(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(name, str | torch.device):
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda', 'cuda:0' or 'mps', got {name!r}")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device: {name!r} is not a device; expected 'auto', 'cpu', 'cuda', 'cuda:0' or 'mps'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name!r} was asked for, but CUDA is not available on this machine "
                             "(torch.cuda.is_available() is False); use device='auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device: {name!r} does not exist; this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s): cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps":
        if not _mps():
            raise ValueError(f"device: {name!r} was asked for, but MPS is not available on this machine; use "
                             "device='auto' or 'cpu'")
    elif dev.type != "cpu":
        raise ValueError(f"device: {name!r} is not supported; expected 'auto', 'cpu', 'cuda', 'cuda:0' or 'mps'")
    return dev
