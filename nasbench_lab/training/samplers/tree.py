"""Search trees for MCTS sampling (thesis §3.3.4, §3.4, §4.3): default, learned and rank trees.

A tree's leaves are architectures; an internal node is the set of architectures below it. Three
ways to build one:

- :meth:`SearchTree.default`: levels = the space's decision levels (``space.level_options``),
  branches = options (Su et al.; works for constrained spaces such as pooling). Numerable spaces
  are expanded in full; larger spaces expand a node the first time it is reached.
- :meth:`SearchTree.from_distances`: agglomerative clustering (``scipy.cluster.hierarchy``) of a
  pairwise distance matrix -> a binary tree (Alg 3.1, lines 8-12).
- :meth:`SearchTree.from_scores`: a binary tree from a ranking (Alg 4.1 line 19, §4.3.3).
  ``balanced`` (default) splits the rank-sorted list in halves, recursively (the better half is
  the first child), a tree of depth ceil(log2 n): the tree the authors' code builds
  (mehravehj/Iterative_MCTS, ``build_balanced_rank_tree``). ``greedy`` is §4.3.3 read literally:
  "a bottom-up approach then iteratively merges the two nodes (architectures or existing
  clusters) with the lowest average ranks". Merging the best two leaves makes the cluster of
  lowest average rank, which is then always merged with the next leaf in rank order, so the tree
  is a chain (caterpillar): the root splits the worst architecture from the rest, and the best
  two are the deepest pair. That chain starves its best leaves: each level halves the visits
  under UCT, so 600 MCTS steps on the 36 pooling layouts never reach the top of the ranking, and
  the final lambda=0 path stops at the deepest visited leaf (simulated with the true accuracies
  as noiseless rewards: the pick has true rank 25-32 of 36 with ``greedy``, 1-2 with
  ``balanced``; tests/test_samplers_fidelity.py). The halving is not the same tree as pairing
  adjacent ranks bottom-up whenever n is not a power of 2 (36 architectures: halving gives
  18 + 18 at the root, bottom-up pairing with the odd cluster carried up gives 32 + 4).

Budgets (issue 17): a default tree built with ``options`` (the sampler's options that can still
reach the band) has only in-band leaves: a subtree without an in-band architecture is never
created, so UCT and Boltzmann choose among feasible children only, visits land on feasible
leaves only, and nothing is rejected (no walk can starve). A node found empty only when it is
expanded (a quantised count that promised completions, see ``BudgetedSpace.feasible_options``) is
cut from its parent and the walk starts again; such a node has never been visited.

Every node keeps a visit count ``n`` and a smoothed reward ``C`` (eq 3.4). Selection is Boltzmann
over UCT among siblings (eq 3.2-3.3); a child never visited is taken first (UCT "checks each action
once"), as in the authors' code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.training.samplers.common import boltzmann, choose

Genes = tuple[int, ...]


def uct(C: np.ndarray, n: np.ndarray, n_parent: float, lam: float) -> np.ndarray:
    """Eq 3.3: ``R(i) = C(i) + lambda * sqrt(log n(parent) / n(i))`` (n(i) > 0)."""
    n = np.asarray(n, float)
    return np.asarray(C, float) + lam * np.sqrt(math.log(max(n_parent, 1.0)) / n)


class SearchTree:
    """A tree over architectures with per-node visit counts and smoothed rewards."""

    def __init__(self, kind: str, space: SearchSpace | None = None,
                 options: Callable[[Genes], Sequence[int]] | None = None) -> None:
        self.kind = kind
        self.space = space
        #: the options of a default-tree node, ``options(prefix)`` (default: ``space.level_options``)
        self.options = options
        self.parent: list[int] = []
        self.children: list[list[int] | None] = []  # None: not expanded yet (lazy default tree)
        self.depth: list[int] = []
        self.gene: list[int] = []  # default tree: the option chosen on the edge into the node
        self.leaf: list[Genes | None] = []
        self.height: list[float] = []  # merge height (learned/rank trees), for the dendrogram
        self.n: list[int] = []
        self.C: list[float] = []
        self.valued: list[bool] = []  # C holds a value (from a visit)
        self.leaf_index: dict[Genes, int] = {}
        self.equivalent: dict[tuple[int, int], list[int]] = {}  # (level, gene) -> default-tree nodes
        #: node communication (``mcts-reg``): G(level, gene), the EMA of every reward through that
        #: (level, option), and the weight w it gets in a node's value (:meth:`values`); 0 = off
        self.shared: dict[tuple[int, int], float] = {}
        self.reg_weight = 0.0
        self._prefix: list[Genes] = []  # default tree: the genes chosen down to each node

    # ------------------------------------------------------------------ construction
    def _add(self, parent: int, gene: int = -1, leaf: Genes | None = None, height: float = 0.0) -> int:
        i = len(self.parent)
        self.parent.append(parent)
        self.children.append(None)
        self.depth.append(0 if parent < 0 else self.depth[parent] + 1)
        self.gene.append(gene)
        self.leaf.append(leaf)
        self.height.append(float(height))
        self.n.append(0)
        self.C.append(0.0)
        self.valued.append(False)
        if leaf is not None:
            self.leaf_index[leaf] = i
        if gene >= 0:
            self.equivalent.setdefault((self.depth[i] - 1, gene), []).append(i)
        return i

    @classmethod
    def default(cls, space: SearchSpace, lazy: bool | None = None,
                options: Callable[[Genes], Sequence[int]] | None = None) -> SearchTree:
        """Levels = decisions, branches = ``options(prefix)`` (default: the space's options);
        ``lazy`` (default: not numerable) expands on visit."""
        tree = cls("default", space, options)
        tree._add_default(-1, (), -1)
        lazy = (not space.numerable) if lazy is None else lazy
        if not lazy:
            stack, order = [0], []
            while stack:
                node = stack.pop()
                order.append(node)
                stack.extend(tree.expand(node))
            for node in reversed(order):  # children before parents: cut internal nodes left empty
                if not tree.is_leaf(node) and not tree.children[node] and node != tree.root:
                    tree._cut(node)
        return tree

    def _cut(self, node: int) -> None:
        """Detach an internal node without leaves (a subtree with no architecture in the budget)."""
        parent = self.parent[node]
        if parent >= 0 and self.children[parent] is not None and node in self.children[parent]:
            self.children[parent].remove(node)

    def _add_default(self, parent: int, prefix: Genes, gene: int) -> int:
        done = self.space is not None and len(prefix) == self.space.num_levels
        i = self._add(parent, gene, prefix if done else None)
        self._prefix.append(prefix)
        if done:
            self.children[i] = []
        return i

    def expand(self, node: int) -> list[int]:
        """Children of ``node``, created on first use for the default tree."""
        ch = self.children[node]
        if ch is not None:
            return ch
        if self.kind != "default":  # pragma: no cover - binary trees are built whole
            raise RuntimeError("only default trees expand lazily")
        prefix = self._prefix[node]
        opts = self.options(prefix) if self.options is not None else self.space.level_options(prefix)
        self.children[node] = [self._add_default(node, prefix + (int(g),), int(g)) for g in opts]
        return self.children[node]

    @classmethod
    def from_linkage(cls, Z: np.ndarray, archs: Sequence[Arch], kind: str = "learned") -> SearchTree:
        """Binary tree of a scipy linkage matrix over ``archs`` (root first)."""
        root = hierarchy.to_tree(np.asarray(Z, float))
        tree = cls(kind)
        stack: list[tuple[Any, int]] = [(root, -1)]
        while stack:
            node, parent = stack.pop()
            if node.is_leaf():
                i = tree._add(parent, leaf=tuple(archs[node.id].genes))
                tree.children[i] = []
            else:
                i = tree._add(parent, height=node.dist)
                tree.children[i] = []
                # push right first so the left child gets the smaller id (stable drawing order)
                stack.extend([(node.right, i), (node.left, i)])
            if parent >= 0:
                tree.children[parent].append(i)
        return tree

    @classmethod
    def from_distances(cls, D: np.ndarray, archs: Sequence[Arch], method: str = "average") -> SearchTree:
        """Agglomerative clustering of the distance matrix ``D`` (Alg 3.1) -> binary tree."""
        D = np.asarray(D, float)
        if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] != len(archs):
            raise ValueError(f"D: expected a square {len(archs)}x{len(archs)} distance matrix, got shape {D.shape}")
        if len(archs) < 2:
            raise ValueError("archs: a tree needs at least 2 architectures")
        D = 0.5 * (D + D.T)
        np.fill_diagonal(D, 0.0)
        Z = hierarchy.linkage(squareform(np.maximum(D, 0.0), checks=False), method=method)
        return cls.from_linkage(Z, archs, "learned")

    @classmethod
    def from_scores(cls, archs: Sequence[Arch], scores: Sequence[float], merge: str = "balanced") -> SearchTree:
        """Binary tree from a ranking (higher score = better rank, Alg 4.1 line 19, §4.3.3):
        ``balanced`` (default, the authors' code) halves the rank-sorted list recursively;
        ``greedy`` merges the two nodes of lowest average rank until one is left (a chain)."""
        if len(archs) != len(scores) or len(archs) < 2:
            raise ValueError(f"scores: expected one score per architecture (>= 2), got {len(scores)} for {len(archs)}")
        order = [int(j) for j in np.argsort(-np.asarray(scores, float), kind="stable")]  # rank 1 first
        if merge == "balanced":
            def split(items: list[int]) -> Any:
                if len(items) == 1:
                    return items[0]
                mid = len(items) // 2
                return (split(items[:mid]), split(items[mid:]))

            nested = split(order)
        elif merge == "greedy":
            # the two current nodes with the lowest average rank are always the merged cluster so
            # far (average rank (m + 1) / 2 after m leaves) and the next leaf in rank order (m + 1)
            nested = order[0]
            for j in order[1:]:
                nested = (nested, j)
        else:
            raise ValueError(f"merge: expected 'balanced' or 'greedy', got {merge!r}")
        tree = cls("rank")
        stack: list[tuple[Any, int]] = [(nested, -1)]
        while stack:  # iterative: a greedy chain is as deep as the space is large
            item, parent = stack.pop()
            leaf = None if isinstance(item, tuple) else tuple(archs[item].genes)
            i = tree._add(parent, leaf=leaf)
            tree.children[i] = []
            if parent >= 0:
                tree.children[parent].append(i)
            if leaf is None:
                stack.extend([(item[1], i), (item[0], i)])
        for i in reversed(range(len(tree))):  # children have larger ids than their parent
            if tree.children[i]:
                tree.height[i] = 1.0 + max(tree.height[c] for c in tree.children[i])
        return tree

    # ------------------------------------------------------------------ sampling and updates
    @property
    def root(self) -> int:
        return 0

    def is_leaf(self, node: int) -> bool:
        return self.leaf[node] is not None

    def leaves(self) -> list[Genes]:
        return [g for g in self.leaf if g is not None]

    def values(self, nodes: Sequence[int], communicate: bool = True) -> np.ndarray:
        """The value UCT reads for each node: its own ``C`` (eq 3.4), or while training with node
        communication (``reg_weight`` w > 0) ``(1 - w) C(i) + w G(level, option)`` (see
        :meth:`regularize`). ``communicate=False`` (the final choice) reads ``C`` alone."""
        C = np.array([self.C[i] for i in nodes], float)
        if self.reg_weight <= 0.0 or not communicate:
            return C
        G = np.array([self.shared.get((self.depth[i] - 1, self.gene[i]), self.C[i]) for i in nodes], float)
        return (1.0 - self.reg_weight) * C + self.reg_weight * G

    def child_probabilities(self, node: int, temperature: float, lam: float,
                            visited_only: bool = False) -> tuple[list[int], np.ndarray]:
        """Children of ``node`` and their eq 3.2 probabilities; unvisited children come first."""
        ch = self.expand(node)
        n = np.array([self.n[c] for c in ch], float)
        fresh = n == 0
        if fresh.any() and not visited_only:
            return ch, fresh / fresh.sum()
        if visited_only and fresh.any():
            if fresh.all():
                return ch, np.full(len(ch), 1.0 / len(ch))
            ch = [c for c, f in zip(ch, fresh) if not f]
            n = n[~fresh]
        R = uct(self.values(ch, communicate=not visited_only), n, self.n[node], lam)
        return ch, boltzmann(R, temperature)

    def leaf_log_probabilities(self, temperature: float, lam: float = 0.0) -> dict[Genes, float]:
        """Log-probability of reaching each (expanded) leaf without exploration, children never
        visited excluded (the product of eq 3.2 along the path)."""
        from scipy.special import log_softmax

        out: dict[Genes, float] = {}
        stack = [(self.root, 0.0)]
        while stack:
            v, lp = stack.pop()
            if self.is_leaf(v):
                out[self.leaf[v]] = lp
                continue
            ch = self.children[v] or []
            seen = [c for c in ch if self.n[c] > 0]
            if not seen:
                stack.extend((c, lp - math.log(len(ch))) for c in ch)
                continue
            R = uct(self.values(seen, communicate=False), np.array([self.n[c] for c in seen]), self.n[v], lam)
            stack.extend((c, lp + float(q)) for c, q in zip(seen, log_softmax(R / temperature)))
        return out

    def descend(self, rng: np.random.Generator, temperature: float, lam: float,
                greedy: bool = False, visited_only: bool | None = None) -> list[int]:
        """Root-to-leaf path chosen by Boltzmann over UCT (or greedily, for the final choice).

        ``visited_only`` (default: ``greedy``) ignores children never visited instead of taking
        them first: a final choice reads the statistics the tree has, it does not explore.
        """
        visited_only = greedy if visited_only is None else visited_only
        path = [self.root]
        while not self.is_leaf(path[-1]):
            if not self.expand(path[-1]):  # a dead end of a budget (module docstring): cut, start again
                if path[-1] == self.root:
                    raise ValueError("the tree has no leaf: no architecture fits the budget")
                self._cut(path[-1])
                path = [self.root]
                continue
            ch, p = self.child_probabilities(path[-1], temperature, lam, visited_only=visited_only)
            path.append(ch[int(np.argmax(p))] if greedy else ch[choose(rng, p)])
        return path

    def path_to(self, genes: Genes) -> list[int]:
        """Root-to-leaf path of an architecture."""
        genes = tuple(genes)
        if self.kind == "default":
            path = [self.root]
            for g in genes:
                ch = self.expand(path[-1])
                nxt = [c for c in ch if self.gene[c] == g]
                if not nxt:
                    raise ValueError(f"architecture genes {genes} are not in the tree")
                path.append(nxt[0])
            return path
        if genes not in self.leaf_index:
            raise ValueError(f"architecture genes {genes} are not a leaf of this tree")
        path = [self.leaf_index[genes]]
        while self.parent[path[-1]] >= 0:
            path.append(self.parent[path[-1]])
        return path[::-1]

    def update(self, path: Sequence[int], reward: float, beta: float) -> None:
        """Back-propagate one reward: ``n += 1`` and eq 3.4 along the path (first visit initialises)."""
        for i in path:
            self._ema(i, reward, beta)
            self.n[i] += 1

    def _ema(self, i: int, reward: float, beta: float) -> None:
        self.C[i] = beta * self.C[i] + (1 - beta) * float(reward) if self.valued[i] else float(reward)
        self.valued[i] = True

    def regularize(self, path: Sequence[int], reward: float, beta: float) -> None:
        """Su et al.'s node communication, soft (thesis §3.3.4: independence "enforced in a soft way
        by a regularization coefficient"): each reward also updates ``G(level, option)``, one EMA
        shared by every equivalent node (same level, same option: on pooling, the same block and
        the same choice), ``G = beta G + (1 - beta) acc``. A node's own ``C`` stays its own (eq
        3.4); UCT reads ``(1 - w) C(i) + w G`` (:meth:`values`). Su et al. add ``C2 * G`` to the
        UCT score; ``C + c G = (1 + c)((1 - w) C + w G)`` with ``w = c / (1 + c)``, the same
        Boltzmann choice at temperature ``T (1 + c)``: the blend keeps rewards on the accuracy
        scale, so the annealed ``T`` of eq 3.2 means the same with and without it. ``w = 1`` is the
        hard tie (every equivalent node the same value), ``w = 0`` plain MCTS. Node communication
        is a training-stage device (Su et al.: "node communication and hierarchical node selection
        methods in the training and search stages, respectively"): it steers which paths are
        trained; the final choice (``visited_only``, ``lambda = 0``) reads each node's own ``C``."""
        if self.kind != "default":
            raise ValueError("regularize: equivalent nodes (same level, same op) exist only in the default tree")
        for i in path[1:]:
            key = (self.depth[i] - 1, self.gene[i])
            self.shared[key] = float(reward) if key not in self.shared else beta * self.shared[key] + (1 - beta) * reward

    def reset_stats(self) -> None:
        self.n = [0] * len(self.n)
        self.C = [0.0] * len(self.C)
        self.valued = [False] * len(self.valued)
        self.shared = {}

    # ------------------------------------------------------------------ state and views
    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "parent": list(self.parent),
                "children": [None if c is None else list(c) for c in self.children],
                "gene": list(self.gene), "leaf": [None if g is None else list(g) for g in self.leaf],
                "height": list(self.height), "n": list(self.n), "C": list(self.C), "valued": list(self.valued),
                "prefix": [list(p) for p in getattr(self, "_prefix", [])],
                "shared": [[k[0], k[1], v] for k, v in self.shared.items()], "reg_weight": self.reg_weight}

    @classmethod
    def from_state(cls, state: dict[str, Any], space: SearchSpace | None = None,
                   options: Callable[[Genes], Sequence[int]] | None = None) -> SearchTree:
        tree = cls(state["kind"], space, options)
        tree.parent = list(state["parent"])
        tree.children = [None if c is None else list(c) for c in state["children"]]
        tree.gene = list(state["gene"])
        tree.leaf = [None if g is None else tuple(g) for g in state["leaf"]]
        tree.height = list(state["height"])
        tree.n = [int(v) for v in state["n"]]
        tree.C = [float(v) for v in state["C"]]
        tree.valued = [bool(v) for v in state["valued"]]
        tree._prefix = [tuple(p) for p in state["prefix"]]
        tree.shared = {(int(a), int(b)): float(v) for a, b, v in state["shared"]}
        tree.reg_weight = float(state.get("reg_weight", 0.0))
        tree.depth = []
        for p in tree.parent:
            tree.depth.append(0 if p < 0 else tree.depth[p] + 1)
        tree.leaf_index = {g: i for i, g in enumerate(tree.leaf) if g is not None}
        for i, g in enumerate(tree.gene):
            if g >= 0:
                tree.equivalent.setdefault((tree.depth[i] - 1, g), []).append(i)
        return tree

    def label(self, node: int) -> str:
        if self.leaf[node] is not None and self.space is not None:
            return self.space.format(self.leaf[node])
        if self.leaf[node] is not None:
            return str(list(self.leaf[node]))
        if node == self.root:
            return "root"
        if self.kind == "default" and self.space is not None:
            level = self.depth[node] - 1
            return f"{self.space.level_name(level)}: {self.space.option_label(level, self.gene[node])}"
        return f"node {node}"

    def table(self, lam: float, max_nodes: int = 2000, format_leaf: Any = None) -> list[dict[str, Any]]:
        """Breadth-first rows (id, parent, label, depth, n, C, uct, leaf) for the views."""
        rows: list[dict[str, Any]] = []
        size = [1 if g is not None else 0 for g in self.leaf]  # leaves below each node
        for i in reversed(range(len(self.parent))):  # children have larger ids than parents
            if self.parent[i] >= 0:
                size[self.parent[i]] += size[i]
        frontier = [self.root]
        while frontier and len(rows) + len(frontier) <= max_nodes:
            nxt: list[int] = []
            for i in frontier:
                p = self.parent[i]
                u = None
                if p >= 0 and self.n[i] > 0:
                    u = float(uct(self.values([i]), [self.n[i]], self.n[p], lam)[0])
                leaf = self.leaf[i]
                rows.append({"id": i, "parent": p, "depth": self.depth[i], "n": self.n[i],
                             "C": self.C[i], "uct": u, "height": self.height[i],
                             "label": (format_leaf(leaf) if (leaf is not None and format_leaf) else
                                       f"{size[i]} archs" if (self.kind != "default" and leaf is None and i)
                                       else self.label(i)),
                             "size": size[i],
                             "leaf": None if leaf is None else (format_leaf(leaf) if format_leaf else list(leaf))})
                nxt.extend(self.children[i] or [])
            frontier = nxt
        return rows

    def __len__(self) -> int:
        return len(self.parent)
