"""NSGA-II over a search space, as an ask/tell strategy (Deb, Pratap, Agarwal & Meyarivan 2002).

Objectives: the accuracy the evaluator returns (maximised) and the costs named in ``objectives``
(FLOPs, params, latency: minimised, from the space's cost model, so they cost no query). The loop
of the paper, one query at a time:

1. generation 0: ``population_size`` distinct uniform architectures;
2. offspring: ``population_size`` children, each from two parents chosen by binary tournament on
   (front rank, then crowding distance) (§III-C, the crowded-comparison operator), uniform
   crossover of the genes with probability ``crossover_prob`` (product spaces only: a constrained
   space such as pooling keeps the first parent), then one ``space.mutate`` step with probability
   ``mutation_prob``; a child already evaluated is mutated again (up to 20 times, then a fresh
   uniform architecture) so no query repeats a deterministic answer;
3. once every child is told: environmental selection on parents + children by fast non-dominated
   sorting, filling the next population front by front and breaking the last front by crowding
   distance (§III-A/B), then back to 2.

Deviation: the paper's SBX / polynomial mutation are for real variables; on categorical genes we use
uniform crossover and the space's own neighbour mutation (as NSGA-Net and pymoo's integer NSGA-II do).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasbench_lab.search.pareto import Objectives, crowding_distance, nondominated, pareto_ranks
from nasbench_lab.search.strategies.base import Strategy
from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.cost import cost_model


def objective_costs(space: SearchSpace, names: tuple[str, ...]) -> list:
    """The cost models of every non-accuracy objective (``acc`` comes from the evaluator)."""
    return [cost_model(space, n) for n in names if n != "acc"]


class NSGA2(Strategy):
    """NSGA-II (see the module docstring); ``snapshot()`` carries the current first front."""

    name = "nsga2"
    _state_keys = ("population", "offspring", "pending", "generation", "values")

    def __init__(self, space: SearchSpace | str, seed: int = 0, objectives: str | list[str] = "acc,flops",
                 population_size: int = 20, crossover_prob: float = 0.9, mutation_prob: float = 1.0) -> None:
        super().__init__(space, seed)
        self.objectives = Objectives.parse(objectives)
        if "acc" not in self.objectives:
            raise ValueError(f"nsga2: objectives must include 'acc' (the evaluator's answer), got {self.objectives}")
        if isinstance(population_size, bool) or int(population_size) < 2:
            raise ValueError(f"nsga2: population_size must be an integer >= 2, got {population_size!r} (e.g. 20)")
        for nm, v in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"nsga2: {nm} must be in [0, 1], got {v!r} (e.g. 0.9)")
        self.population_size = int(population_size)
        self.crossover_prob, self.mutation_prob = float(crossover_prob), float(mutation_prob)
        self._options = {"objectives": ",".join(self.objectives), "population_size": self.population_size,
                         "crossover_prob": self.crossover_prob, "mutation_prob": self.mutation_prob}
        self._costs = objective_costs(self.space, self.objectives)
        self.population: list[Arch] = []  # the parents (after selection)
        self.offspring: list[Arch] = []  # children told in this generation
        self.pending: list[Arch] = []  # children asked for, not told yet
        self.generation = 0
        #: minimisation vector of every evaluated architecture
        self.values: dict[Arch, tuple[float, ...]] = {}

    # ------------------------------------------------------------------ objectives
    def vector(self, arch: Arch, acc: float) -> tuple[float, ...]:
        """Minimisation vector: ``-acc`` and the raw costs, in the order of ``objectives``."""
        costs = iter(self._costs)
        return tuple(-float(acc) if n == "acc" else float(next(costs)(arch.genes)) for n in self.objectives)

    def _F(self, archs: list[Arch]) -> np.ndarray:
        return np.array([self.values[a] for a in archs], dtype=float).reshape(len(archs), len(self.objectives))

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Arch:
        self.fidelity = None
        if self.generation == 0:
            return self._unseen_sample()
        if not self.pending:
            self.pending = self._children(self.population_size)
        return self.pending[0]

    def _observe(self, arch: Arch, acc: float, fidelity: float | None) -> None:
        self.values[arch] = self.vector(arch, acc)
        if self.generation == 0:
            if arch not in self.population:
                self.population.append(arch)
            if len(self.population) >= self.population_size:
                self.generation = 1
            return
        if arch in self.pending:
            self.pending.remove(arch)
        self.offspring.append(arch)
        if len(self.offspring) >= self.population_size:
            self.population = self.select(self.population + self.offspring, self.population_size)
            self.offspring, self.pending = [], []
            self.generation += 1

    # ------------------------------------------------------------------ NSGA-II operators
    def select(self, archs: list[Arch], k: int) -> list[Arch]:
        """Environmental selection: fronts in order, the last one cut by crowding distance."""
        archs = list(dict.fromkeys(archs))
        F = self._F(archs)
        ranks = pareto_ranks(F)
        out: list[Arch] = []
        for r in range(int(ranks.max()) + 1):
            idx = np.flatnonzero(ranks == r)
            if len(out) + len(idx) <= k:
                out += [archs[i] for i in idx]
            else:
                d = crowding_distance(F[idx])
                order = np.argsort(-d, kind="stable")
                out += [archs[idx[i]] for i in order[:k - len(out)]]
            if len(out) >= k:
                break
        return out

    def _tournament(self, ranks: np.ndarray, crowd: np.ndarray) -> int:
        i, j = self.rng.choice(len(ranks), size=2, replace=len(ranks) < 2)
        if ranks[i] != ranks[j]:
            return int(i if ranks[i] < ranks[j] else j)
        return int(i if crowd[i] >= crowd[j] else j)

    def _children(self, n: int) -> list[Arch]:
        pop = self.population
        F = self._F(pop)
        ranks = pareto_ranks(F)
        crowd = np.zeros(len(pop))
        for r in np.unique(ranks):
            idx = np.flatnonzero(ranks == r)
            crowd[idx] = crowding_distance(F[idx])
        product = bool(getattr(self.space, "product_space", False))
        out: list[Arch] = []
        for _ in range(n):
            a, b = pop[self._tournament(ranks, crowd)], pop[self._tournament(ranks, crowd)]
            genes = list(a.genes)
            if product and self.rng.random() < self.crossover_prob:
                take = self.rng.random(len(genes)) < 0.5
                genes = [gb if t else ga for ga, gb, t in zip(a.genes, b.genes, take)]
            child = self.space.arch(genes)
            if self.rng.random() < self.mutation_prob:
                child = self.cache.mutate(child, self.rng)
            tries = 0
            while (child in self.seen or child in out) and tries < 20:
                child = self.cache.mutate(child, self.rng)
                tries += 1
            if child in self.seen or child in out:
                child = self._unseen_sample()
            out.append(child)
        return out

    # ------------------------------------------------------------------ views
    def front(self) -> list[tuple[Arch, tuple[float, ...]]]:
        """The non-dominated architectures among everything evaluated."""
        archs = list(self.values)
        if not archs:
            return []
        mask = nondominated(self._F(archs))
        return [(a, self.values[a]) for a, m in zip(archs, mask) if m]

    def snapshot(self) -> dict[str, Any]:
        front = self.front()
        return {**super().snapshot(), "generation": self.generation, "objectives": list(self.objectives),
                "front": [str(a) for a, _ in front],
                "front_values": [[-v if n == "acc" else v for n, v in zip(self.objectives, vals)] for _, vals in front]}
