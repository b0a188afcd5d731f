"""Gradient interference in a weight-sharing supernet: where two child networks pull the same
shared weight in different directions.

What it measures (one forward and one backward per child, on one batch):

- per *parameter group* (a shared operator: a candidate op of an edge or layer, or a fixed layer
  such as the stem) the gradient of each child's loss, ``g_a^(k) = dL(f_a(X; w)) / dw^(k)``;
  a group is *used* by a child when the gradient reaches it (autograd: not ``None``);
- the cosine between two children on the groups both use (Xu et al., "Analyzing and Mitigating
  Interference in Neural Architecture Search", ICML 2022, §3: the cosine similarity of a shared
  operator's gradients between child models),
  ``cos(a, b) = sum_k <g_a^(k), g_b^(k)> / sqrt(sum_k |g_a^(k)|^2 * sum_k |g_b^(k)|^2)``,
  summed over the shared groups ``k`` (``overall``), over the shared groups of one layer
  (``per layer``), or for each group alone (``op_cosine``: their mean over the shared groups,
  the paper's per-operator number);
- the cosine against the children's encoding distance (Hamming over the decisions, the paper's
  "number of different operators", Fig. 2/3), with its spread and pairs per distance;
- for product spaces (cell or layer-wise choices) the op x op matrix per decision (GM-NAS, Hu et
  al., ICLR 2022, §3.2 "gradient matching score": the cosine of the shared weights' gradients of
  two sub-supernets that differ only in the op of one edge). GM-NAS builds its sub-supernets in a
  DARTS-style relaxed supernet; here a sub-supernet is a single path drawn uniformly for the
  other decisions (the single-path supernets of this workbench), averaged over ``bases`` draws.

Cost: K children cost K forward/backward passes (never K^2); the K x K matrices of every group
come from one Gram product of the stacked gradients (``V V^T``) per group, and :func:`op_matrices`
reuses one gradient per distinct child across all decisions.

A *group* is found from the supernet's module tree: a parameter below an ``nn.ModuleDict`` key
(NB-201's edges, NAS-Bench-Macro's and MobileNet's layers) or below an index of an ``ops``
``nn.ModuleList`` (DARTS' mixed ops) belongs to that candidate op ("searched"); any other
parameter to its top-level module (``stem``, ``layers.7``, ``classifier``): the *layer*. The
weight sets of a mixture of supernets (``nets.m.``) are different groups, so children routed to
different models share nothing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab import validation as V
from nasbench_lab.spaces import Arch, SearchSpace

__all__ = ["Group", "Interference", "InterferenceMonitor", "resolution_split", "parameter_groups", "measure", "measure_trainer", "op_matrices",
           "op_matrices_trainer", "carries_weights", "spread_archs", "XU_TREND", "SCOPES"]

#: which groups the cosines compare: every shared one, only the searched candidate ops, or
#: "auto" (the searched ops where the supernet has any, else every group: the pooling space)
SCOPES = ("auto", "all", "searched")

#: the published shape to compare with (Xu et al. 2022, Fig. 2, NAS-Bench-201 on CIFAR-10): the
#: cosine of a shared operator's gradients falls as the two children differ in more operators.
#: Read off the figure (approximate; the paper publishes no table): about 0.6 at one differing
#: operator down to about 0.2 at five.
XU_TREND = {"distance": [1, 2, 3, 4, 5], "cosine": [0.6, 0.5, 0.4, 0.3, 0.2],
            "source": "Xu et al., ICML 2022, Fig. 2 (NB-201, CIFAR-10; read off the plot)"}


@dataclass(frozen=True)
class Group:
    """A shared parameter group: the parameters of one candidate op or one fixed layer."""

    name: str  # e.g. "layers.3.edges.2.nor_conv_3x3" or "stem"
    layer: str  # the top-level unit it sits in, e.g. "layers.3" (without a mixture's "nets.m.")
    searched: bool  # a candidate op of a decision (not a fixed part of every child)
    params: tuple[int, ...]  # indices into the trainable parameters of the supernet


def parameter_groups(net: nn.Module) -> list[Group]:
    """The shared parameter groups of a supernet, in the order of ``net.parameters()``."""
    modules = dict(net.named_modules())
    groups: dict[str, dict[str, Any]] = {}
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    for index, (name, _) in enumerate(trainable):
        parts = name.split(".")[:-1]  # the module path (the last part is "weight", "bias"...)
        start = 0
        # a mixture of supernets: "nets.m." selects one weight set; the layer names stay those of one supernet
        if len(parts) >= 2 and parts[0] == "nets" and isinstance(modules.get("nets"), nn.ModuleList):
            start = 2
        # the layer: the first module below the root that is not a list ("layers" -> "layers.3"); the
        # candidates of a ModuleDict layer (NAS-Bench-Macro "layers.3.MB6_K5") sit in that layer
        end = start + 1
        while end < len(parts) and isinstance(modules.get(".".join(parts[:end])), nn.ModuleList):
            end += 1
        layer = ".".join(parts[start:end]) or name
        group_end, searched = None, False
        for i in range(start, len(parts)):
            parent = modules.get(".".join(parts[:i]))
            if isinstance(parent, nn.ModuleDict) or (isinstance(parent, nn.ModuleList) and parts[i - 1] == "ops"):
                group_end, searched = i + 1, True  # the key of a candidate op: everything below is that op
                break
        gname = ".".join(parts[:group_end]) if searched else ".".join(parts[:start] + parts[start:end])
        g = groups.setdefault(gname, {"layer": layer, "searched": searched, "params": []})
        g["params"].append(index)
    return [Group(n, g["layer"], g["searched"], tuple(g["params"])) for n, g in groups.items()]


@dataclass
class Interference:
    """The measured gradients' geometry for K children (plain numpy, no tensors).

    ``dots[k]``, ``norms2[k]``: per group ``k``, the K x K dot products and the K squared norms
    of the children's gradients (NaN where a child does not use the group). Everything else is
    computed from them.
    """

    archs: list[str]
    genes: list[tuple[int, ...]]
    groups: list[Group]
    dots: np.ndarray  # (G, K, K)
    used: np.ndarray  # (G, K) bool
    distance: np.ndarray  # (K, K) int
    scope: str
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ core quantities
    @property
    def k(self) -> int:
        return len(self.archs)

    def in_scope(self) -> np.ndarray:
        """Which groups the cosines compare (``scope``)."""
        searched = np.array([g.searched for g in self.groups], bool)
        if self.scope == "searched" or (self.scope == "auto" and searched.any()):
            return searched
        return np.ones(len(self.groups), bool)

    def shared(self, mask: np.ndarray | None = None) -> np.ndarray:
        """(G, K, K): group used by both children of the pair (and in ``mask``)."""
        both = self.used[:, :, None] & self.used[:, None, :]
        m = self.in_scope() if mask is None else mask
        return both & m[:, None, None]

    def _cosine(self, mask: np.ndarray) -> np.ndarray:
        """Cosine over the groups of ``mask`` both children use (NaN where none or a zero norm)."""
        sh = self.shared(mask)
        n2 = np.diagonal(self.dots, axis1=1, axis2=2)  # (G, K) squared norms
        dot = np.where(sh, self.dots, 0.0).sum(0)
        na = np.where(sh, n2[:, :, None], 0.0).sum(0)
        nb = np.where(sh, n2[:, None, :], 0.0).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = dot / np.sqrt(na * nb)
        cos[~sh.any(0) | (na <= 0) | (nb <= 0)] = np.nan
        return np.clip(cos, -1.0, 1.0)

    @property
    def cosine(self) -> np.ndarray:
        """(K, K) overall cosine on the shared groups in scope."""
        return self._cosine(self.in_scope())

    def shared_groups(self) -> np.ndarray:
        """(K, K) how many groups in scope each pair shares."""
        return self.shared().sum(0)

    def op_cosine(self) -> np.ndarray:
        """(K, K) the mean over shared groups of each group's own cosine (Xu et al.'s per-operator number)."""
        sh = self.shared()
        n2 = np.diagonal(self.dots, axis1=1, axis2=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            per = self.dots / np.sqrt(n2[:, :, None] * n2[:, None, :])
        ok = sh & np.isfinite(per)
        with np.errstate(invalid="ignore"):
            out = np.where(ok, per, 0.0).sum(0) / ok.sum(0)
        return np.clip(out, -1.0, 1.0)

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(g.layer for g in self.groups))

    def layer_cosine(self) -> dict[str, np.ndarray]:
        """Per layer: the (K, K) cosine on that layer's shared groups in scope."""
        scope = self.in_scope()
        out = {}
        for layer in self.layers:
            mask = scope & np.array([g.layer == layer for g in self.groups])
            if mask.any():
                out[layer] = self._cosine(mask)
        return out

    # ------------------------------------------------------------------ tables
    def pairs(self) -> pd.DataFrame:
        """One row per pair (i < j): the two architectures, their distance, the overall and
        per-operator cosine, the shared groups, and one ``cos:<layer>`` column per layer."""
        cos, op, shared = self.cosine, self.op_cosine(), self.shared_groups()
        per_layer = self.layer_cosine()
        rows = []
        for i, j in itertools.combinations(range(self.k), 2):
            row = {"i": i, "j": j, "a": self.archs[i], "b": self.archs[j], "distance": int(self.distance[i, j]),
                   "cosine": cos[i, j], "op_cosine": op[i, j], "shared_groups": int(shared[i, j])}
            row.update({f"cos:{name}": m[i, j] for name, m in per_layer.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def by_distance(self) -> pd.DataFrame:
        """The cosine against the distance: pairs, mean and sd (pairs that share a group)."""
        return by_distance(self.pairs())

    def by_layer(self) -> pd.DataFrame:
        """Per layer: pairs sharing it, mean and sd of its cosine, and the fraction of pairs that
        pull in opposite directions there (cosine < 0): which layers carry the conflict."""
        rows = []
        for name, m in self.layer_cosine().items():
            v = m[np.triu_indices(self.k, 1)]
            v = v[np.isfinite(v)]
            rows.append({"layer": name, "pairs": len(v), "mean": float(v.mean()) if len(v) else np.nan,
                         "sd": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                         "negative": float((v < 0).mean()) if len(v) else np.nan})
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, float]:
        """Mean cosine over the pairs that share a group, and the *conflict*: the mean over all
        pairs of ``max(0, -cos)`` (a pair that shares nothing pulls against nothing: 0)."""
        iu = np.triu_indices(self.k, 1)
        c = self.cosine[iu]
        ok = np.isfinite(c)
        return {"pairs": int(len(c)), "sharing_pairs": int(ok.sum()),
                "mean_cosine": float(c[ok].mean()) if ok.any() else float("nan"),
                "negative_fraction": float((c[ok] < 0).mean()) if ok.any() else float("nan"),
                "conflict": float(np.where(ok, np.maximum(0.0, -np.nan_to_num(c)), 0.0).mean()) if len(c) else 0.0,
                "seconds": float(self.seconds)}

    def order(self) -> list[int]:
        """The children in the leaf order of an average-linkage clustering on ``1 - cos`` (pairs
        that share nothing count as orthogonal), so blocks of agreeing children sit together."""
        if self.k < 3:
            return list(range(self.k))
        from scipy.cluster.hierarchy import leaves_list, linkage
        from scipy.spatial.distance import squareform

        d = 1.0 - np.nan_to_num(self.cosine, nan=0.0)
        d = (d + d.T) / 2
        np.fill_diagonal(d, 0.0)
        return [int(i) for i in leaves_list(linkage(squareform(np.clip(d, 0, 2), checks=False), "average"))]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for an event and the views (no numpy, NaN as None)."""
        def clean(m: np.ndarray) -> list:
            return [[None if not np.isfinite(v) else round(float(v), 5) for v in row] for row in m]

        layers = self.by_layer()
        return {"archs": list(self.archs), "cosine": clean(self.cosine), "distance": self.distance.tolist(),
                "order": self.order(), "by_distance": self.by_distance().to_dict("list"),
                "layers": {"layer": layers["layer"].tolist() if len(layers) else [],
                           "mean": [None if not np.isfinite(v) else float(v) for v in layers.get("mean", [])],
                           "negative": [None if not np.isfinite(v) else float(v) for v in layers.get("negative", [])]},
                "summary": self.summary(), "scope": self.scope, **self.meta}


def by_distance(pairs: pd.DataFrame, column: str = "cosine") -> pd.DataFrame:
    """Mean, sd and number of pairs per distance of a :meth:`Interference.pairs` table (pairs
    without a shared group left out); also the mean per-operator cosine."""
    df = pairs[np.isfinite(pairs[column].astype(float))]
    if not len(df):
        return pd.DataFrame(columns=["distance", "pairs", "mean", "sd", "op_mean"])
    g = df.groupby("distance")
    out = pd.DataFrame({"pairs": g[column].size(), "mean": g[column].mean(), "sd": g[column].std(ddof=1),
                        "op_mean": g["op_cosine"].mean() if "op_cosine" in df else np.nan})
    return out.reset_index()


# ------------------------------------------------------------------------ measuring
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_archs(space: SearchSpace | None, archs: Sequence[Any]) -> list[Any]:
    if isinstance(archs, str) or not isinstance(archs, Sequence) or len(archs) < 1:
        raise ValueError(f"archs: expected a list of architectures (at least one), got {V.shorten(archs)} "
                         "(e.g. ['[4,3,3]', '[1,1,8]'])")
    return [space.parse(a) for a in archs] if space is not None else list(archs)


def measure(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], archs: Sequence[Any],
            space: SearchSpace | None = None, scope: str = "auto", loss_fn: LossFn | None = None,
            distance: str = "auto", context: Callable[[], Any] | None = None,
            groups: list[Group] | None = None) -> Interference:
    """Per-group gradients of every child ``net(x, arch)`` on ``batch`` and their pairwise geometry.

    ``loss_fn(logits, y)`` defaults to cross-entropy. ``distance``: ``"hamming"`` (differing
    decisions), ``"space"`` (the space's own distance, e.g. the pooling displacement: its
    Hamming distance is only ever 2 or 4) or ``"auto"`` (Hamming on product spaces, else the
    space's); without a space the architectures' genes are compared as sequences. ``context()``: a context manager
    around each forward (e.g. the Trainer's batch-statistics-only BN, its autocast). Nothing is
    accumulated into ``.grad`` and the supernet's weights are not changed.
    """
    V.choice("scope", scope, SCOPES)
    V.choice("distance", distance, ("auto", "hamming", "space"))
    if distance == "auto":  # Hamming over independent decisions; a space with coupled ones (pooling) its own
        distance = "hamming" if space is None or space._is_product else "space"
    archs = _check_archs(space, archs)
    loss_fn = loss_fn or F.cross_entropy
    x, y = batch
    params = [p for p in net.parameters() if p.requires_grad]
    groups = groups if groups is not None else parameter_groups(net)
    t0 = time.perf_counter()
    K, G = len(archs), len(groups)
    # per group: the stacked gradient vectors of the children that use it (a K x P matrix, zeros elsewhere)
    stacks: list[torch.Tensor | None] = [None] * G
    used = np.zeros((G, K), bool)
    for c, arch in enumerate(archs):
        with context() if context is not None else _null():
            loss = loss_fn(net(x, arch), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)  # one backward per child
        for k, g in enumerate(groups):
            parts = [grads[i] for i in g.params]
            if all(p is None for p in parts):
                continue  # the child does not reach this group
            used[k, c] = True
            vec = torch.cat([(p if p is not None else torch.zeros_like(params[i])).reshape(-1).double()
                             for p, i in zip(parts, g.params)])
            if stacks[k] is None:
                stacks[k] = torch.zeros(K, vec.numel(), dtype=torch.float64, device=vec.device)
            stacks[k][c] = vec
        del grads, loss
    dots = np.full((G, K, K), np.nan)
    for k, s in enumerate(stacks):
        if s is not None:
            dots[k] = (s @ s.T).cpu().numpy()  # every pair of one group in one Gram product
    genes = [tuple(getattr(a, "genes", a)) for a in archs]
    D = np.zeros((K, K), int)
    for i, j in itertools.combinations(range(K), 2):
        if distance == "space" and space is not None:
            d = space.distance(archs[i], archs[j])
        else:
            d = sum(int(u != v) for u, v in zip(genes[i], genes[j])) + abs(len(genes[i]) - len(genes[j]))
        D[i, j] = D[j, i] = d
    return Interference([str(a) for a in archs], genes, groups, dots, used, D, scope,
                        seconds=time.perf_counter() - t0)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def measure_trainer(trainer: Any, archs: Sequence[Any], batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                    images: int | None = None, scope: str = "auto", distance: str = "auto") -> Interference:
    """:func:`measure` on a :class:`~nasbench_lab.training.Trainer`'s supernet, as it trains it:
    BN on batch statistics (no running statistics touched), its autocast and memory layout.
    ``batch``: default the first ``images`` (default ``batch_size``) unaugmented training images,
    the same every time, so successive measurements compare."""
    batch, context = _trainer_batch(trainer, images, batch)
    return measure(trainer.net, batch, archs, trainer.space, scope=scope, context=context, distance=distance)


def _trainer_batch(trainer: Any, images: int | None, batch: tuple[torch.Tensor, torch.Tensor] | None = None
                   ) -> tuple[tuple[torch.Tensor, torch.Tensor], Callable[[], Any]]:
    """The measured batch (the first ``images`` training images unless given, in the supernet's
    layout) and the context of a training forward that changes nothing (batch-statistics BN, autocast)."""
    if batch is None:
        n = images if images is not None else trainer.cfg.batch_size
        V.positive_int("images", n, example=64)
        n = min(int(n), int(trainer.data.train_x.shape[0]))
        batch = (trainer.data.train_x[:n], trainer.data.train_y[:n])

    def context() -> Any:
        import contextlib

        stack = contextlib.ExitStack()
        stack.enter_context(trainer._batch_stats_only())
        stack.enter_context(trainer._autocast())
        return stack

    return (trainer._layout(batch[0]), batch[1]), context


def op_matrices_trainer(trainer: Any, bases: Sequence[Any] | int = 1, images: int | None = None,
                        seed: int = 0) -> dict[str, Any]:
    """:func:`op_matrices` on a Trainer's supernet, measured as :func:`measure_trainer` measures."""
    batch, context = _trainer_batch(trainer, images)
    return op_matrices(trainer.net, batch, trainer.space, bases=bases, seed=seed, context=context)


def op_matrices(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], space: SearchSpace,
                bases: Sequence[Any] | int = 2, seed: int = 0, loss_fn: LossFn | None = None,
                context: Callable[[], Any] | None = None) -> dict[str, Any]:
    """GM-NAS's op x op matrix per decision: for decision ``e`` and ops ``i``, ``j``, the cosine
    of the gradients of the shared weights (every group both children use: all but the ops of
    ``e`` itself, which differ) between the child with ``e = i`` and the child with ``e = j``,
    the other decisions those of a base architecture; averaged over ``bases`` (a list, or how
    many to draw uniformly with ``seed``). Needs a product space (independent decisions).

    Returns ``{"levels": [name], "options": [[label]], "matrices": [ (n x n) nested lists ],
    "bases": [str], "children": n_children, "seconds": s}``.
    """
    if not space._is_product:
        raise ValueError(f"op_matrices: space {space.name!r} has dependent decisions (e.g. the pooling layouts); "
                         "the op x op matrix needs a space whose decisions are independent, e.g. 'nb201'")
    if isinstance(bases, int):
        V.positive_int("bases", bases, example=2)
        rng = np.random.default_rng(seed)
        bases = [space.sample(rng) for _ in range(bases)]
    bases = _check_archs(space, bases)
    levels = list(range(space.num_levels))
    options = [list(space._product_options(lv)) for lv in levels]
    sums = [np.zeros((len(o), len(o))) for o in options]
    counts = [np.zeros((len(o), len(o))) for o in options]
    t0 = time.perf_counter()
    n_children = 0
    for base in bases:
        children: dict[Arch, None] = {base: None}
        for lv in levels:
            for o in options[lv]:
                children[space.arch(base.genes[:lv] + (o,) + base.genes[lv + 1:])] = None
        kids = list(children)
        n_children += len(kids)
        res = measure(net, batch, kids, space, scope="all", loss_fn=loss_fn, context=context)
        cos = res.cosine
        index = {a: i for i, a in enumerate(kids)}
        for lv in levels:
            idx = [index[space.arch(base.genes[:lv] + (o,) + base.genes[lv + 1:])] for o in options[lv]]
            sub = cos[np.ix_(idx, idx)]
            ok = np.isfinite(sub)
            sums[lv] += np.where(ok, sub, 0.0)
            counts[lv] += ok
    with np.errstate(invalid="ignore"):
        mats = [np.where(c > 0, s / np.maximum(c, 1), np.nan) for s, c in zip(sums, counts)]
    return {"levels": [space.level_name(lv) for lv in levels],
            "options": [[space.option_label(lv, o) for o in options[lv]] for lv in levels],
            "matrices": [[[None if not np.isfinite(v) else float(v) for v in row] for row in m] for m in mats],
            "bases": [str(b) for b in bases], "children": n_children, "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------ choosing the children
def carries_weights(space: SearchSpace, arch: Arch) -> bool:
    """Whether a child has a searched op with weights on a live path. NB-201 cells whose
    convolutions all feed dead nodes (or none at all) share no searched weight with anyone:
    a live panel of such children would be empty. Other spaces: always True."""
    paths = getattr(space, "ops_on_paths", None)
    return True if paths is None else any("conv" in op for path in paths(arch) for op in path)


def spread_archs(space: SearchSpace, k: int, seed: int = 0, live_only: bool = False) -> list[Arch]:
    """``k`` distinct architectures on *ladders*: each ladder starts at a uniform draw and walks
    to the neighbour farthest (Hamming) from its start, one move at a time, for ``num_levels``
    moves. On a product space rung ``i`` and rung ``j`` of a ladder differ in exactly ``|i - j|``
    decisions, so every distance from 1 to the number of decisions is measured (uniform pairs
    of NB-201 almost never differ in fewer than 3 of its 6 edges). ``live_only``: only children
    that :func:`carries_weights` (the live panel's choice)."""
    V.positive_int("k", k, example=8)
    rng = np.random.default_rng(seed)
    k = min(int(k), space.size) if space.numerable else int(k)
    out: dict[Arch, None] = {}
    tries = 0
    while len(out) < k and tries < 100 * k:
        tries += 1
        start = cur = space.sample(rng)
        if live_only and not carries_weights(space, cur):
            continue
        out.setdefault(cur, None)
        for _ in range(space.num_levels):
            if len(out) >= k:
                break
            nbrs = [a for a in space.neighbours(cur) if a not in out and (not live_only or carries_weights(space, a))]
            if not nbrs:
                break
            d = np.array([sum(u != v for u, v in zip(a.genes, start.genes)) for a in nbrs])
            best = np.flatnonzero(d == d.max())
            cur = nbrs[int(best[rng.integers(len(best))])]
            out[cur] = None
    return list(out)


def resolution_split(pairs: pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """Pooling space (thesis §2.2, Fig. 2.3): per layer, the mean cosine of the pairs whose two
    children run that layer at the *same* resolution and of those that run it at *different*
    resolutions (one has pooled before it, the other not yet: the layers between an early and a
    late pooling). The thesis' argument predicts lower cosine (more conflict) in the latter."""
    if not hasattr(space, "levels"):
        raise ValueError(f"resolution_split: space {space.name!r} has no per-layer resolutions; use a pooling space")
    levels = {a: space.levels(a) for a in set(pairs["a"]) | set(pairs["b"])}
    rows = []
    for col in [c for c in pairs.columns if c.startswith("cos:layers.")]:
        layer = int(col.split(".")[-1])
        differ = np.array([levels[a][layer] != levels[b][layer] for a, b in zip(pairs["a"], pairs["b"])])
        v = pairs[col].to_numpy(float)
        same, diff = v[~differ & np.isfinite(v)], v[differ & np.isfinite(v)]
        rows.append({"layer": col[4:], "same_pairs": len(same), "same_mean": same.mean() if len(same) else np.nan,
                     "differ_pairs": len(diff), "differ_mean": diff.mean() if len(diff) else np.nan})
    return pd.DataFrame(rows)


class InterferenceMonitor:
    """The live instrument of a :class:`~nasbench_lab.training.Trainer` (``interference_every``):
    a fixed small set of children (``"spread"``: ladders over the space, chosen once; ``"top"``:
    the best mean reward seen so far, filled up with the spread set; or the user's pick with
    :meth:`pick`) measured on the same training images every time."""

    def __init__(self, space: SearchSpace, k: int = 8, how: str = "spread", images: int = 64, seed: int = 0) -> None:
        V.integer("interference_archs", k, min=2, example=8)
        V.choice("interference_pick", how, ("spread", "top"))
        self.space, self.k, self.how, self.images, self.seed = space, int(k), how, int(images), int(seed)
        self.rewards: dict[str, list[float]] = {}  # arch -> [sum, count] of the rewards seen ("top")
        self.picked: list[str] | None = None
        self.history: list[dict[str, Any]] = []  # one summary per measurement
        self._spread: list[str] | None = None

    def observe(self, arch: Arch, reward: float) -> None:
        if self.how == "top":
            r = self.rewards.setdefault(str(arch), [0.0, 0.0])
            r[0] += float(reward)
            r[1] += 1.0

    def pick(self, archs: Sequence[Any] | None) -> None:
        """Measure these children from now on (None: back to the configured choice). Thread-safe:
        the training thread reads the list at its next measurement."""
        if archs is None:
            self.picked = None
            return
        parsed = [str(self.space.parse(a)) for a in _check_archs(self.space, archs)]
        if len(set(parsed)) < 2:
            raise ValueError(f"archs: pick at least two different architectures, got {parsed}")
        self.picked = list(dict.fromkeys(parsed))

    def archs(self) -> tuple[list[str], str]:
        """The children to measure now and how they were chosen."""
        if self.picked is not None:
            return list(self.picked), "your pick"
        if self._spread is None:
            self._spread = [str(a) for a in spread_archs(self.space, self.k, seed=self.seed, live_only=True)]
        if self.how == "top" and self.rewards:
            ranked = sorted(self.rewards, key=lambda a: -self.rewards[a][0] / self.rewards[a][1])[: self.k]
            fill = [a for a in self._spread if a not in ranked][: self.k - len(ranked)]
            return ranked + fill, f"top {len(ranked)} by mean reward" + (f" + {len(fill)} spread" if fill else "")
        return list(self._spread), "spread (ladders)"

    def measure(self, trainer: Any, archs: Sequence[Any] | None = None) -> dict[str, Any]:
        chosen, how = (list(archs), "given") if archs is not None else self.archs()
        res = measure_trainer(trainer, chosen, images=self.images)
        res.meta.update({"step": int(trainer.step_count), "pick": how, "space": self.space.name})
        data = res.to_dict()
        self.history.append({"step": int(trainer.step_count), **res.summary()})
        return data

    def state_dict(self) -> dict[str, Any]:
        return {"rewards": {a: list(v) for a, v in self.rewards.items()}, "picked": self.picked,
                "history": list(self.history), "spread": self._spread}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rewards = {a: list(v) for a, v in state.get("rewards", {}).items()}
        self.picked = state.get("picked")
        self.history = list(state.get("history", []))
        self._spread = state.get("spread")
