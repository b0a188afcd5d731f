"""Uniform single-path sampling (SPOS, thesis §3.3.1) and strict fairness (FairNAS, §5.2.2)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.budget import Budget
from nasbench_lab.training.samplers.base import Sampler
from nasbench_lab.training.samplers.common import current_genes, stale_state


class UniformSampler(Sampler):
    """a ~ U(S): every architecture equally likely (uniform over leaves, also for constrained spaces);
    with a budget, a ~ U(S ∩ band) (thesis §3.5.4: "we sample only within a certain range of target
    budget ([0.99, 1] × budget)"; :meth:`BudgetedSpace.sample` draws from that distribution)."""

    name = "uniform"

    def __init__(self, space: SearchSpace, seed: int = 0, budget: str | dict | Budget | None = None) -> None:
        super().__init__(space, seed, budget=budget)
        self.counts: Counter[str] = Counter()

    def sample(self) -> Arch:
        return self.uniform()

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
    """Strict fairness (FairNAS, Chu et al. 2021; thesis §5.2.2): within each window every option
    of a choice block is trained equally often.

    The decisions are cut into *blocks* whose joint options do not depend on earlier blocks;
    each block keeps its own queue, a random permutation of all its joint options, and every
    step takes the next entry of every queue (a block's window is its number of options):

    - product spaces (NB-201, NB-Macro): one block per level; with ``m`` options everywhere,
      step ``j`` of a window uses the ``j``-th entry of every level's permutation (FairNAS).
    - constrained numerable spaces (pooling): one block, the whole architecture, so a window is
      a permutation of all architectures: every *architecture* once. The layers' choices are
      then not balanced, and cannot be: every layout pools at exactly 2 of the 9 blocks, so in
      a window of the 36 layouts each block pools in 8 and keeps the resolution in 28 (72 pool
      against 252 identity over the 9 blocks). Strict fairness on pooling is over architectures.
    - other spaces name their blocks (``space.decision_blocks()``). DARTS: one block per
      intermediate node (its two inputs and two ops), so within a node's window every pair of
      its input edges with every pair of ops appears once: per-edge fairness, each (edge, op) of
      the node trained equally often (FairNAS's "every operation of every choice block once",
      with the node as the choice block since its two edges are chosen together).
    A space that is none of these gets a clear error.

    The update (``update``). FairNAS Alg. 1 trains the ``m`` models of a window on one minibatch
    and sums their gradients into one optimizer step ("accumulate gradients ... update
    parameters by the accumulated gradients"), so after each update every option of every
    choice block has contributed exactly one gradient: fairness holds at every update.
    ``update="sum"`` does that: the sampler asks the Trainer for ``paths_per_update = m`` (the
    window's length) and the Trainer sums the ``m`` paths' gradients on one minibatch into one
    step. A step of the run is still one path, so equal step budgets stay equal compute, with
    ``1/m`` as many updates, each the sum of ``m`` gradients (with the same ``lr``, ``m`` times a
    one-path step: FairNAS sums, it does not average; lower ``lr`` if the start is unstable).
    ``update="per-path"`` is one optimizer step per path, each on its own minibatch: fairness
    then holds per window only, in the order the paths were trained (our earlier behaviour).

    ``"auto"`` (default) is ``"sum"`` where FairNAS defines it: several choice blocks with the
    same number of options ``m`` and no budget that can end a window early (NB-201: m = 5,
    NB-Macro: m = 3); else ``"per-path"``. That is pooling, whose one block is the whole
    architecture (a "sum" window is all 36 layouts: 1/36 as many updates; measured on digits,
    144 steps, batch 32, lr 0.05: validation reward 0.10 with "sum", 0.93 with "per-path"),
    DARTS (node windows of 49 to 490 entries: no common m) and product spaces under a narrowing
    budget. ``"sum"`` can be asked on pooling; where it cannot hold it is an error.

    With a budget, strict fairness (every option once per window, whatever the other choices) is
    in general impossible: an option can be out of the band after some choices of the other
    blocks. Our decision, fairness among the in-band candidates:

    - the first block's window holds only entries that can reach the band (pooling: a window is
      a permutation of every in-band architecture, so strict fairness over the band holds);
    - at each step a block takes the first entry of its window that keeps the architecture able
      to reach the band (an entry that does not fit now stays in the window for a later step);
    - when no entry left in a block's window fits, that window ends early (its entries are
      dropped, counted in ``dropped``) and a new permutation starts.

    No draw is discarded and none can starve; every architecture is in the band. A band that
    holds the whole space changes nothing (the first entry always fits).
    """

    name = "fair"
    UPDATES = ("auto", "sum", "per-path")

    def __init__(self, space: SearchSpace, seed: int = 0, budget: str | dict | Budget | None = None,
                 update: str = "auto") -> None:
        super().__init__(space, seed, budget=budget)
        if update not in self.UPDATES:
            raise ValueError(f"update: expected one of {', '.join(map(repr, self.UPDATES))}, got {update!r} "
                             f"(e.g. update='sum', FairNAS's summed update of the m paths of a window)")
        self.blocks = self._blocks(space)
        self.queues: list[list[tuple[int, ...]]] = [[] for _ in self.blocks]
        self.dropped = 0  # window entries dropped because no remaining entry fitted the band
        window, why = self._window_length()
        if update == "sum" and window is None:
            raise ValueError(f"update: 'sum' adds the gradients of one window's m paths, but {why}; "
                             f"use update='per-path' (one step per path, fair per window)")
        if update == "auto":  # FairNAS's setting: several choice blocks sharing one m
            update = "sum" if window is not None and len(self.blocks) > 1 else "per-path"
        #: the update rule in force ("sum" or "per-path"; "auto" resolved)
        self.update = update
        #: FairNAS's m under "sum": the Trainer sums this many paths into one optimizer step
        self.paths_per_update = window if self.update == "sum" else 1

    def _window_length(self) -> tuple[int | None, str]:
        """The one length of every block's window (FairNAS's m), or None and why there is none."""
        if self.constrained and len(self.blocks) > 1:
            return None, "the budget can end a block's window early (windows then differ in length)"
        lengths, prefix = [], ()
        for _, hi in self.blocks:
            opts = self._options(prefix, hi)
            if self.constrained:  # one block (pooling): its window is the in-band architectures
                opts = [e for e in opts if self._fits((), e)]
            lengths.append(len(opts))
            prefix += opts[0]
        if len(set(lengths)) > 1:
            return None, (f"the windows of {self.space.name!r}'s choice blocks differ in length "
                          f"({min(lengths)} to {max(lengths)} entries)")
        return lengths[0], ""

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

    def _refill(self, b: int, genes: tuple[int, ...], hi: int) -> None:
        opts = self._options(genes, hi)
        queue = [opts[i] for i in self.rng.permutation(len(opts))]
        if self.constrained and not genes:  # the first block always starts from the empty prefix
            queue = [e for e in queue if self._fits((), e)]
        self.queues[b] = queue

    def _fits(self, prefix: tuple[int, ...], entry: tuple[int, ...]) -> bool:
        """Can ``prefix + entry`` still reach the band (exactly, when it is a whole architecture)?"""
        if len(prefix) + len(entry) == self.space.num_levels:
            return self.band.contains(prefix + entry)
        p = prefix
        for g in entry:
            if g not in self.band.feasible_options(p):
                return False
            p += (g,)
        return True

    def sample(self) -> Arch:
        if not self.constrained:
            genes: tuple[int, ...] = ()
            for b, (_, hi) in enumerate(self.blocks):
                if not self.queues[b]:
                    self._refill(b, genes, hi)
                genes += self.queues[b].pop(0)
            return self.space.arch(genes)
        while True:
            genes, taken = (), []
            for b, (_, hi) in enumerate(self.blocks):
                if not self.queues[b]:
                    self._refill(b, genes, hi)
                i = next((i for i, e in enumerate(self.queues[b]) if self._fits(genes, e)), None)
                if i is None:  # nothing left in this window fits: it ends early
                    self.dropped += len(self.queues[b])
                    self._refill(b, genes, hi)
                    i = next((i for i, e in enumerate(self.queues[b]) if self._fits(genes, e)), None)
                if i is None:  # a dead end of the earlier blocks (now remembered): put back, retry
                    for bb, e in reversed(taken):
                        self.queues[bb].insert(0, e)
                    break
                e = self.queues[b].pop(i)
                taken.append((b, e))
                genes += e
            else:
                return self.space.arch(genes)

    def options(self) -> dict[str, Any]:
        return {"update": self.update}

    def snapshot(self) -> dict[str, Any]:
        snap = {**super().snapshot(), "window_left": min(len(q) for q in self.queues), "update": self.update,
                "paths_per_update": self.paths_per_update}
        if self.band is not None:
            snap["dropped"] = self.dropped
        return snap

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "queues": [[list(g) for g in q] for q in self.queues],
                "dropped": self.dropped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "queues" in state:
            self.queues = [[tuple(int(v) for v in g) for g in q] for q in state["queues"]]
            self.dropped = int(state.get("dropped", 0))
            if len(self.queues) != len(self.blocks):
                raise stale_state(self.space, self.name, f"window ({len(self.queues)} decision blocks, the "
                                                         f"space has {len(self.blocks)})")
            return
        # a checkpoint of the single-window version: full architectures, in window order
        window = [current_genes(self.space, g) for g in state["window"]]
        self.queues = [[tuple(g[lo:hi]) for g in window] for lo, hi in self.blocks]
