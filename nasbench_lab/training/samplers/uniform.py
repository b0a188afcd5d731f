"""Uniform single-path sampling (SPOS, thesis §3.3.1) and strict fairness (FairNAS, §5.2.2)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.training.samplers.base import Sampler


class UniformSampler(Sampler):
    """a ~ U(S): every architecture equally likely (uniform over leaves, also for constrained spaces)."""

    name = "uniform"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.counts: Counter[str] = Counter()

    def sample(self) -> Arch:
        return self.space.sample(self.rng)

    def observe(self, arch: Arch, reward: float) -> None:
        super().observe(arch, reward)
        self.counts[str(arch)] += 1

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "counts": dict(self.counts)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.counts = Counter(state["counts"])


class FairSampler(UniformSampler):
    """Strict fairness: within each window every choice of every level is trained equally often.

    For a product space with ``m`` options per level, a window is ``m`` steps: each level draws an
    independent random permutation of its options and step ``j`` of the window uses the ``j``-th
    entry of every permutation. Constrained spaces (pooling) are not products, so there a window
    is one random permutation of *all* architectures: every architecture, hence every choice,
    appears equally often per window.
    """

    name = "fair"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.product = bool(getattr(space, "product_space", False)) and len({len(s) for s in space.level_sizes}) == 1
        self.window: list[tuple[int, ...]] = []

    def _new_window(self) -> list[tuple[int, ...]]:
        if self.product:
            perms = [self.rng.permutation(np.asarray(opts)) for opts in self.space.level_sizes]
            return [tuple(int(p[j]) for p in perms) for j in range(len(perms[0]))]
        archs = self.space.enumerate()
        return [archs[i].genes for i in self.rng.permutation(len(archs))]

    def sample(self) -> Arch:
        if not self.window:
            self.window = self._new_window()
        return self.space.arch(self.window.pop(0))

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "window_left": len(self.window)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "window": [list(g) for g in self.window]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.window = [tuple(g) for g in state["window"]]
