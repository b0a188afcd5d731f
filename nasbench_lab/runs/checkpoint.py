"""Atomic checkpoints and RNG-state capture.

A checkpoint is written to a temporary file in the same folder and renamed over the target, so
a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "nasbench_lab.checkpoint/1"


def rng_state() -> dict[str, Any]:
    """Global RNG states of python, numpy and torch (and CUDA when present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """One seed for python, numpy and torch (the per-run generators are seeded separately)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format tag and global RNG states) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "rng": rng_state(), **payload}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu",
         expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint; ``expect`` maps keys (e.g. ``space``) to required values.

    Raises FileNotFoundError or ValueError with the path and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a nasbench_lab checkpoint (format tag {FORMAT!r} missing)")
    for key, want in (expect or {}).items():
        got = data.get("meta", {}).get(key, data.get(key))
        if want is not None and got != want:
            raise ValueError(f"checkpoint {path} was written for {key}={got!r}, but this run has {key}={want!r}")
    return data
