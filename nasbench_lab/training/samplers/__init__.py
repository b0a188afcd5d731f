"""One-shot samplers, looked up by name: ``samplers.get("uniform", space, seed=0)``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from typing import Any

from nasbench_lab import validation as V
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
    # RL-controlled weight sharing (issue 12)
    "enas": "nasbench_lab.training.samplers.enas:ENASSampler",
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
    klass = check_options(name, options)
    return klass(space, seed=seed, **options)


def check_options(name: str, options: Any, where: str = "method_options") -> type[Sampler]:
    """Names and types of a sampler's options, before anything is built (a comparison checks
    every method's options before it trains the first); returns the sampler's class."""
    klass = sampler_class(name)
    if not isinstance(options, dict):
        raise ValueError(f"{where}: expected an object of option -> value for sampler {name!r}, got {options!r}")
    valid = options_of(klass)
    # ``budget`` (issue 17) is common to every sampler, like the seed: not listed among its options
    unknown = sorted(set(options) - set(valid) - {"budget"}) if valid is not None else []
    if unknown:
        example = next(iter(valid), "seed")
        raise ValueError(f"{where}: sampler {name!r} takes no option {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(valid) or '(none)'} (e.g. {{\"{example}\": ...}})")
    V.check_options(klass, options, where)  # types by the constructor's annotations
    return klass


def sampler_class(name: str) -> type[Sampler]:
    """The class registered under ``name`` (imported now)."""
    if name not in names():
        raise ValueError(f"unknown sampler {name!r}; valid names: {', '.join(names())}")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def options_of(klass: type) -> list[str] | None:
    """The keyword options a sampler class takes (following ``**kwargs`` up the MRO), without
    ``seed`` and ``budget``, which every sampler takes; None when some constructor takes arbitrary
    keywords."""
    names_: list[str] = []
    for k in klass.__mro__:
        if "__init__" not in vars(k):
            continue
        params = list(inspect.signature(k.__init__).parameters.values())[2:]  # self, space
        names_ += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                   and p.name not in names_ and p.name not in ("seed", "budget")]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names_
    return None


__all__ = ["Sampler", "check_options", "get", "names", "options_of", "register", "sampler_class"]
