"""Black-box strategies by name: ``strategies.get("rea", space, seed=0, population_size=100)``.

========== ==================================================================
random     uniform sampling with replacement (the reference of every plot)
rea        regularized (aging) evolution: tournament, mutate, remove oldest
ls         local search (first / best improvement, restart at local optima)
reinforce  REINFORCE, per-level categorical logits, moving-average baseline
bo         Bayesian optimisation, MLP-ensemble predictor, EI/UCB, mutation
boltzmann  softmax over predicted accuracy with an annealed temperature
mcts       Monte-Carlo tree search with UCT over the space's decision tree
hyperband  Hyperband / successive halving (needs an evaluator with fidelities)
nsga2      NSGA-II, multi-objective: accuracy against FLOPs / params / latency
========== ==================================================================
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from nasbench_lab import spaces
from nasbench_lab import validation as V
from nasbench_lab.search.strategies.base import Strategy
from nasbench_lab.spaces import SearchSpace

_REGISTRY: dict[str, str] = {
    "random": "nasbench_lab.search.strategies.simple:RandomSearch",
    "rea": "nasbench_lab.search.strategies.simple:RegularizedEvolution",
    "ls": "nasbench_lab.search.strategies.simple:LocalSearch",
    "reinforce": "nasbench_lab.search.strategies.reinforce:Reinforce",
    "bo": "nasbench_lab.search.strategies.bo:BayesianOptimization",
    "boltzmann": "nasbench_lab.search.strategies.boltzmann:BoltzmannExploration",
    "mcts": "nasbench_lab.search.strategies.mcts:MCTS",
    "hyperband": "nasbench_lab.search.strategies.hyperband:Hyperband",
    "nsga2": "nasbench_lab.search.strategies.nsga2:NSGA2",
}


def names() -> list[str]:
    """Strategy names accepted by :func:`get`."""
    return list(_REGISTRY)


def register(name: str, target: str) -> None:
    """Register ``"module:Class"`` (a :class:`Strategy` subclass) under ``name``."""
    _REGISTRY[name] = target


def strategy_class(name: str) -> type[Strategy]:
    if name not in _REGISTRY:
        raise ValueError(f"strategy: unknown {name!r}; valid names: {', '.join(_REGISTRY)}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def option_names(name: str) -> list[str]:
    """The options a strategy accepts (its constructor keywords besides space and seed)."""
    params = inspect.signature(strategy_class(name).__init__).parameters
    return [p for p in params if p not in ("self", "space", "seed")]


def get(name: str, space: SearchSpace | str, seed: int = 0, **options: Any) -> Strategy:
    """A fresh strategy; unknown options raise a ValueError that lists the valid ones."""
    cls = strategy_class(name)
    valid = option_names(name)
    bad = sorted(set(options) - set(valid))
    if bad:
        raise ValueError(f"strategy {name!r}: unknown options {bad}; valid: {', '.join(valid) or '(none)'}")
    V.check_options(cls, options, f"strategy {name!r} options")  # types by the constructor's annotations
    sp = spaces.get(space) if isinstance(space, str) else space
    return cls(sp, seed=seed, **options)


__all__ = ["Strategy", "get", "names", "register", "option_names", "strategy_class"]
