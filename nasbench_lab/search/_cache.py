"""Fast, shared views of a search space for the ask/tell hot path.

Strategies ask thousands of architectures per second on a table, so the few space operations
they repeat (uniform sampling, the neighbour list of an architecture, the one-hot encoding) are
memoised here once per space and shared by every strategy and seed. The space stays the single
definition of what a neighbour or an encoding is; this only remembers its answers.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from nasbench_lab import spaces
from nasbench_lab.spaces import Arch, SearchSpace


class SpaceCache:
    """Memoised ``sample`` / ``neighbours`` / ``mutate`` / ``encode`` of one space."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        # Uniform over the enumeration equals space.sample() and costs one integer draw.
        self.all: tuple[Arch, ...] | None = tuple(space.enumerate()) if space.numerable else None
        self.index: dict[Arch, int] = {a: i for i, a in enumerate(self.all)} if self.all is not None else {}
        self._nbrs: dict[Arch, tuple[Arch, ...]] = {}
        self._onehot: dict[Arch, np.ndarray] = {}
        self._onehot_all: np.ndarray | None = None

    def sample(self, rng: np.random.Generator) -> Arch:
        if self.all is not None:
            return self.all[int(rng.integers(len(self.all)))]
        return self.space.sample(rng)

    def neighbours(self, arch: Arch) -> tuple[Arch, ...]:
        out = self._nbrs.get(arch)
        if out is None:
            out = self._nbrs[arch] = tuple(self.space.neighbours(arch))
        return out

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A uniformly chosen neighbour (as ``space.mutate``), or ``arch`` if it has none."""
        nbrs = self.neighbours(arch)
        return nbrs[int(rng.integers(len(nbrs)))] if nbrs else arch

    def onehot(self, arch: Arch) -> np.ndarray:
        v = self._onehot.get(arch)
        if v is None:
            v = self._onehot[arch] = self.space.encode(arch, "onehot")
        return v

    def onehots(self, archs: list[Arch] | tuple[Arch, ...]) -> np.ndarray:
        if not archs:
            return np.zeros((0, self.space.encoding_length["onehot"]), dtype=np.float32)
        return np.stack([self.onehot(a) for a in archs])

    def onehot_all(self) -> np.ndarray:
        """One-hot matrix of the whole enumeration (numerable spaces only), rows in ``all`` order."""
        if self.all is None:
            raise ValueError(f"{self.space.name}: the space is too large to encode every architecture")
        if self._onehot_all is None:
            self._onehot_all = self.onehots(self.all)
        return self._onehot_all


_CACHES: weakref.WeakKeyDictionary[SearchSpace, SpaceCache] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def space_cache(space: SearchSpace | str) -> SpaceCache:
    """The cache shared by everything searching ``space`` (one per space object)."""
    sp = spaces.get(space) if isinstance(space, str) else space
    with _LOCK:
        out = _CACHES.get(sp)
        if out is None:
            out = _CACHES[sp] = SpaceCache(sp)
    return out
