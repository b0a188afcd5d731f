"""Fast cost models of a space's architectures: FLOPs, params or latency of many genes at once.

Budget sampling asks for millions of costs, so building a model per architecture is out. A cost
model answers ``cost(genes)``, ``many(G)`` (an ``(n, levels)`` integer array) and
``bounds(prefix)`` (the least and greatest cost of any completion of a gene prefix, which lets a
tree sampler prune subtrees that cannot meet a budget). Three kinds, chosen per space:

- :class:`AdditiveCost` for product spaces whose cost is a sum over levels,
  ``cost(g) = base + sum_l table[l][g_l]`` (NB-Macro, NB-201, MobileNetV2: each layer's or edge's
  cost depends only on its own op at a fixed width and resolution). The table comes from the
  space's closed form (:meth:`MobileNetSpace.layer_table`) or is probed with
  ``1 + sum_l (options_l - 1)`` calls of the counting function around a reference architecture
  (exact for separable costs; :func:`cost_model` checks it on random architectures and falls back
  to :class:`DirectCost` when the probe is not exact);
- :class:`TableCost` for small constrained spaces (the pooling layouts): every architecture's cost,
  computed once by enumeration;
- :class:`DirectCost` otherwise (DARTS): the counting function, memoised; no bounds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nasbench_lab import validation as V
from nasbench_lab.spaces.base import Arch

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.spaces.base import SearchSpace

__all__ = ["CostModel", "AdditiveCost", "TableCost", "DirectCost", "cost_model", "METRICS", "make_cost_model"]

#: cost metrics a budget or an objective may name (latency needs a measured lookup table)
METRICS: tuple[str, ...] = ("flops", "params", "latency")


def _genes_of(arch: Arch | Sequence[int]) -> tuple[int, ...]:
    return arch.genes if isinstance(arch, Arch) else tuple(int(g) for g in arch)


class CostModel:
    """Base class: ``cost(genes)``, ``many(G)``, ``bounds(prefix)``, ``lower`` / ``upper``."""

    kind = ""
    #: True when ``bounds`` are exact (min/max over completions), False when unknown (+-inf)
    has_bounds = False

    def __init__(self, space: SearchSpace, metric: str) -> None:
        self.space, self.metric = space, metric

    def __call__(self, arch: Arch | Sequence[int]) -> float:
        raise NotImplementedError  # pragma: no cover

    def many(self, genes: np.ndarray) -> np.ndarray:
        return np.array([self(tuple(int(v) for v in g)) for g in np.asarray(genes)], dtype=float)

    def bounds(self, prefix: Sequence[int] = ()) -> tuple[float, float]:
        """(least, greatest) cost over every completion of ``prefix`` (-inf, inf when unknown)."""
        return (-np.inf, np.inf)

    @property
    def lower(self) -> float:
        return self.bounds(())[0]

    @property
    def upper(self) -> float:
        return self.bounds(())[1]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.metric} of {self.space.name}>"


class AdditiveCost(CostModel):
    """``cost(g) = base + sum_l table[l][g_l]``; ``table[l]`` is dense over genes 0..max (NaN where invalid)."""

    kind = "additive"
    has_bounds = True

    def __init__(self, space: SearchSpace, metric: str, base: float, table: Sequence[np.ndarray]) -> None:
        super().__init__(space, metric)
        self.base = float(base)
        self.table = [np.asarray(t, dtype=float) for t in table]
        width = max(len(t) for t in self.table)
        self._dense = np.full((len(self.table), width), np.nan)
        for i, t in enumerate(self.table):
            self._dense[i, :len(t)] = t
        self._rows = np.arange(len(self.table))
        self.level_min = np.array([np.nanmin(t) for t in self.table])
        self.level_max = np.array([np.nanmax(t) for t in self.table])
        # suffix sums: the cheapest / dearest completion of levels l..L-1
        self._suffix_min = np.concatenate([np.cumsum(self.level_min[::-1])[::-1], [0.0]])
        self._suffix_max = np.concatenate([np.cumsum(self.level_max[::-1])[::-1], [0.0]])

    def __call__(self, arch: Arch | Sequence[int]) -> float:
        genes = _genes_of(arch)
        return float(self.base + self._dense[self._rows, list(genes)].sum())

    def many(self, genes: np.ndarray) -> np.ndarray:
        g = np.asarray(genes, dtype=np.int64)
        return self.base + self._dense[self._rows[None, :], g].sum(axis=1)

    def partial(self, prefix: Sequence[int]) -> float:
        """Cost of the fixed part plus the levels already chosen."""
        k = len(prefix)
        return float(self.base + (self._dense[self._rows[:k], list(prefix)].sum() if k else 0.0))

    def bounds(self, prefix: Sequence[int] = ()) -> tuple[float, float]:
        p, k = self.partial(prefix), len(prefix)
        return p + float(self._suffix_min[k]), p + float(self._suffix_max[k])

    def option_bounds(self, prefix: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(genes, least, greatest) cost of every option at level ``len(prefix)`` (vectorised bounds)."""
        k = len(prefix)
        genes = np.flatnonzero(~np.isnan(self._dense[k]))
        base = self.partial(prefix) + self._dense[k, genes]
        return genes, base + self._suffix_min[k + 1], base + self._suffix_max[k + 1]


