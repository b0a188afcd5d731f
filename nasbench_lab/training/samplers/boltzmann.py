"""Importance sampling with joint (Boltzmann) and independent probabilities (thesis §3.3.2-3.3.3, eq 2.6).

Boltzmann: ``p(a) ∝ exp(eps_a / T)`` over every architecture, ``eps_a`` the exponential moving
average (``beta``) of the validation-minibatch accuracy of ``a``; ``T`` is annealed from high
(almost uniform, an unbiased start) to low (almost categorical, training focuses on the best).
Eq 2.6 writes it with the inverse temperature ``tau = 1/T`` increased linearly from 1; that is the
default ``schedule="inverse"`` (``1/T`` linear from ``1/t_start`` to ``1/t_end``); ``"linear"``
anneals ``T`` itself linearly.

Independent: ``p(a) = prod_l p(a_l)`` (§3.3.2), one smoothed reward per (level, option), updated
for every level of each sampled architecture; ``p(a_l = g) ∝ exp(r_{l,g} / T)``. On the pooling
spaces a level is one block's binary choice (pool or identity), so the factors are per layer.
Constrained spaces (pooling: exactly ``p`` poolings) are not products; the thesis does not say
how it restricts the product there. We sample the product *restricted to the valid
architectures*, ``p(a) ∝ prod_l p(a_l)`` over the space, exactly (by enumeration) when the space
is numerable. Drawing level by level with each factor renormalised over the options still valid
would instead favour the early levels (the last blocks would be forced to pool whenever the early
ones did not). Large constrained spaces fall back to that sequential draw; product spaces are
unaffected (both are the same there).

Budgets (issue 17). Boltzmann is a joint distribution over the architectures: with a budget it is
restricted to the in-band ones and renormalised, which is exactly the distribution that drawing
and discarding out-of-band draws would give (rejection), without the discarded draws.
Independent on a numerable space is likewise the product restricted to the in-band architectures
(again exactly what rejection gives). On a space too large to enumerate (MobileNetV2) it draws
level by level among the options that can still reach the band, each factor renormalised over
them. That is *not* rejection: rejection gives ``p(a) ∝ prod_l p(a_l)`` over the band, while the
sequential draw moves the mass of an option that leaves the band onto its feasible siblings at
that level, so architectures reached through levels with few feasible options are favoured (the
same bias as the sequential draw on constrained spaces above). It never discards and never
starves, which rejection from a sharpened product (T -> 0, a mode outside the band) would.

Conventions the thesis leaves open (the authors' code does the same): an EMA starts at its first
observation instead of 0, so a value does not depend on how often it was seen; unseen entries take
the mean of the seen ones, a neutral prior that neither favours nor starves them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.budget import Budget
from nasbench_lab.training.samplers.base import Sampler
from nasbench_lab.training.samplers.common import (
    Progress,
    Windows,
    boltzmann,
    check_fraction,
    check_positive,
    check_unit,
    choose,
    linear,
    stale_state,
)

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer

_SNAPSHOT_MAX = 1000  # above this many architectures a snapshot keeps the 200 most probable


def anneal(t_start: float, t_end: float, frac: float, schedule: str) -> float:
    """Temperature at ``frac`` of the annealing: ``linear`` in T or in 1/T (``inverse``, eq 2.6)."""
    if schedule == "inverse":
        return 1.0 / linear(1.0 / t_start, 1.0 / t_end, frac)
    return linear(t_start, t_end, frac)


def ema(old: float, new: float, beta: float, first: bool) -> float:
    """Eq 2.2 / 3.4: ``beta * old + (1 - beta) * new``; the first observation initialises."""
    return float(new) if first else beta * old + (1.0 - beta) * float(new)


def neutral_fill(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Unseen entries take the mean of the seen ones (all zero when nothing was seen)."""
    out = np.asarray(values, float).copy()
    seen = np.asarray(seen, bool)
    out[~seen] = out[seen].mean() if seen.any() else 0.0
    return out


