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


def reset_parameters(module: Any) -> None:
    """A fresh initialisation of every submodule that has one (weights and BN statistics)."""
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()


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


def distinct_draws(log_p: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``min(k, len(log_p))`` distinct indices drawn without replacement with probabilities
    ``exp(log_p)``: the law of drawing with replacement until ``k`` differ (keeping each at its
    first draw), computed at once as the top ``k`` of ``log_p + Gumbel noise`` (Gumbel-top-k;
    Kool et al. 2019), so a distribution with one index at 1 - 1e-30 still gives ``k`` indices.
    Works in log space: log-probabilities far below -745 (exp underflows) stay ordered."""
    log_p = np.asarray(log_p, float)
    keys = log_p + rng.gumbel(size=log_p.shape)
    return np.argsort(-keys, kind="stable")[:k]


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


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: expected true or false, got {value!r} (e.g. {name}=True)")
    return bool(value)


# --------------------------------------------------------------------------- checkpoints of older versions
def stale_state(space: Any, sampler: str, what: str) -> ValueError:
    """The error for sampler state written with decisions the space no longer has."""
    return ValueError(
        f"{sampler}: this checkpoint's {what} uses decisions of {space.name!r} that no longer exist "
        f"(before per-layer pooling decisions, a pooling architecture was decided as layer counts per "
        f"resolution; per-resolution statistics cannot be mapped onto per-layer ones). The run's "
        f"records and configuration are intact: start it again from its configuration, or resume it "
        f"with the nasbench_lab version that wrote it")


def current_genes(space: Any, genes: Any) -> tuple[int, ...]:
    """Genes as the space decides them now. A pooling checkpoint written before per-layer
    decisions stored layouts such as ``(4, 3, 3)``; ``parse`` maps them onto the decisions."""
    return space.parse(tuple(int(g) for g in genes)).genes


def current_tree_state(space: Any, state: dict[str, Any], sampler: str) -> dict[str, Any]:
    """A search tree's state with leaves in current genes; a default tree built on other
    decision levels is refused with a clear error (its nodes mean other sets of architectures)."""
    if state["kind"] == "default":
        depth = max((len(p) for p in state.get("prefix", [])), default=0)
        if depth != space.num_levels:
            raise stale_state(space, sampler, f"default tree ({depth} decision levels, the space has "
                                              f"{space.num_levels})")
        return state
    try:
        leaves = [None if g is None else list(current_genes(space, g)) for g in state["leaf"]]
    except ValueError as exc:
        raise stale_state(space, sampler, f"tree ({exc})") from None
    return {**state, "leaf": leaves}


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
