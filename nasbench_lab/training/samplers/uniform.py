"""Uniform single-path sampling (SPOS, thesis §3.3.1) and strict fairness (FairNAS, §5.2.2)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.training.samplers.base import Sampler
from nasbench_lab.training.samplers.common import current_genes, stale_state


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
    """Strict fairness (FairNAS, §5.2.2): within each window every choice of a decision is trained
    equally often.

    The decisions are cut into *blocks* whose joint options do not depend on earlier blocks;
    each block keeps its own queue, a random permutation of all its joint options, and every
    step takes the next entry of every queue (a block's window is its number of options):

    - product spaces (NB-201, NB-Macro): one block per level; with ``m`` options everywhere,
      step ``j`` of a window uses the ``j``-th entry of every level's permutation (FairNAS).
    - constrained numerable spaces (pooling): one block, the whole architecture, so a window is
      a permutation of all architectures (every architecture, hence every choice, once).
    - other spaces name their blocks (``space.decision_blocks()``). DARTS: one block per
      intermediate node (its two inputs and two ops), so within a node's window every pair of
      its input edges with every pair of ops appears once: per-edge fairness, each (edge, op) of
      the node trained equally often (FairNAS's "every operation of every choice block once",
      with the node as the choice block since its two edges are chosen together).
    A space that is none of these gets a clear error.
    """

    name = "fair"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.blocks = self._blocks(space)
        self.queues: list[list[tuple[int, ...]]] = [[] for _ in self.blocks]

    @staticmethod
    def _blocks(space: SearchSpace) -> list[tuple[int, int]]:
        if getattr(space, "product_space", False):
            return [(level, level + 1) for level in range(space.num_levels)]
        if space.numerable:
            return [(0, space.num_levels)]
        named = getattr(space, "decision_blocks", None)
        if named is None:
            raise ValueError(f"fair: space {space.name!r} is neither a product of independent decisions nor "
                             f"small enough to enumerate ({space.size:.3g} architectures), and names no "
                             f"decision blocks (space.decision_blocks()); use 'uniform' there")
        return [(int(lo), int(hi)) for lo, hi in named()]

    def _options(self, prefix: tuple[int, ...], hi: int) -> list[tuple[int, ...]]:
        """Every joint option of the levels ``len(prefix) .. hi - 1`` after ``prefix``."""
        if not prefix and hi == self.space.num_levels:
            return [a.genes for a in self.space.enumerate()]  # the space's own order
        out: list[tuple[int, ...]] = []
        stack: list[tuple[int, ...]] = [()]
        lo = len(prefix)
        while stack:
            part = stack.pop()
            if lo + len(part) == hi:
                out.append(part)
                continue
            for g in reversed(list(self.space.level_options(prefix + part))):
                stack.append((*part, int(g)))
        return out

    def sample(self) -> Arch:
        genes: tuple[int, ...] = ()
        for b, (_, hi) in enumerate(self.blocks):
            if not self.queues[b]:
                opts = self._options(genes, hi)
                self.queues[b] = [opts[i] for i in self.rng.permutation(len(opts))]
            genes += self.queues[b].pop(0)
        return self.space.arch(genes)

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "window_left": min(len(q) for q in self.queues)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "queues": [[list(g) for g in q] for q in self.queues]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "queues" in state:
            self.queues = [[tuple(int(v) for v in g) for g in q] for q in state["queues"]]
            if len(self.queues) != len(self.blocks):
                raise stale_state(self.space, self.name, f"window ({len(self.queues)} decision blocks, the "
                                                         f"space has {len(self.blocks)})")
            return
        # a checkpoint of the single-window version: full architectures, in window order
        window = [current_genes(self.space, g) for g in state["window"]]
        self.queues = [[tuple(g[lo:hi]) for g in window] for lo, hi in self.blocks]
