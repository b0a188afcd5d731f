"""The black-box Strategy contract: ask / tell over an evaluator.

``arch = s.ask()`` proposes the next architecture (always one of ``s.space``), and
``s.fidelity`` says at which fidelity to evaluate it (None: the evaluator's default);
``s.tell(arch, result)`` reports the result (an :class:`EvalResult` or a plain accuracy).
Strategies maximise. Each owns a ``numpy.random.Generator`` seeded by ``seed``; its
``state_dict()`` holds that generator's state and every attribute named in ``_state_keys``, so
``load_state_dict`` continues the exact same trajectory. ``snapshot()`` is plain data for views.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from nasbench_lab import spaces
from nasbench_lab.search._cache import SpaceCache, space_cache
from nasbench_lab.search.evaluators import EvalResult
from nasbench_lab.spaces import Arch, SearchSpace


class Strategy(ABC):
    """Base class: subclasses set ``name``, implement ``ask`` and extend ``_observe``."""

    name: str = ""
    #: True for strategies that need an evaluator with fidelities (Hyperband)
    needs_fidelity: bool = False
    #: attributes (besides the generator and the bookkeeping below) saved by ``state_dict``
    _state_keys: tuple[str, ...] = ()

    def __init__(self, space: SearchSpace | str, seed: int = 0) -> None:
        self.space: SearchSpace = spaces.get(space) if isinstance(space, str) else space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.cache: SpaceCache = space_cache(self.space)
        #: fidelity at which the last asked architecture should be evaluated (None: default)
        self.fidelity: float | None = None
        self.n_told = 0
        self.best_arch: Arch | None = None
        self.best_acc = -np.inf
        #: every observed accuracy by architecture (the last one for repeated queries)
        self.seen: dict[Arch, float] = {}
        self._options: dict[str, Any] = {}

    # ------------------------------------------------------------------ ask / tell
    @abstractmethod
    def ask(self) -> Arch:
        """The next architecture to evaluate (at ``self.fidelity``)."""

    def tell(self, arch: Arch, result: EvalResult | float) -> None:
        """Report the result of evaluating ``arch``."""
        if isinstance(result, EvalResult):
            acc, fidelity = float(result.acc), result.fidelity
        else:
            acc, fidelity = float(result), None
        self.n_told += 1
        self.seen[arch] = acc
        if acc > self.best_acc:
            self.best_acc, self.best_arch = acc, arch
        self._observe(arch, acc, fidelity)

    def _observe(self, arch: Arch, acc: float, fidelity: float | None) -> None:  # noqa: B027 - optional hook
        """Learn from one result (after the base bookkeeping)."""

    # ------------------------------------------------------------------ helpers
    def _unseen_sample(self, tries: int = 64) -> Arch:
        """A uniform architecture not evaluated yet (any, once nearly everything was seen)."""
        a = self.cache.sample(self.rng)
        for _ in range(tries):
            if a not in self.seen:
                return a
            a = self.cache.sample(self.rng)
        return a

    # ------------------------------------------------------------------ state and views
    def options(self) -> dict[str, Any]:
        """Constructor options (plain data) so the strategy can be rebuilt."""
        return dict(self._options)

    def state_dict(self) -> dict[str, Any]:
        state = {"rng": copy.deepcopy(self.rng.bit_generator.state), "fidelity": self.fidelity,
                 "n_told": self.n_told, "best_arch": self.best_arch, "best_acc": self.best_acc,
                 "seen": dict(self.seen)}
        for key in self._state_keys:
            state[key] = copy.deepcopy(getattr(self, key))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.fidelity = state["fidelity"]
        self.n_told = int(state["n_told"])
        self.best_arch, self.best_acc = state["best_arch"], float(state["best_acc"])
        self.seen = dict(state["seen"])
        for key in self._state_keys:
            setattr(self, key, copy.deepcopy(state[key]))

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the live views (subclasses add their own fields)."""
        return {"strategy": self.name, "seed": self.seed, "n_told": self.n_told,
                "best_arch": str(self.best_arch) if self.best_arch is not None else None,
                "best_acc": float(self.best_acc) if self.n_told else None}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.space.name}, seed {self.seed}, {self.n_told} told>"
