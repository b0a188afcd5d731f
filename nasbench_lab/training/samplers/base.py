"""The one-shot Sampler contract (DESIGN.md, "Sampler").

A sampler chooses the next architecture and learns from the reward; it knows nothing about the
training loop. Methods that need the supernet at a phase boundary (build a tree after warm-up,
estimate densities) do it in ``before_step(trainer)``, which the Trainer calls before every
``sample()``; the trainer exposes what they need (fixed validation batch, outputs, gradients).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from nasbench_lab.spaces import Arch, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

    from nasbench_lab.training.trainer import Trainer


class Sampler(ABC):
    """Base class. Subclasses set ``name`` and implement ``sample``; the rest has defaults."""

    name: str = ""

    def __init__(self, space: SearchSpace, seed: int = 0, **options: Any) -> None:
        if options:
            raise TypeError(f"sampler {self.name!r}: unknown options {sorted(options)}")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.steps = 0  # number of observe() calls

    @abstractmethod
    def sample(self) -> Arch:
        """The next architecture to train."""

    def observe(self, arch: Arch, reward: float) -> None:
        """Learn from the reward (validation-minibatch accuracy in [0, 1]) of ``arch``."""
        self.steps += 1

    def before_step(self, trainer: Trainer) -> None:  # noqa: B027 - an optional hook, not abstract
        """Phase hook, called by the Trainer before every ``sample()``."""

    def wrap_supernet(self, net: nn.Module) -> nn.Module:
        """Hook called by the Trainer before it builds the optimizer: a method that needs other
        weights (e.g. a mixture of supernets) returns the module that replaces ``net``."""
        return net

    def select(self, trainer: Trainer | None = None, k: int = 1) -> list[Arch]:
        """The method's final choice (default: none; the ranking picks the best estimate)."""
        return []

    def options(self) -> dict[str, Any]:
        """The constructor options, for the run config (so a run can be rebuilt)."""
        return {}

    def snapshot(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings) for the sampler's live view."""
        return {"name": self.name, "steps": self.steps}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.steps = int(state["steps"])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.space.name}>"