class TableCost(CostModel):
    """Every architecture's cost, once (numerable spaces); exact bounds per prefix."""

    kind = "table"
    has_bounds = True

    def __init__(self, space: SearchSpace, metric: str, fn: Callable[[Arch], float]) -> None:
        super().__init__(space, metric)
        self.archs = tuple(space.enumerate())
        self.values = np.array([float(fn(a)) for a in self.archs])
        self.genes = np.array([a.genes for a in self.archs], dtype=np.int64)
        self._index = {a.genes: i for i, a in enumerate(self.archs)}
        self._bounds: dict[tuple[int, ...], tuple[float, float]] = {}

    def __call__(self, arch: Arch | Sequence[int]) -> float:
        genes = _genes_of(arch)
        if genes not in self._index:
            raise ValueError(f"{self.space.name}: {list(genes)} is not an architecture of the space "
                             f"(e.g. {self.space.example!r})")
        return float(self.values[self._index[genes]])

    def many(self, genes: np.ndarray) -> np.ndarray:
        return np.array([self(tuple(int(v) for v in g)) for g in np.asarray(genes)], dtype=float)

    def bounds(self, prefix: Sequence[int] = ()) -> tuple[float, float]:
        key = tuple(int(g) for g in prefix)
        if key not in self._bounds:
            k = len(key)
            mask = np.all(self.genes[:, :k] == np.asarray(key, dtype=np.int64), axis=1) if k else slice(None)
            vals = self.values[mask]
            self._bounds[key] = (float(vals.min()), float(vals.max())) if len(vals) else (np.inf, -np.inf)
        return self._bounds[key]


class DirectCost(CostModel):
    """The counting function itself, memoised per architecture (no bounds)."""

    kind = "direct"

    def __init__(self, space: SearchSpace, metric: str, fn: Callable[[Arch], float]) -> None:
        super().__init__(space, metric)
        self.fn = fn
        self._memo: dict[tuple[int, ...], float] = {}

    def __call__(self, arch: Arch | Sequence[int]) -> float:
        genes = _genes_of(arch)
        if genes not in self._memo:
            self._memo[genes] = float(self.fn(self.space.arch(genes)))
        return self._memo[genes]


def _probe_additive(space: SearchSpace, metric: str, fn: Callable[[Arch], float]) -> AdditiveCost:
    levels = [list(space.level_options((0,) * i)) for i in range(space.num_levels)]
    ref = tuple(opts[0] for opts in levels)
    base = float(fn(space.arch(ref)))
    table = []
    for i, opts in enumerate(levels):
        row = np.full(max(opts) + 1, np.nan)
        for g in opts:
            row[g] = 0.0 if g == opts[0] else float(fn(space.arch(ref[:i] + (g,) + ref[i + 1:]))) - base
        table.append(row)
    return AdditiveCost(space, metric, base, table)


def make_cost_model(space: SearchSpace, metric: str, fn: Callable[[Arch], float], check: int = 8,
                    seed: int = 0) -> CostModel:
    """The cheapest exact model of ``fn`` over ``space`` (see the module docstring).

    For product spaces the additive probe is checked against ``fn`` on ``check`` random
    architectures; a mismatch (a cost that is not a sum over levels) falls back to a table or to
    direct calls, so the model never answers a wrong cost.
    """
    if getattr(space, "product_space", False):
        model = _probe_additive(space, metric, fn)
        rng = np.random.default_rng(seed)
        ok = True
        for _ in range(check):
            a = space.sample(rng)
            want = float(fn(a))
            if not np.isclose(model(a), want, rtol=1e-9, atol=1e-6 * max(1.0, abs(want))):
                ok = False
                break
        if ok:
            return model
    if space.numerable:
        return TableCost(space, metric, fn)
    return DirectCost(space, metric, fn)


_LOCK = threading.Lock()


def cost_model(space: SearchSpace | str, metric: str = "flops", **options) -> CostModel:
    """The shared cost model of ``metric`` on ``space`` (built once per space and options).

    ``metric``: ``"flops"`` (MACs at the space's input size; MobileNet spaces accept
    ``resolution=``), ``"params"``, or ``"latency"`` (milliseconds on ``device=`` from the
    per-op lookup table, :func:`nasbench_lab.spaces.latency.latency_table`). ``num_classes=``
    changes the classifier of the counted network.
    """
    from nasbench_lab import spaces

    sp = spaces.get(space) if isinstance(space, str) else space
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {V.shorten(metric)} (e.g. metric='flops')")
    key = (metric, tuple(sorted((k, str(v)) for k, v in options.items())))
    cache = sp.__dict__.setdefault("_cost_models", {})
    with _LOCK:
        if key not in cache:
            cache[key] = _build(sp, metric, dict(options))
    return cache[key]


def _build(sp: SearchSpace, metric: str, options: dict) -> CostModel:
    if metric == "latency":
        from nasbench_lab.spaces.latency import latency_table

        return latency_table(sp, **options).cost_model()
    table_fn = getattr(sp, "layer_table", None)
    if table_fn is not None:  # a closed form per layer (MobileNet)
        fixed, table = table_fn(metric, **options)
        return AdditiveCost(sp, metric, fixed, list(table))
    bad = sorted(set(options) - {"num_classes"})
    if bad:
        raise ValueError(f"cost_model: {sp.name} takes no options {bad} for {metric!r} (valid: num_classes)")
    if getattr(sp, "additive_costs", False):  # sp.flops/params read this model: probe the built models
        counter = sp.count_flops if metric == "flops" else sp.count_params
    else:
        counter = sp.flops if metric == "flops" else sp.params
    return make_cost_model(sp, metric, lambda a: counter(a, **options))
