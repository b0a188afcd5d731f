"""MCTS sampling for supernet training (thesis ch. 3-4): default, regularised, learned and iterative trees.

Every step walks the tree from the root to a leaf (an architecture), choosing among siblings with
Boltzmann over UCT (eq 3.2: ``p(i) ∝ exp(R(i)/T)``; eq 3.3: ``R(i) = C(i) + lambda *
sqrt(log n(parent)/n(i))``), trains that path, and back-propagates the validation-minibatch
accuracy along it (eq 3.4: ``C(i) = beta*C(i) + (1-beta)*acc``). ``T`` is annealed linearly. The
final architecture is read from the tree without exploration (``lambda = 0``).

Phases (App. I §1.1: "roughly 40/25/35 for uniform sampling / MCTS warm-up / MCTS sampling"):
``warmup`` (uniform sampling, supernet pre-training, no tree statistics), ``uct_warmup`` (uniform
sampling while the tree collects statistics), then MCTS sampling with ``T`` annealed from
``t_start`` to ``t_end`` (pooling: 0.02 -> 0.0025, App. I).

- ``mcts``: the default tree (levels = the space's decisions, branches = options; §3.3.4). On the
  pooling spaces a level is one block's binary choice, pool or identity (§3.5: "each layer of
  CNN is considered as a level of tree, with operations providing the branching").
- ``mcts-reg``: plus Su et al.'s node communication, soft: every reward also updates one EMA
  ``G`` per (level, option) shared by all equivalent nodes (on pooling, the same block and the
  same choice), and UCT reads ``(1 - w) C(i) + w G`` (``reg_weight`` w, default ``REG_WEIGHT``;
  ``SearchTree.regularize`` says why a blend). ``w = 1`` is the hard tie an earlier version
  applied by default, which made every equivalent node's value identical and the pick worse than
  plain ``mcts`` (the opposite of Table 3.1).
- ``mcts-learned``: Alg 3.1. After the uniform warm-up, the outputs of every architecture on the
  fixed validation batch (or another representation), pairwise distances, agglomerative
  clustering -> a binary tree whose leaves are architectures; then MCTS on it, with a supernet
  that starts again from fresh weights (line 24; ``fresh_weights=False`` keeps the warm-up ones).
- ``mcts-iterative``: Alg 4.1. After the warm-up, ``iterations`` rounds of: rank every
  architecture by its supernet accuracy on ``rank_batches`` validation minibatches, build a binary
  tree from the ranking (§4.3.3; by default the ranking halved recursively, as the authors' code
  does), reset the node statistics and run MCTS on it.

Final choice (``select``), exploration off (``lambda = 0``): ``k = 1`` is the most probable path
(App. I §1.1, pooling: "we only consider nodes with the maximum probabilities"); ``k > 1``
samples ``k`` distinct architectures with ``lambda = 0`` (Alg 3.1's output, §3.4: "we sample k
architectures without exploration and rank them based on their performance on validation
dataset"), without replacement so that a nearly deterministic final policy still gives ``k``,
ranked by validation accuracy when a trainer is given.

Learned and iterative trees need every architecture (numerable spaces); the default tree expands
lazily on larger spaces.

Budgets (issue 17): the default tree only has children that can still reach the band
(``SearchTree.default(options=...)``), learned and rank trees are built over the in-band
architectures only, and the uniform phases draw uniformly inside the band; so every walk ends on
an in-band leaf, with no rejection that could starve the tree.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.budget import Budget
from nasbench_lab.training import representations as reps
from nasbench_lab.training.samplers.base import Sampler, Selection
from nasbench_lab.training.samplers.common import (
    Progress,
    Windows,
    check_bool,
    check_fraction,
    check_positive,
    check_unit,
    current_tree_state,
    distinct_draws,
    linear,
)
from nasbench_lab.training.samplers.tree import SearchTree

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer

_SNAPSHOT_NODES = 800  # snapshots are stored many times per run: the top of big trees
#: ``mcts-reg``'s default node-communication weight w (tree.SearchTree.regularize): chosen by the
#: simulation in tests/test_samplers_fidelity.py (noisy table rewards, several seeds)
REG_WEIGHT = 0.3


class MCTSSampler(Sampler):
    """MCTS on the default tree (Su et al.'s layer-by-layer factorisation)."""

    name = "mcts"
    regularized = False

    def __init__(self, space: SearchSpace, seed: int = 0, beta: float = 0.95, lam: float = 0.5,
                 t_start: float = 0.02, t_end: float = 0.0025, warmup: float = 0.4,
                 uct_warmup: float = 0.25, total_steps: int | None = None,
                 reg_beta: float | None = None, reg_weight: float = REG_WEIGHT,
                 budget: str | dict | Budget | None = None) -> None:
        super().__init__(space, seed, budget=budget)
        self.beta = check_unit("beta", beta, "0.95")
        self.lam = float(lam)
        if self.lam < 0:
            raise ValueError(f"lam: expected the UCT exploration constant >= 0, got {lam!r} (e.g. lam=0.5)")
        self.t_start = check_positive("t_start", t_start, "0.02")
        self.t_end = check_positive("t_end", t_end, "0.0025")
        self.warmup = check_fraction("warmup", warmup)
        self.uct_warmup = check_fraction("uct_warmup", uct_warmup)
        if self.warmup + self.uct_warmup >= 1.0:
            raise ValueError(f"warmup + uct_warmup: expected < 1 so that MCTS samples at all, got "
                             f"{self.warmup} + {self.uct_warmup} (e.g. warmup=0.4, uct_warmup=0.25)")
        self.reg_beta = self.beta if reg_beta is None else check_unit("reg_beta", reg_beta, "0.95")
        self.reg_weight = float(reg_weight)
        if not 0.0 <= self.reg_weight <= 1.0:
            raise ValueError(f"reg_weight: expected the node-communication weight in [0, 1] (0 = off, 1 = every "
                             f"equivalent node the same value), got {reg_weight!r} (e.g. reg_weight={REG_WEIGHT})")
        self.progress = Progress(total_steps)
        self.windows = Windows()
        self.counts: Counter[str] = Counter()
        self.tree: SearchTree | None = self._initial_tree()

    # ------------------------------------------------------------------ phases and schedule
    def _initial_tree(self) -> SearchTree | None:
        tree = SearchTree.default(self.space, options=self._tree_options)
        tree.reg_weight = self.reg_weight if self.regularized else 0.0
        return tree

    @property
    def _tree_options(self) -> Any:
        """A default tree's branches: the options that can still reach the budget (if any)."""
        return self.valid_options if self.constrained else None

    def phase(self) -> str:
        f = self.progress.frac()
        if f < self.warmup:
            return "warm-up"
        if f < self.warmup + self.uct_warmup or self.tree is None:
            return "uct warm-up"
        return "mcts"

    def _mcts_frac(self) -> float:
        start = self.warmup + self.uct_warmup
        return (self.progress.frac() - start) / max(1e-12, 1.0 - start)

    @property
    def temperature(self) -> float:
        """T of eq 3.2, linear from ``t_start`` to ``t_end`` over the MCTS phase."""
        return linear(self.t_start, self.t_end, self._mcts_frac())

    def before_step(self, trainer: Trainer) -> None:
        self.progress.update(trainer)

    # ------------------------------------------------------------------ sampling
    def sample(self) -> Arch:
        if self.tree is None or self.phase() != "mcts":
            return self.uniform()
        path = self.tree.descend(self.rng, self.temperature, self.lam)
        return self.space.arch(self.tree.leaf[path[-1]])

    def observe(self, arch: Arch, reward: float) -> None:
        if self.tree is not None and self.phase() != "warm-up":
            path = self.tree.path_to(arch.genes)
            self.tree.update(path, reward, self.beta)
            if self.regularized:
                self.tree.regularize(path, reward, self.reg_beta)
        super().observe(arch, reward)
        self.progress.observed(self.steps)
        self.counts[str(arch)] += 1
        self.windows.add(str(arch), self.steps, self.progress.total)

    def select(self, trainer: Trainer | None = None, k: int = 1) -> Selection:
        """Final choice with ``lambda = 0``: ``k = 1``, the most probable path; ``k > 1``, ``k``
        distinct architectures sampled without exploration, ranked by validation accuracy with a
        trainer, else most probable first.

        §3.4: "we sample k architectures without exploration and rank them based on their
        performance on validation dataset". Drawing with eq 3.2 (``lambda = 0``) until ``k``
        differ is sampling ``k`` leaves without replacement from the policy's leaf distribution
        (:meth:`SearchTree.leaf_log_probabilities`); we draw that exactly, with Gumbel-top-k
        (:func:`~nasbench_lab.training.samplers.common.distinct_draws`), so a policy that is
        almost deterministic at the final temperature still yields ``k`` architectures: after
        the mode, the next most probable ones (pooling, reward 0.9 minus 0.1 per gene away from
        [4,3,3], T = 0.0025: the runner-up has log-probability -65, so repeated draws, 600 of
        them before, returned the mode alone). The policy reads the tree's statistics and never explores, so it
        reaches only leaves the tree has visited: fewer than ``k`` exist when fewer were visited
        (or fewer architectures fit the space and budget); the :class:`Selection`'s ``note`` says
        which.
        """
        k = int(k)
        if k < 1:
            raise ValueError(f"k: expected a positive number of architectures, got {k!r} (e.g. k=3)")
        tree = self.tree
        if tree is None or tree.n[tree.root] == 0:
            return Selection([], k, f"{self.name}: the tree has no statistics yet (no MCTS step observed)")
        if k == 1:
            return Selection([self.space.arch(tree.leaf[tree.descend(self.rng, self.t_end, 0.0, greedy=True)[-1]])], k)
        logp = tree.leaf_log_probabilities(self.temperature, 0.0)
        leaves = list(logp)
        lp = np.array([logp[g] for g in leaves])
        rng = np.random.default_rng([self.seed, self.steps, k])  # a stream of its own: sampling is unchanged
        chosen = sorted(distinct_draws(lp, k, rng), key=lambda i: -lp[i])  # most probable first
        out = [self.space.arch(leaves[i]) for i in chosen]
        if trainer is not None and len(out) > 1:
            out.sort(key=lambda a: -trainer.evaluate(a))
        note = None
        if len(out) < k:
            exist = len(self.in_band_archs()) if self.space.numerable else None
            if exist is not None and exist < k:
                where = "inside the budget" if self.constrained else "in the space"
                note = f"only {exist} architectures exist {where}; the tree visited {len(out)} of them"
            else:
                note = (f"the tree visited only {len(out)} architectures; lambda = 0 reads the tree's statistics "
                        f"and does not explore unvisited leaves (train longer, or rank the supernet)")
        return Selection(out, k, note)

    def final_samples(self, max_draws: int, distinct: int | None = None) -> list[tuple[int, ...]]:
        """Leaves drawn with eq 3.2 at the current temperature and ``lambda = 0`` (children never
        visited are left out), until ``distinct`` different ones or ``max_draws`` draws. A
        generator of its own (seeded by the run's seed and step) keeps the sampler's stream.
        (:meth:`select` takes ``k`` distinct leaves from the same law without repeated draws.)"""
        if self.tree is None or self.tree.n[self.tree.root] == 0:
            return []
        rng = np.random.default_rng([self.seed, self.steps, int(max_draws)])
        out: list[tuple[int, ...]] = []
        seen: set[tuple[int, ...]] = set()
        for _ in range(int(max_draws)):
            g = self.tree.leaf[self.tree.descend(rng, self.temperature, 0.0, visited_only=True)[-1]]
            out.append(g)
            seen.add(g)
            if distinct is not None and len(seen) >= distinct:
                break
        return out

    # ------------------------------------------------------------------ views and state
    def options(self) -> dict[str, Any]:
        return {"beta": self.beta, "lam": self.lam, "t_start": self.t_start, "t_end": self.t_end,
                "warmup": self.warmup, "uct_warmup": self.uct_warmup, "reg_beta": self.reg_beta,
                **({"reg_weight": self.reg_weight} if self.regularized else {})}

    def snapshot(self) -> dict[str, Any]:
        tree = self.tree
        nodes = tree.table(self.lam, _SNAPSHOT_NODES, self.space.format) if tree is not None else []
        greedy = None
        if tree is not None and tree.n[tree.root] > 0:
            path = [tree.root]
            while not tree.is_leaf(path[-1]) and tree.children[path[-1]]:
                ch, p = tree.child_probabilities(path[-1], self.t_end, 0.0, visited_only=True)
                path.append(ch[int(np.argmax(p))])
            greedy = self.space.format(tree.leaf[path[-1]]) if tree.is_leaf(path[-1]) else None
        return {**super().snapshot(), "panel": "nasbench_lab.viz.mcts:mcts_panel",
                "tree_kind": None if tree is None else tree.kind, "nodes": nodes,
                "complete": tree is not None and len(nodes) == len(tree),
                "phase": self.phase(), "temperature": self.temperature, "lam": self.lam,
                "selected": greedy, "counts": dict(self.counts.most_common(200)),
                "windows": self.windows.data()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "progress": self.progress.state_dict(),
                "windows": self.windows.state_dict(), "counts": dict(self.counts),
                "tree": None if self.tree is None else self.tree.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.progress.load_state_dict(state["progress"])
        self.windows.load_state_dict(state["windows"])
        self.counts = Counter(state["counts"])
        self.tree = None if state["tree"] is None else SearchTree.from_state(
            current_tree_state(self.space, state["tree"], self.name), self.space, self._tree_options)
        if self.tree is not None and self.regularized:
            self.tree.reg_weight = self.reg_weight


class RegularizedMCTSSampler(MCTSSampler):
    """Default tree + Su et al.'s node communication (equivalent nodes share EMA updates)."""

    name = "mcts-reg"
    regularized = True


def _need_numerable(space: SearchSpace, name: str) -> None:
    if not space.numerable:
        raise ValueError(f"{name}: space {space.name!r} has {space.size:.3g} architectures; a learned tree "
                         f"needs every architecture as a leaf (numerable spaces such as 'pooling', 'nbmacro', "
                         f"'nb201'); use 'mcts' (default tree) for larger spaces")


class LearnedTreeMCTSSampler(MCTSSampler):
    """Alg 3.1: uniform warm-up, then a binary tree from agglomerative clustering of outputs.

    Two sets of weights, as Alg 3.1 has them: the warm-up supernet ``w_p`` (lines 3-6) gives the
    outputs, distances and tree (lines 8-12); the search supernet ``w`` is "initialized randomly"
    (its input list) and trained from there with MCTS (line 24). At the end of the warm-up the
    Trainer's supernet is therefore re-initialised, with a fresh optimizer state and the
    learning-rate schedule restarted over the remaining steps (:meth:`Trainer.reinitialize`);
    ``fresh_weights=False`` keeps training the warm-up weights instead.
    """

    name = "mcts-learned"

    def __init__(self, space: SearchSpace, seed: int = 0, representation: str = "functional",
                 batch_size: int = 64, linkage: str = "average", gamma: float | None = None,
                 layers: list[str] | None = None, fresh_weights: bool = True, **options: Any) -> None:
        _need_numerable(space, self.name)
        self.fresh_weights = check_bool("fresh_weights", fresh_weights)
        self.representation = reps.check_kind(representation)
        if linkage not in ("average", "complete", "single", "weighted"):
            raise ValueError(f"linkage: expected 'average', 'complete', 'single' or 'weighted' (distance-matrix "
                             f"linkages), got {linkage!r}")
        self.linkage = linkage
        self.batch_size = int(batch_size)
        self.gamma = gamma
        self.layers = layers
        super().__init__(space, seed, **options)

    def _initial_tree(self) -> SearchTree | None:
        return None  # built at the end of the warm-up, from the supernet

    def before_step(self, trainer: Trainer) -> None:
        super().before_step(trainer)
        if self.tree is None and self.progress.frac() >= self.warmup:
            self.build_tree(trainer)
            if self.fresh_weights:
                trainer.reinitialize()  # Alg 3.1 line 24: the search supernet w starts afresh

    def build_tree(self, trainer: Trainer) -> SearchTree:
        """Representations of every architecture -> distances -> agglomerative clustering."""
        archs = self.in_band_archs()
        r = reps.compute(trainer, archs, self.representation, batch_size=self.batch_size,
                         gamma=self.gamma, layers=self.layers, seed=self.seed)
        return self.build_tree_from_distances(r.distances())

    def build_tree_from_distances(self, D: np.ndarray) -> SearchTree:
        self.tree = SearchTree.from_distances(D, self.in_band_archs(), self.linkage)
        return self.tree

    def options(self) -> dict[str, Any]:
        return {**super().options(), "representation": self.representation, "batch_size": self.batch_size,
                "linkage": self.linkage, "gamma": self.gamma, "layers": self.layers,
                "fresh_weights": self.fresh_weights}


class IterativeMCTSSampler(MCTSSampler):
    """Alg 4.1: rounds of MCTS on a tree rebuilt from the supernet's ranking.

    The tree of each round halves the supernet's ranking recursively (``merge="balanced"``,
    default, as the authors' code does); ``merge="greedy"`` is §4.3.3's sentence read literally
    (merge the two nodes of lowest average rank, repeatedly: a chain that starves its best
    leaves, see :meth:`SearchTree.from_scores`).

    Weights across rounds. Fig 4.1's caption says "at each iteration, the tree structure T* is
    provided, and a new supernet S is trained", which could mean fresh weights every round; but
    Alg 4.1 initialises S once (line 3, S <- S_init, the uniformly trained supernet of §4.3.1)
    and only re-initialises the tree probabilities per round (line 5), and §4.4.2 says each extra
    round "slightly" increases the total training steps, which a from-scratch supernet per round
    would not allow. We follow Alg 4.1: the supernet keeps training across rounds
    (``fresh_weights=False``, default); ``fresh_weights=True`` re-initialises it (and restarts the
    learning-rate schedule) after each ranking, the literal reading of Fig 4.1.
    """

    name = "mcts-iterative"

    def __init__(self, space: SearchSpace, seed: int = 0, iterations: int = 3, rank_batches: int = 3,
                 merge: str = "balanced", warmup: float = 0.4, uct_warmup: float = 0.0,
                 fresh_weights: bool = False, **options: Any) -> None:
        _need_numerable(space, self.name)
        if int(iterations) < 1:
            raise ValueError(f"iterations: expected a positive number of MCTS rounds, got {iterations!r} (e.g. 3)")
        if int(rank_batches) < 1:
            raise ValueError(f"rank_batches: expected a positive number of validation minibatches, got "
                             f"{rank_batches!r} (e.g. 3)")
        if merge not in ("balanced", "greedy"):
            raise ValueError(f"merge: expected 'balanced' or 'greedy', got {merge!r}")
        self.iterations = int(iterations)
        self.rank_batches = int(rank_batches)
        self.merge = merge
        self.fresh_weights = check_bool("fresh_weights", fresh_weights)
        self.iteration = 0  # trees built so far
        self.scores: list[float] = []
        super().__init__(space, seed, warmup=warmup, uct_warmup=uct_warmup, **options)

    def _initial_tree(self) -> SearchTree | None:
        return None

    def _segment(self) -> int:
        """Index of the MCTS round the run is in (-1 during the warm-up)."""
        f = self.progress.frac()
        if f < self.warmup:
            return -1
        return min(self.iterations - 1, int((f - self.warmup) / ((1 - self.warmup) / self.iterations)))

    def _mcts_frac(self) -> float:
        # T is annealed within each round (the probabilities are re-initialised with each tree)
        seg = max(0, self._segment())
        length = (1 - self.warmup) / self.iterations
        start = self.warmup + seg * length + self.uct_warmup * length
        return (self.progress.frac() - start) / max(1e-12, (1 - self.uct_warmup) * length)

    def phase(self) -> str:
        seg = self._segment()
        if seg < 0:
            return "warm-up"
        length = (1 - self.warmup) / self.iterations
        if self.progress.frac() < self.warmup + (seg + self.uct_warmup) * length or self.tree is None:
            return "uct warm-up"
        return "mcts"

    def before_step(self, trainer: Trainer) -> None:
        super().before_step(trainer)
        if self._segment() + 1 > self.iteration:
            self.rebuild(trainer)

    @torch.no_grad()
    def rank_scores(self, trainer: Trainer) -> np.ndarray:
        """The task's metric (accuracy, mIoU) of every (in-band) architecture on the first
        ``rank_batches`` validation minibatches."""
        bs = trainer.cfg.val_batch_size
        x, y = trainer.fixed_val_batch(bs * self.rank_batches)
        scores = []
        for a in self.in_band_archs():
            stats = sum(trainer.task.stats(trainer.outputs(a, x[lo:lo + bs]), y[lo:lo + bs])
                        for lo in range(0, x.shape[0], bs))
            scores.append(float(trainer.task.score(stats)))
        return np.asarray(scores)

    def rebuild(self, trainer: Trainer) -> SearchTree:
        tree = self.rebuild_from_scores(self.rank_scores(trainer))
        if self.fresh_weights:
            trainer.reinitialize()
        return tree

    def rebuild_from_scores(self, scores: np.ndarray) -> SearchTree:
        """New tree from a ranking, with fresh node statistics (Alg 4.1 lines 5 and 19)."""
        self.scores = [float(s) for s in scores]
        self.tree = SearchTree.from_scores(self.in_band_archs(), self.scores, self.merge)
        self.iteration += 1
        return self.tree

    def options(self) -> dict[str, Any]:
        return {**super().options(), "iterations": self.iterations, "rank_batches": self.rank_batches,
                "merge": self.merge, "fresh_weights": self.fresh_weights}

    def snapshot(self) -> dict[str, Any]:
        snap = {**super().snapshot(), "iteration": self.iteration, "iterations": self.iterations}
        if self.scores and len(self.scores) <= 1000:
            snap["scores"] = {str(a): s for a, s in zip(self.in_band_archs(), self.scores)}
        return snap

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "iteration": self.iteration, "scores": list(self.scores)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.iteration = int(state["iteration"])
        self.scores = [float(s) for s in state["scores"]]
