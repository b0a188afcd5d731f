"""Small pieces the thesis' samplers share: schedules, softmax sampling, option checks, windows.

Samplers do not know their step budget when they are built; the Trainer calls
``before_step(trainer)`` each step and :class:`Progress` reads ``trainer.step_count`` and
``trainer.total_steps`` there, so schedules (annealed temperatures, warm-up phases) follow the
run, and a sampler used without a trainer (tests, notebooks) falls back to its own step count and
an explicit ``total_steps`` option.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from scipy.special import softmax


def linear(start: float, end: float, frac: float) -> float:
    """Linear interpolation from ``start`` (frac 0) to ``end`` (frac 1), clipped."""
    frac = min(1.0, max(0.0, float(frac)))
    return float(start + (end - start) * frac)


def boltzmann(values: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(values / T)`` (eq 2.6, 3.2, 5.7), numerically stable."""
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature!r} (e.g. 0.02)")
    return softmax(np.asarray(values, float) / float(temperature))


def choose(rng: np.random.Generator, p: np.ndarray) -> int:
    """Index drawn from the probability vector ``p``."""
    p = np.asarray(p, float)
    return int(rng.choice(len(p), p=p / p.sum()))


def check_fraction(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name}: expected a fraction of the training steps in [0, 1), got {value!r} (e.g. {name}=0.4)")
    return v


def check_positive(name: str, value: float, example: str) -> float:
    v = float(value)
    if not v > 0:
        raise ValueError(f"{name}: expected a positive number, got {value!r} (e.g. {name}={example})")
    return v


def check_unit(name: str, value: float, example: str) -> float:
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r} (e.g. {name}={example})")
    return v


class Progress:
    """Where the run is: step and total, from the trainer when there is one."""

    def __init__(self, total_steps: int | None = None) -> None:
        if total_steps is not None and int(total_steps) < 1:
            raise ValueError(f"total_steps: expected a positive integer, got {total_steps!r} (e.g. total_steps=1000)")
        self.total = int(total_steps) if total_steps is not None else None
        self.step = 0
        self.driven = False  # True once a trainer reports the step

    def update(self, trainer: Any) -> None:
        self.driven = True
        self.step = int(getattr(trainer, "step_count", self.step))
        total = getattr(trainer, "total_steps", None)
        if total:
            self.total = int(total)

    def observed(self, steps: int) -> None:
        """After ``observe``: without a trainer, the sampler's own count is the step."""
        if not self.driven:
            self.step = int(steps)

    def frac(self) -> float:
        """Fraction of the run done (0 without a known total)."""
        return self.step / self.total if self.total else 0.0

    def steps_at(self, frac: float) -> int:
        return int(round(frac * self.total)) if self.total else 0

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "step": self.step, "driven": self.driven}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total, self.step, self.driven = state["total"], int(state["step"]), bool(state["driven"])


class Windows:
    """Sampling counts per window of steps (thesis Fig 4.2b: how often the top archs are trained)."""

    def __init__(self, num_windows: int = 20) -> None:
        self.num_windows = int(num_windows)
        self.rows: list[dict[str, Any]] = []
        self.current: Counter[str] = Counter()
        self.start = 0

    def add(self, arch: str, step: int, total: int | None) -> None:
        size = max(1, (total or 100 * self.num_windows) // self.num_windows)
        if step - self.start >= size and self.current:
            self.rows.append({"start": self.start, "end": step, "counts": dict(self.current)})
            self.current = Counter()
            self.start = step
        self.current[arch] += 1

    def data(self) -> list[dict[str, Any]]:
        rows = list(self.rows)
        if self.current:
            rows.append({"start": self.start, "end": None, "counts": dict(self.current)})
        return rows

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows], "current": dict(self.current), "start": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state["rows"]]
        self.current = Counter(state["current"])
        self.start = int(state["start"])
