"""Cheap FLOP (multiply-accumulate) counts for whole benchmark tables.

Building and running a model per architecture is far too slow for 15,625 NAS-Bench-201 cells,
so for spaces whose decisions are *separable* (each level's MACs depend only on its own choice:
NB-201 edges at a fixed stage width/resolution, NB-Macro layers at fixed channels/resolution)
the count is

    flops(genes) = flops(ref) + sum_level [ flops(ref with that level set to genes[level]) - flops(ref) ]

with ``ref`` the first option of every level. That needs ``1 + sum_level (options - 1)``
``space.flops`` calls once per space (25 for NB-201, 17 for NB-Macro) and is exact for separable
spaces; tests check it against ``space.flops`` on random architectures. Spaces that provide an
analytic count (the pooling spaces) are used directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from nasbench_lab import spaces
from nasbench_lab.spaces.base import SearchSpace


class AdditiveFlops:
    """``flops(genes) = base + sum_level table[level][gene]`` derived from a few model counts."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        levels = [list(space.level_options((0,) * i)) for i in range(space.num_levels)]
        self.ref = tuple(opts[0] for opts in levels)
        self.base = int(space.flops(space.arch(self.ref)))
        self.delta: list[dict[int, int]] = []
        for i, opts in enumerate(levels):
            row = {opts[0]: 0}
            for g in opts[1:]:
                genes = self.ref[:i] + (g,) + self.ref[i + 1:]
                row[g] = int(space.flops(space.arch(genes))) - self.base
            self.delta.append(row)

    def __call__(self, genes: Sequence[int]) -> int:
        return self.base + sum(self.delta[i][g] for i, g in enumerate(genes))

    def many(self, genes: np.ndarray) -> np.ndarray:
        """Vectorised over an (n, levels) integer array of genes."""
        out = np.full(len(genes), self.base, dtype=np.int64)
        for i, row in enumerate(self.delta):
            lut = np.zeros(max(row) + 1, dtype=np.int64)
            for g, d in row.items():
                lut[g] = d
            out += lut[genes[:, i]]
        return out


class DirectFlops:
    """The space's own (fast, analytic) count, memoised per architecture."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._memo: dict[tuple[int, ...], int] = {}

    def __call__(self, genes: Sequence[int]) -> int:
        genes = tuple(genes)
        if genes not in self._memo:
            self._memo[genes] = int(self.space.flops(self.space.arch(genes)))
        return self._memo[genes]

    def many(self, genes: np.ndarray) -> np.ndarray:
        return np.array([self(tuple(int(v) for v in g)) for g in genes], dtype=np.int64)


@cache
def flop_model(space_name: str) -> AdditiveFlops | DirectFlops:
    """The FLOP counter used for a space's benchmark costs (built once per space)."""
    space = spaces.get(space_name)
    # Product spaces (every level independent) are separable; constrained ones such as the
    # pooling layouts are not, and those provide an analytic flops() instead.
    return AdditiveFlops(space) if getattr(space, "product_space", False) else DirectFlops(space)