class _Annealed(Sampler):
    """Shared options: EMA factor, annealed temperature, uniform warm-up fraction."""

    def __init__(self, space: SearchSpace, seed: int = 0, beta: float = 0.95, t_start: float = 1.0,
                 t_end: float = 0.01, schedule: str = "inverse", warmup: float = 0.0,
                 total_steps: int | None = None, budget: str | dict | Budget | None = None) -> None:
        super().__init__(space, seed, budget=budget)
        self.beta = check_unit("beta", beta, "0.95")
        self.t_start = check_positive("t_start", t_start, "1.0")
        self.t_end = check_positive("t_end", t_end, "0.01")
        if schedule not in ("inverse", "linear"):
            raise ValueError(f"schedule: expected 'inverse' (1/T linear, eq 2.6) or 'linear', got {schedule!r}")
        self.schedule = schedule
        self.warmup = check_fraction("warmup", warmup)
        self.progress = Progress(total_steps)
        self.windows = Windows()

    def before_step(self, trainer: Trainer) -> None:
        self.progress.update(trainer)

    @property
    def in_warmup(self) -> bool:
        return self.progress.frac() < self.warmup

    @property
    def temperature(self) -> float:
        frac = (self.progress.frac() - self.warmup) / max(1e-12, 1.0 - self.warmup)
        return anneal(self.t_start, self.t_end, frac, self.schedule)

    def observe(self, arch: Arch, reward: float) -> None:
        super().observe(arch, reward)
        self.progress.observed(self.steps)
        self.windows.add(str(arch), self.steps, self.progress.total)

    def options(self) -> dict[str, Any]:
        return {"beta": self.beta, "t_start": self.t_start, "t_end": self.t_end,
                "schedule": self.schedule, "warmup": self.warmup}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "progress": self.progress.state_dict(),
                "windows": self.windows.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.progress.load_state_dict(state["progress"])
        self.windows.load_state_dict(state["windows"])


