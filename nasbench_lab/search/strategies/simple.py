"""Random search, regularized evolution and local search (004 §3.1-§3.2)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from nasbench_lab.search.strategies.base import Strategy
from nasbench_lab.spaces import Arch, SearchSpace


class RandomSearch(Strategy):
    """Uniform sampling *with* replacement: the baseline whose expected best-of-n is exact
    (:func:`nasbench_lab.search.arena.expected_best_of_n`)."""

    name = "random"

    def ask(self) -> Arch:
        self.fidelity = None
        return self.cache.sample(self.rng)


class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al. 2019, Algorithm 1).

    The first ``population_size`` queries are uniform samples. Afterwards each query: draw
    ``sample_size`` members of the population uniformly without replacement, mutate the best of
    them (one uniformly chosen neighbour), and when the child is told, append it and remove the
    *oldest* member, whatever its accuracy.

    Defaults follow the paper's proportions, not its absolute numbers: Real et al. evolve
    P = 100, S = 25 over C = 20,000 cycles (§4.1), a population of 0.5 % of the budget and a
    tournament of a quarter of the population. A population as large as a small budget never
    evolves (REA is then random search, query for query), so when ``budget`` is given and
    ``population_size`` is not, P = clip(budget // 10, 5, 100) and S = max(2, ceil(P / 4));
    without a budget P = 100, S = 25 as in the paper. The arena passes its budget.
    """

    name = "rea"
    _state_keys = ("population", "born")

    def __init__(self, space: SearchSpace | str, seed: int = 0, population_size: int | None = None,
                 sample_size: int | None = None, budget: int | None = None) -> None:
        super().__init__(space, seed)
        for arg, value in (("population_size", population_size), ("sample_size", sample_size), ("budget", budget)):
            if value is not None and (isinstance(value, bool) or int(value) < 1):
                raise ValueError(f"rea: {arg} must be a positive integer or None, got {value!r} (e.g. 100)")
        population_size, sample_size = default_rea_sizes(budget, population_size, sample_size)
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"rea: expected 1 <= sample_size <= population_size, got sample_size={sample_size!r}, "
                             f"population_size={population_size!r} (e.g. 25 and 100)")
        self.population_size, self.sample_size = int(population_size), int(sample_size)
        self._options = {"population_size": self.population_size, "sample_size": self.sample_size}
        #: (arch, acc, birth index) from oldest to youngest
        self.population: deque[tuple[Arch, float, int]] = deque()
        self.born = 0

    def ask(self) -> Arch:
        self.fidelity = None
        if self.born < self.population_size:
            return self.cache.sample(self.rng)
        return self.cache.mutate(self.parent(), self.rng)

    def parent(self) -> Arch:
        """Tournament: the best of ``sample_size`` members drawn without replacement."""
        idx = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
        best = max(idx, key=lambda i: self.population[i][1])
        return self.population[best][0]

    def _observe(self, arch: Arch, acc: float, fidelity: float | None) -> None:
        self.population.append((arch, acc, self.born))
        self.born += 1
        if len(self.population) > self.population_size:
            self.population.popleft()  # the oldest, not the worst: the "regularization"

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "panel": "nasbench_lab.viz.search:population_panel",
                "population": [str(a) for a, _, _ in self.population],
                "acc": [float(v) for _, v, _ in self.population],
                "born": [int(b) for _, _, b in self.population]}


def default_rea_sizes(budget: int | None, population_size: int | None = None,
                      sample_size: int | None = None) -> tuple[int, int]:
    """(population, tournament) for REA: given values win; otherwise Real et al.'s proportions
    scaled to ``budget`` (see :class:`RegularizedEvolution`), or their P = 100, S = 25."""
    if population_size is None:
        population_size = 100 if budget is None else int(min(100, max(5, int(budget) // 10)))
    if sample_size is None:
        sample_size = 25 if budget is None and population_size == 100 else max(2, math.ceil(int(population_size) / 4))
        sample_size = min(sample_size, int(population_size))
    return int(population_size), int(sample_size)


class LocalSearch(Strategy):
    """Hill climbing over ``space.neighbours`` with random restarts (004 §3.1, White et al. 2021).

    Start from a uniform architecture. ``variant="first"``: visit the neighbours of the current
    architecture in random order and move to the first one better than it. ``"best"``: evaluate
    all neighbours, then move to the best if it beats the current one. When no neighbour is
    better the current architecture is a local optimum: record it and restart from a new uniform
    architecture. Neighbours already evaluated in this search are not queried again (their known
    accuracy is used), so no query is spent twice on a deterministic evaluator.
    """

    name = "ls"
    _state_keys = ("current", "current_acc", "queue", "best_nbr", "phase", "optima")

    def __init__(self, space: SearchSpace | str, seed: int = 0, variant: str = "first") -> None:
        super().__init__(space, seed)
        if variant not in ("first", "best"):
            raise ValueError(f"ls: variant must be 'first' or 'best' improvement, got {variant!r}")
        self.variant = variant
        self._options = {"variant": variant}
        self.current: Arch | None = None
        self.current_acc = -np.inf
        self.queue: list[Arch] = []
        self.best_nbr: tuple[Arch, float] | None = None
        self.phase = "start"
        #: local optima found so far: (arch, acc)
        self.optima: list[tuple[Arch, float]] = []

    def _move(self, arch: Arch, acc: float) -> None:
        self.current, self.current_acc = arch, acc
        nbrs = list(self.cache.neighbours(arch))
        order = self.rng.permutation(len(nbrs))
        self.queue = [nbrs[i] for i in order]
        self.best_nbr = None

    def _consider(self, arch: Arch, acc: float) -> None:
        if self.variant == "first":
            if acc > self.current_acc:
                self._move(arch, acc)
        elif self.best_nbr is None or acc > self.best_nbr[1]:
            self.best_nbr = (arch, acc)

    def ask(self) -> Arch:
        self.fidelity = None
        while True:  # ends: every move strictly improves, and a restart returns at once
            if self.current is None:
                self.phase = "start"
                return self._unseen_sample()
            while self.queue:
                nxt = self.queue[-1]
                if nxt in self.seen:  # known already: compare without spending a query
                    self.queue.pop()
                    self._consider(nxt, self.seen[nxt])
                    continue
                self.phase = "neighbour"
                return nxt  # leaves the queue when told
            if self.variant == "best" and self.best_nbr is not None and self.best_nbr[1] > self.current_acc:
                self._move(*self.best_nbr)
                continue
            self.optima.append((self.current, self.current_acc))  # a local optimum: restart
            self.current = None

    def _observe(self, arch: Arch, acc: float, fidelity: float | None) -> None:
        if self.phase == "start" or self.current is None:
            self._move(arch, acc)
            return
        if self.queue and self.queue[-1] == arch:
            self.queue.pop()
        elif arch in self.queue:
            self.queue.remove(arch)
        self._consider(arch, acc)

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "current": str(self.current) if self.current is not None else None,
                "current_acc": float(self.current_acc) if self.current is not None else None,
                "optima": [[str(a), float(v)] for a, v in self.optima[-50:]], "restarts": len(self.optima)}
