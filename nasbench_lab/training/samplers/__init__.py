"""One-shot samplers, looked up by name: ``samplers.get("uniform", space, seed=0)``."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from nasbench_lab.spaces import SearchSpace
from nasbench_lab.training.samplers.base import Sampler

# name -> "module:Class"; imported on use so a listing builds nothing.
_REGISTRY: dict[str, str] = {
    "uniform": "nasbench_lab.training.samplers.uniform:UniformSampler",
    "fair": "nasbench_lab.training.samplers.uniform:FairSampler",
    # the thesis' samplers (issue 6)
    "boltzmann": "nasbench_lab.training.samplers.boltzmann:BoltzmannSampler",
    "independent": "nasbench_lab.training.samplers.boltzmann:IndependentSampler",
    "mcts": "nasbench_lab.training.samplers.mcts:MCTSSampler",
    "mcts-reg": "nasbench_lab.training.samplers.mcts:RegularizedMCTSSampler",
    "mcts-learned": "nasbench_lab.training.samplers.mcts:LearnedTreeMCTSSampler",
    "mcts-iterative": "nasbench_lab.training.samplers.mcts:IterativeMCTSSampler",
    "mixture": "nasbench_lab.training.samplers.mixture:MixtureSampler",
    "density": "nasbench_lab.training.samplers.density:DensitySampler",
}


def names() -> list[str]:
    """Registered sampler names whose module is present."""
    return [n for n, target in _REGISTRY.items() if _available(target)]


def _available(target: str) -> bool:
    return importlib.util.find_spec(target.partition(":")[0]) is not None


def register(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name``."""
    _REGISTRY[name] = target


def get(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Sampler:
    if name not in names():
        raise ValueError(f"unknown sampler {name!r}; valid names: {', '.join(names())}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)(space, seed=seed, **options)


__all__ = ["Sampler", "get", "names", "register"]