class BoltzmannSampler(_Annealed):
    """Joint Boltzmann sampling over every architecture of a numerable space (BSE, eq 2.6)."""

    name = "boltzmann"

    def __init__(self, space: SearchSpace, seed: int = 0, **options: Any) -> None:
        super().__init__(space, seed, **options)
        if not space.numerable:
            raise ValueError(f"boltzmann: space {space.name!r} has {space.size:.3g} architectures; joint "
                             f"probabilities need a numerable space (e.g. 'pooling', 'nbmacro'); use "
                             f"'independent' or 'mcts' for large spaces")
        self.archs = space.enumerate()
        self.eps = np.zeros(len(self.archs))
        self.seen = np.zeros(len(self.archs), bool)
        self.counts = np.zeros(len(self.archs), np.int64)
        # indices of the in-band architectures (all of them without a budget)
        inside = set(self.in_band_archs())
        self.allowed = np.array([i for i, a in enumerate(self.archs) if a in inside], dtype=np.int64)

    def probabilities(self, temperature: float | None = None) -> np.ndarray:
        """``p(a) ∝ exp(eps_a / T)`` at the current (or the given) temperature; 0 outside the
        budget (renormalised over the band: what rejection of out-of-band draws gives)."""
        t = self.temperature if temperature is None else temperature
        p = boltzmann(neutral_fill(self.eps, self.seen), t)
        if len(self.allowed) == len(self.archs):
            return p
        out = np.zeros_like(p)
        out[self.allowed] = p[self.allowed] / p[self.allowed].sum()
        return out

    def sample(self) -> Arch:
        if self.in_warmup:
            return self.archs[int(self.allowed[int(self.rng.integers(len(self.allowed)))])]
        p = self.probabilities()
        return self.archs[int(self.allowed[choose(self.rng, p[self.allowed])])]

    def observe(self, arch: Arch, reward: float) -> None:
        i = self.space.index(arch)
        self.eps[i] = ema(self.eps[i], reward, self.beta, not self.seen[i])
        self.seen[i] = True
        self.counts[i] += 1
        super().observe(arch, reward)

    def select(self, trainer: Trainer | None = None, k: int = 1) -> list[Arch]:
        """The ``k`` architectures with the highest smoothed reward."""
        v = neutral_fill(self.eps, self.seen)[self.allowed]
        return [self.archs[int(self.allowed[i])] for i in np.argsort(-v, kind="stable")[:k]]

    def snapshot(self) -> dict[str, Any]:
        p = self.probabilities()
        idx = np.arange(len(self.archs))
        if len(idx) > _SNAPSHOT_MAX:
            idx = np.sort(np.argsort(-p, kind="stable")[:200])
        return {**super().snapshot(), "panel": "nasbench_lab.viz.density:distribution_panel",
                "archs": [str(self.archs[i]) for i in idx], "p": p[idx].tolist(),
                "value": self.eps[idx].tolist(), "counts": self.counts[idx].tolist(),
                "temperature": self.temperature, "phase": "warm-up" if self.in_warmup else "boltzmann",
                "windows": self.windows.data()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "eps": self.eps.tolist(), "seen": self.seen.tolist(),
                "counts": self.counts.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.eps = np.asarray(state["eps"], float).copy()
        self.seen = np.asarray(state["seen"], bool).copy()
        self.counts = np.asarray(state["counts"], np.int64).copy()


class IndependentSampler(_Annealed):
    """Node-independent sampling: one smoothed reward per (level, option) (§3.3.2)."""

    name = "independent"

    def __init__(self, space: SearchSpace, seed: int = 0, **options: Any) -> None:
        super().__init__(space, seed, **options)
        self.options_at = [list(s) for s in space.level_sizes]
        self.value = [np.zeros(len(o)) for o in self.options_at]
        self.seen = [np.zeros(len(o), bool) for o in self.options_at]
        self.counts: Counter[str] = Counter()

    def level_probabilities(self, level: int, valid: list[int] | None = None,
                            temperature: float | None = None) -> np.ndarray:
        """``p(a_l = g)`` over ``valid`` genes (default: every gene the level can take)."""
        opts = self.options_at[level]
        cols = [opts.index(g) for g in (valid if valid is not None else opts)]
        v = neutral_fill(self.value[level], self.seen[level])[cols]
        return boltzmann(v, self.temperature if temperature is None else temperature)

    @property
    def exact(self) -> bool:
        """True when the restricted product is computed over every (in-band) architecture."""
        restricted = not getattr(self.space, "product_space", False) or self.constrained
        return restricted and self.space.numerable

    @property
    def _archs(self) -> list[Arch]:
        """The architectures of the restricted product (in-band ones under a budget)."""
        if getattr(self, "_archs_cache", None) is None:
            self._archs_cache = self.in_band_archs()
            cols = self._columns
            self._cols = np.array([[cols[level][g] for level, g in enumerate(a.genes)] for a in self._archs_cache],
                                  dtype=np.int64).reshape(len(self._archs_cache), self.space.num_levels)
        return self._archs_cache

    def probabilities(self, temperature: float | None = None) -> np.ndarray:
        """``p(a) ∝ prod_l p(a_l) ∝ exp(sum_l r_{l, a_l} / T)`` over ``space.enumerate()`` (its
        in-band architectures under a budget)."""
        t = self.temperature if temperature is None else temperature
        return boltzmann(self._scores(self._archs), t)

    def _scores(self, archs: list[Arch]) -> np.ndarray:
        filled = [neutral_fill(v, s) for v, s in zip(self.value, self.seen)]
        if archs is self._archs:  # vectorised, summed level by level in the same order as below
            total = np.zeros(len(archs))
            for level in range(self.space.num_levels):
                total = total + filled[level][self._cols[:, level]]
            return total
        cols = self._columns
        return np.array([sum(filled[level][cols[level][g]] for level, g in enumerate(a.genes)) for a in archs])

    @property
    def _columns(self) -> list[dict[int, int]]:
        return [{g: j for j, g in enumerate(opts)} for opts in self.options_at]

    def _descend(self, greedy: bool) -> Arch:
        if self.exact:
            archs = self._archs
            p = self.probabilities()
            return archs[int(np.argmax(p))] if greedy else archs[choose(self.rng, p)]

        def pick(prefix: tuple[int, ...], valid: list[int]) -> int:
            # each factor renormalised over the options still valid (and able to reach the budget)
            p = self.level_probabilities(len(prefix), valid)
            return valid[int(np.argmax(p))] if greedy else valid[choose(self.rng, p)]

        return self.space.arch(self.descend(pick))

    def sample(self) -> Arch:
        if self.in_warmup:
            return self.uniform()
        return self._descend(greedy=False)

    def observe(self, arch: Arch, reward: float) -> None:
        for level, g in enumerate(arch.genes):
            j = self.options_at[level].index(g)
            self.value[level][j] = ema(self.value[level][j], reward, self.beta, not self.seen[level][j])
            self.seen[level][j] = True
        self.counts[str(arch)] += 1
        super().observe(arch, reward)

    def select(self, trainer: Trainer | None = None, k: int = 1) -> list[Arch]:
        """The most probable architecture (the restricted product's mode; level by level for
        large constrained spaces)."""
        return [self._descend(greedy=True)]

    def snapshot(self) -> dict[str, Any]:
        levels = [{"name": self.space.level_name(level),
                   "options": [self.space.option_label(level, g) for g in opts],
                   "p": self.level_probabilities(level).tolist(),
                   "value": self.value[level].tolist()}
                  for level, opts in enumerate(self.options_at)]
        return {**super().snapshot(), "panel": "nasbench_lab.viz.density:distribution_panel",
                "levels": levels, "counts": dict(self.counts.most_common(200)),
                "temperature": self.temperature, "phase": "warm-up" if self.in_warmup else "independent",
                "windows": self.windows.data()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "value": [v.tolist() for v in self.value],
                "seen": [s.tolist() for s in self.seen], "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if [len(v) for v in state["value"]] != [len(o) for o in self.options_at]:
            raise stale_state(self.space, self.name, f"per-level rewards ({len(state['value'])} levels, the "
                                                     f"space has {len(self.options_at)})")
        super().load_state_dict(state)
        self.value = [np.asarray(v, float).copy() for v in state["value"]]
        self.seen = [np.asarray(s, bool).copy() for s in state["seen"]]
        self.counts = Counter(state["counts"])
