"""Black-box NAS: strategies (ask/tell) over evaluators, and the strategy arena.

- :mod:`.evaluators`: ``evaluate(arch) -> EvalResult(acc, cost_s, fidelity)`` on a tabular
  benchmark (simulated cost), a trained supernet, a zero-cost proxy or real training;
- :mod:`.strategies`: random, rea, ls, reinforce, bo, boltzmann, mcts, hyperband
  (``strategies.get(name, space, seed, **options)``);
- :class:`Arena`: S strategies x N seeds x a budget as a :class:`~nasbench_lab.runs.Job`, with
  tidy results, a regret table, anytime regret curves and the exact random-search expectation.

Example::

    from nasbench_lab.search import Arena
    arena = Arena("nb201", "cifar10", ["random", "rea", "bo"], seeds=10, budget=300).run()
    arena.regret_table()
"""

from __future__ import annotations

from nasbench_lab.search import evaluators, strategies
from nasbench_lab.search.arena import Arena, expected_best_of_n
from nasbench_lab.search.evaluators import (
    BenchmarkEvaluator,
    EvalResult,
    Evaluator,
    ProxyEvaluator,
    SupernetEvaluator,
    TrainingEvaluator,
)
from nasbench_lab.search.strategies import Strategy


def search(strategy: str, space: str = "nb201", dataset: str | None = "cifar10", budget: int = 100, seed: int = 0,
           evaluator: str | Evaluator = "benchmark", **options) -> Strategy:
    """Run one strategy for ``budget`` queries on one evaluator and return it (``.best_arch``,
    ``.best_acc``, ``.seen``); ``options`` go to the strategy."""
    arena = Arena(space, dataset, [strategy], seeds=[seed], budget=budget, evaluator=evaluator,
                  strategy_options={strategy: options} if options else None)
    arena.run()
    return arena.streams[0].strategy


__all__ = ["Arena", "BenchmarkEvaluator", "EvalResult", "Evaluator", "ProxyEvaluator", "Strategy",
           "SupernetEvaluator", "TrainingEvaluator", "evaluators", "expected_best_of_n", "search", "strategies"]
