"""The one-shot Sampler contract (DESIGN.md, "Sampler").

A sampler chooses the next architecture and learns from the reward; it knows nothing about the
training loop. Methods that need the supernet at a phase boundary (build a tree after warm-up,
estimate densities) do it in ``before_step(trainer)``, which the Trainer calls before every
``sample()``; the trainer exposes what they need (fixed validation batch, outputs, gradients).

Budgets (issue 17; thesis §3.5.4: "we use FLOPS reduction by defining a budget for our search
... we sample only within a certain range of target budget ([0.99, 1] × budget)"). Every sampler takes ``budget`` (a
:class:`~nasbench_lab.spaces.budget.Budget`, or its string/dict spec) and only ever returns
architectures inside it. Instead of discarding, each sampler draws inside the band directly, so
nothing is thrown away and nothing can starve: uniform draws are uniform over the band
(:meth:`uniform`), level-by-level choices are made among the options that can still reach the
band (:meth:`valid_options`, :meth:`descend`), and methods over an enumeration use the in-band
architectures only (:meth:`in_band_archs`). A band that holds the whole space changes nothing:
the same seed gives the same draws as without a budget.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.budget import Budget, BudgetedSpace

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

    from nasbench_lab.training.trainer import Trainer

log = logging.getLogger("nasbench_lab.training.samplers")


class Selection(list):
    """A method's final choice (:meth:`Sampler.select`): architectures, best first, as a list.

    ``note`` says why it holds fewer than the ``asked`` number (None when it holds them all), so
    a caller never mistakes "the method can give only 2" for "the method chose 2".
    """

    def __init__(self, archs: Iterable[Arch] = (), asked: int | None = None, note: str | None = None) -> None:
        super().__init__(archs)
        self.asked = asked
        self.note = note

    def __repr__(self) -> str:
        extra = f", note={self.note!r}" if self.note else ""
        return f"Selection({list.__repr__(self)}, asked={self.asked}{extra})"


class Sampler(ABC):
    """Base class. Subclasses set ``name`` and implement ``sample``; the rest has defaults."""

    name: str = ""
    #: paths whose gradients the Trainer sums into one optimizer update (FairNAS: m, one per
    #: option of a choice block); 1, the default, is one update per sampled path
    paths_per_update: int = 1

    def __init__(self, space: SearchSpace, seed: int = 0, budget: str | dict | Budget | None = None,
                 **options: Any) -> None:
        if options:
            raise TypeError(f"sampler {self.name!r}: unknown options {sorted(options)}")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.steps = 0  # number of observe() calls
        parsed = Budget.parse(budget)  # a malformed spec: ValueError naming "budget"
        #: the space seen through the budget (None: no budget); BudgetError when the band is empty
        self.band: BudgetedSpace | None = None if parsed is None else BudgetedSpace(space, parsed)

    @classmethod
    def weight_sets(cls, options: dict[str, Any] | None = None) -> int:
        """How many separate supernets (weight sets) the sampler trains with these options: 1,
        except for a mixture of supernets (its ``models``). Budget rules that give each weight
        set its own steps read it (:func:`~nasbench_lab.training.samplers.compare.budget_steps`)."""
        return 1

    # ------------------------------------------------------------------ warnings
    def warn(self, rule: str, message: str, **data: Any) -> None:
        """Report something the user must know about this run (e.g. IPF stopped at its cap):
        logged now (logger ``nasbench_lab.training.samplers``) and queued for the Trainer, which
        emits it as a ``"warning"`` event after the step (:meth:`pop_warnings`)."""
        log.warning("%s: %s", self.name, message)
        self.__dict__.setdefault("_warnings", []).append({"rule": rule, "message": message, **data})

    def pop_warnings(self) -> list[dict[str, Any]]:
        """The warnings since the last call (and forget them)."""
        return self.__dict__.pop("_warnings", None) or []

    # ------------------------------------------------------------------ the budget, for every sampler
    @property
    def constrained(self) -> bool:
        """A budget that leaves some architectures out."""
        return self.band is not None and not self.band.covers_all

    def uniform(self, rng: np.random.Generator | None = None) -> Arch:
        """One architecture uniformly at random inside the budget (the whole space without one)."""
        rng = self.rng if rng is None else rng
        return self.band.sample(rng) if self.constrained else self.space.sample(rng)

    def valid_options(self, prefix: tuple[int, ...]) -> list[int]:
        """Options at level ``len(prefix)``: valid in the space and able to reach the budget.
        Empty at a dead end (:meth:`BudgetedSpace.feasible_options`): start the descent again."""
        if self.constrained:
            return self.band.feasible_options(prefix)
        return [int(g) for g in self.space.level_options(prefix)]

    def descend(self, pick: Any) -> tuple[int, ...]:
        """Genes chosen level by level by ``pick(prefix, options)`` among :meth:`valid_options`
        (a dead end restarts the descent; without a budget there is none)."""
        if self.constrained:
            return self.band.descend(pick)
        prefix: tuple[int, ...] = ()
        while len(prefix) < self.space.num_levels:
            prefix += (int(pick(prefix, [int(g) for g in self.space.level_options(prefix)])),)
        return prefix

    def in_band_archs(self) -> list[Arch]:
        """The architectures of a numerable space inside the budget, in ``space.enumerate()`` order."""
        archs = self.space.enumerate()
        if not self.constrained:
            return archs
        keep = self.band.mask(np.array([a.genes for a in archs], dtype=np.int64))
        return [a for a, k in zip(archs, keep) if k]

    def budget_spec(self) -> dict[str, Any] | None:
        return None if self.band is None else self.band.budget.to_dict()

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
        """The method's final choice, ``k`` distinct architectures best first; a
        :class:`Selection` whose ``note`` says why when fewer exist (default: none, the ranking
        picks the best estimate)."""
        return Selection([], k, f"{self.name!r} has no final-choice rule of its own: rank the supernet instead")

    def options(self) -> dict[str, Any]:
        """The constructor options, for the run config (so a run can be rebuilt)."""
        return {}

    def snapshot(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings) for the sampler's live view."""
        snap: dict[str, Any] = {"name": self.name, "steps": self.steps}
        if self.band is not None:
            snap["budget"] = self.budget_spec()
        return snap

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.steps = int(state["steps"])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.space.name}>"
