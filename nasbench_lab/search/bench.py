"""Speed of black-box search on the NAS-Bench-201 table (``nasbench-lab bench --section search``).

``<strategy>_asktell_per_s``: ask + evaluate + tell round trips per second of one strategy on
the CIFAR-10 table (BenchmarkEvaluator lookups included). ``arena_<S>x<N>x<B>_s``: wall time
of a whole arena (N seeds x S strategies x B queries, results recorded per query).
"""

from __future__ import annotations

import time
from typing import Any

from nasbench_lab.search import evaluators, strategies
from nasbench_lab.search.arena import Arena

#: the six strategies of the arena timing (hyperband needs fidelities, the table has none)
ARENA_STRATEGIES = ("random", "rea", "ls", "reinforce", "bo", "mcts")


def asktell_rate(name: str, evaluator: evaluators.Evaluator, queries: int, seed: int = 0, **options: Any) -> float:
    """Ask/tell round trips per second of one strategy (fresh strategy, best of 2 rounds)."""
    best = float("inf")
    for r in range(2):
        s = strategies.get(name, evaluator.space, seed=seed + r, **options)
        t0 = time.perf_counter()
        for _ in range(queries):
            a = s.ask()
            s.tell(a, evaluator.evaluate(a, s.fidelity))
        best = min(best, time.perf_counter() - t0)
    return queries / best


def bench(quick: bool = False) -> dict[str, float]:
    t0 = time.perf_counter()
    ev = evaluators.get("benchmark", "nb201", "cifar10")
    out: dict[str, float] = {"search_setup_s": time.perf_counter() - t0}
    fast = 500 if quick else 3000
    sizes = {"random": fast, "rea": fast, "ls": fast, "mcts": fast, "reinforce": fast // 2,
             "boltzmann": 100 if quick else 300, "bo": 100 if quick else 300}
    for name, n in sizes.items():
        out[f"{name}_asktell_per_s"] = asktell_rate(name, ev, n)
    mf = evaluators.get("benchmark", "nb201", "cifar10", fidelities=(22, 66, 200))
    out["hyperband_asktell_per_s"] = asktell_rate("hyperband", mf, fast, fidelities=mf.fidelities)
    seeds, budget = (3, 100) if quick else (10, 300)
    arena = Arena("nb201", "cifar10", list(ARENA_STRATEGIES), seeds=seeds, budget=budget)
    t0 = time.perf_counter()
    arena.run()
    out[f"arena_{seeds}x{len(ARENA_STRATEGIES)}x{budget}_s"] = time.perf_counter() - t0
    return out


if __name__ == "__main__":  # pragma: no cover
    for k, v in bench().items():
        print(f"{k:<32} {v:,.3f}")
