"""Resource budgets at the space level: "is this architecture inside?" and "sample uniformly inside".

The thesis (003 §3.5.4, after Su et al. 2021a) samples only architectures whose FLOPs fall within
``[0.99, 1] x B`` and discards the rest. A :class:`Budget` is that band on one metric (FLOPs,
params or latency); ``budget.bind(space)`` gives a :class:`BudgetedSpace` that answers, cheaply:

- ``contains(arch)`` / ``mask(G)``: is an architecture (a batch of genes) inside the band;
- ``sample(rng)``: one architecture *uniformly* among those inside the band;
- ``feasible_options(prefix)`` / ``option_weights(prefix)``: which options at the next level can
  still lead into the band, and how many in-band completions each has (a tree sampler uses these to
  never enter an empty subtree);
- ``acceptance`` and ``size``: the share and number of architectures inside the band.

How uniform sampling stays fast when the band is narrow (a 1% band can hold 1e-6 of the space):

- **additive costs** (NB-Macro, NB-201, MobileNetV2): each level's cost is quantised to a grid of
  step ``delta``; a dynamic programme counts, for every level and every quantised partial sum, the
  completions whose quantised total can land in the band (widened by the quantisation error,
  ``levels * delta``). Sampling level by level in proportion to those counts draws uniformly from a
  superset of the band that is barely larger than it; the exact cost then accepts or rejects. The
  accepted draws are exactly uniform over the band (rejection from a uniform superset), and the
  acceptance rate is high by construction (``delta`` is a fraction of the band's width);
- **small spaces** (pooling): the enumeration, filtered once;
- **anything else** (DARTS): plain rejection from ``space.sample`` with a bounded number of tries
  and a bounded time (``max_seconds``): a DARTS cost is a network built and counted (0.5 s), so
  a band the space cannot meet would otherwise run ``max_tries`` x 0.5 s = 14 hours.

A band that no architecture can meet is refused up front where the cost model knows its bounds
(additive and small spaces); without bounds (DARTS) the search stops at ``max_seconds`` with the
range of the costs it met. Budget text is at most :data:`MAX_SPEC_CHARS` characters.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasbench_lab import validation as V
from nasbench_lab.spaces.base import Arch
from nasbench_lab.spaces.cost import METRICS, AdditiveCost, CostModel, TableCost, cost_model

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.spaces.base import SearchSpace

__all__ = ["Budget", "BudgetedSpace", "BudgetError"]

#: longest budget text read ("flops:[0.99,1]*330M" is 19): its patterns then do bounded work
MAX_SPEC_CHARS = 200
_UNITS = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}
_NUM = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgG]?)"
_BAND_RE = re.compile(rf"^\s*(\w+)\s*(?::|=)\s*\[\s*{_NUM}\s*,\s*{_NUM}\s*\]\s*$")
_MUL_RE = re.compile(rf"^\s*(\w+)\s*(?::|=)\s*\[\s*{_NUM}\s*,\s*{_NUM}\s*\]\s*\*\s*{_NUM}\s*$")
_LE_RE = re.compile(rf"^\s*(\w+)\s*<=\s*{_NUM}\s*$")


class BudgetError(ValueError):
    """No architecture (or too few for rejection) lies inside the budget."""


def _num(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


@dataclass(frozen=True)
class Budget:
    """A band ``low <= metric(arch) <= high`` (FLOPs and params in counts, latency in ms).

    ``options`` go to the cost model (``resolution=32`` for FLOPs at another input size,
    ``device="cpu"`` for latency, ``num_classes=10``).
    """

    metric: str
    high: float
    low: float = 0.0
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"budget metric: expected one of {', '.join(METRICS)}, got {V.shorten(self.metric)} "
                             "(e.g. Budget.band('flops', 330e6))")
        for name in ("low", "high"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not math.isfinite(v):
                raise ValueError(f"budget {name}: expected a finite number, got {V.shorten(v)} (e.g. Budget('flops', 330e6))")
        if not 0 <= self.low <= self.high:
            raise ValueError(f"budget: expected 0 <= low <= high, got low={V.shorten(self.low)}, high={V.shorten(self.high)} "
                             "(e.g. Budget.band('flops', 330e6, 0.99, 1.0))")

    # ----------------------------------------------------------------- construction
    @classmethod
    def band(cls, metric: str, target: float, lo: float = 0.99, hi: float = 1.0, **options: Any) -> Budget:
        """``[lo, hi] x target``: the thesis' ``[0.99, 1] x B`` by default."""
        if not (isinstance(target, int | float) and target > 0 and 0 <= lo <= hi):
            raise ValueError(f"Budget.band: expected target > 0 and 0 <= lo <= hi, got target={V.shorten(target)}, "
                             f"lo={V.shorten(lo)}, hi={V.shorten(hi)} (e.g. Budget.band('flops', 330e6, 0.99, 1.0))")
        return cls(metric, float(hi * target), float(lo * target), tuple(sorted(options.items())))

    @classmethod
    def parse(cls, spec: str | dict | Budget | None) -> Budget | None:
        """A budget from ``"flops:[0.99,1]*330M"``, ``"flops:[270M,280M]"``, ``"params<=5M"``, a dict
        ``{"metric": "flops", "high": 330e6, "low": 326.7e6}`` (or ``"target"`` with ``"band"``)."""
        if spec is None or isinstance(spec, Budget):
            return spec
        if isinstance(spec, dict):
            d = dict(spec)
            metric = d.pop("metric", None)
            opts = d.pop("options", {}) or {}
            if "target" in d:
                lo, hi = d.pop("band", (0.99, 1.0))
                target = d.pop("target")
                if d:
                    raise ValueError(f"budget: unknown keys {sorted(d)} (valid: metric, target, band, options)")
                return cls.band(metric, target, lo, hi, **opts)
            try:
                high = d.pop("high")
            except KeyError:
                raise ValueError(f"budget: {V.shorten(spec)} needs 'high' (or 'target'), e.g. "
                                 "{'metric': 'flops', 'target': 330e6, 'band': [0.99, 1]}") from None
            low = d.pop("low", 0.0)
            if d:
                raise ValueError(f"budget: unknown keys {sorted(d)} (valid: metric, high, low, options)")
            return cls(metric, float(high), float(low), tuple(sorted(opts.items())))
        if not isinstance(spec, str):
            raise ValueError(f"budget: expected a string such as 'flops:[0.99,1]*330M', got {type(spec).__name__}")
        if len(spec) > MAX_SPEC_CHARS:
            raise ValueError(f"budget: a text of {len(spec):,} characters ({V.shorten(spec)}); at most "
                             f"{MAX_SPEC_CHARS} are read (e.g. 'flops:[0.99,1]*330M')")
        m = _MUL_RE.match(spec)
        if m:
            metric, a, ua, b, ub, t, ut = m.groups()
            return cls.band(metric, _num(t, ut), _num(a, ua), _num(b, ub))
        m = _BAND_RE.match(spec)
        if m:
            metric, a, ua, b, ub = m.groups()
            return cls(metric, _num(b, ub), _num(a, ua))
        m = _LE_RE.match(spec)
        if m:
            metric, a, ua = m.groups()
            return cls(metric, _num(a, ua), 0.0)
        raise ValueError(f"budget: cannot parse {V.shorten(spec)}; expected 'flops:[0.99,1]*330M', 'flops:[270M,280M]' "
                         "or 'params<=5M'")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "high": self.high, "low": self.low, "options": dict(self.options)}

    def contains_value(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def bind(self, space: SearchSpace | str) -> BudgetedSpace:
        return BudgetedSpace(space, self)

    def __str__(self) -> str:
        opts = "".join(f", {k}={v}" for k, v in self.options)
        return f"{self.metric} in [{self.low:.6g}, {self.high:.6g}]{opts}"


class BudgetedSpace:
    """A space seen through a :class:`Budget` (see the module docstring).

    ``grid``: quantisation steps per band width for the additive sampler (higher: acceptance
    closer to 1, a larger table). ``max_tries``: draws per :meth:`sample` before a
    :class:`BudgetError`; ``max_seconds``: the time the plain-rejection path (a cost model without
    bounds, DARTS) may search for one request before a :class:`BudgetError` that says the limit
    and the range of the costs it met.
    """

    def __init__(self, space: SearchSpace | str, budget: Budget | str | dict, grid: int = 4,
                 max_tries: int = 100_000, max_seconds: float = 30.0) -> None:
        from nasbench_lab import spaces

        self.space: SearchSpace = spaces.get(space) if isinstance(space, str) else space
        parsed = Budget.parse(budget)
        if parsed is None:
            raise ValueError("budget: expected a Budget, a dict or a string such as 'flops:[0.99,1]*330M'")
        self.budget = parsed
        self.cost: CostModel = cost_model(self.space, parsed.metric, **dict(parsed.options))
        self.max_tries = int(max_tries)
        self.max_seconds = V.positive_number("max_seconds", max_seconds, example=30.0)
        self.draws = 0  # proposals made by sample()
        self.accepted = 0
        lo, hi = self.cost.bounds(())
        if parsed.low > hi or parsed.high < lo:
            raise BudgetError(f"budget {parsed}: no architecture of {self.space.name} fits; its {parsed.metric} "
                              f"ranges over [{lo:.6g}, {hi:.6g}]")
        #: the band holds every architecture (samplers then draw exactly as without a budget)
        self.covers_all = bool(parsed.low <= lo and hi <= parsed.high)
        self._dp: _BandDP | None = None
        self._feasible_idx: np.ndarray | None = None
        self._suffix: dict[int, np.ndarray] = {}
        # prefixes found to have no in-band completion although their counts said otherwise (see
        # feasible_options); each one found is never offered again, so a descent cannot loop on it
        self.dead: set[tuple[int, ...]] = set()
        if isinstance(self.cost, AdditiveCost):
            self._dp = _BandDP(self.cost, parsed.low, parsed.high, grid)
            if self._dp.total == 0:
                raise BudgetError(f"budget {parsed}: no architecture of {self.space.name} fits "
                                  f"(its {parsed.metric} ranges over [{lo:.6g}, {hi:.6g}])")
            self._suffix = _exact_suffixes(self.cost, _EXACT_SUFFIX)
        elif isinstance(self.cost, TableCost):
            v = self.cost.values
            self._feasible_idx = np.flatnonzero((v >= parsed.low) & (v <= parsed.high))
            if not len(self._feasible_idx):
                raise BudgetError(f"budget {parsed}: none of the {len(v)} architectures of {self.space.name} fits "
                                  f"(its {parsed.metric} ranges over [{v.min():.6g}, {v.max():.6g}])")

    # ----------------------------------------------------------------- membership
    def cost_of(self, arch: Arch | str | Sequence[int]) -> float:
        a = self.space.parse(arch) if not isinstance(arch, Arch) else arch
        return float(self.cost(a.genes))

    def contains(self, arch: Arch | str | Sequence[int]) -> bool:
        return self.budget.contains_value(self.cost_of(arch))

    __contains__ = contains

    def mask(self, genes: np.ndarray) -> np.ndarray:
        """In-band mask of an ``(n, levels)`` gene array (vectorised)."""
        c = self.cost.many(genes)
        return (c >= self.budget.low) & (c <= self.budget.high)

    # ----------------------------------------------------------------- tree view
    def can_reach(self, prefix: Sequence[int]) -> bool:
        """False only when no completion of ``prefix`` can be inside the band (exact for additive
        and small spaces; always True when bounds are unknown)."""
        if self._dp is not None:
            return self._dp.completions(tuple(prefix)) > 0
        if self._feasible_idx is not None:
            k = len(prefix)
            g = self.cost.genes[self._feasible_idx, :k]
            return bool(np.any(np.all(g == np.asarray(prefix, dtype=np.int64), axis=1))) if k else True
        lo, hi = self.cost.bounds(prefix)
        return not (hi < self.budget.low or lo > self.budget.high)

    def option_weights(self, prefix: Sequence[int]) -> dict[int, float]:
        """Per option at level ``len(prefix)``: how many completions can land in the band.

        Additive spaces: the count over the quantised superset (the sampler's proposal weights);
        small spaces: the exact count; otherwise 1.0 for options whose bounds allow the band.
        Options with weight 0 lead only to architectures outside the budget.
        """
        prefix = tuple(int(g) for g in prefix)
        opts = list(self.space.level_options(prefix))
        if self._dp is not None:
            w = self._dp.weights(prefix, opts)
            k = len(prefix) + 1  # the levels after the option
            if k in self._suffix or k == self._dp.L:
                # the quantised counts are a superset (the band widened by the quantisation error):
                # near the leaves, check that an exact in-band completion exists
                p = self.cost.partial(prefix) + self.cost._dense[k - 1, opts]
                lo, hi = self.budget.low - p, self.budget.high - p
                if k == self._dp.L:
                    ok = (lo <= 0) & (0 <= hi)
                else:
                    suf = self._suffix[k]
                    ok = np.searchsorted(suf, hi, side="right") > np.searchsorted(suf, lo, side="left")
                w = np.where(ok, w, 0.0)
            out = {g: float(v) for g, v in zip(opts, w)}
            for g in opts:
                if out[g] and prefix + (g,) in self.dead:
                    out[g] = 0.0
            return out
        if self._feasible_idx is not None:
            k = len(prefix)
            g = self.cost.genes[self._feasible_idx]
            if k:
                g = g[np.all(g[:, :k] == np.asarray(prefix, dtype=np.int64), axis=1)]
            return {o: float(np.sum(g[:, k] == o)) for o in opts}
        return {o: 1.0 if self.can_reach(prefix + (o,)) else 0.0 for o in opts}

    def feasible_options(self, prefix: Sequence[int]) -> list[int]:
        """Options at level ``len(prefix)`` that can still lead into the band.

        On additive spaces the last levels are checked exactly (``_EXACT_SUFFIX``) and the earlier
        ones by the quantised counts, a superset: a prefix can then look feasible and turn out to
        have no exact in-band completion. The first caller that meets such a prefix gets ``[]``
        here; the prefix is remembered as dead, its parent no longer offers it, and the caller
        starts its descent again (each dead end is met once: a descent never loops).
        """
        prefix = tuple(int(g) for g in prefix)
        out = [g for g, w in self.option_weights(prefix).items() if w > 0]
        if not out and prefix:
            self.dead.add(prefix)
        return out

    def descend(self, pick: Any, max_restarts: int = 10_000) -> tuple[int, ...]:
        """Genes chosen level by level by ``pick(prefix, options)`` among the feasible options only
        (a dead end, see :meth:`feasible_options`, restarts the descent)."""
        for _ in range(max_restarts):
            prefix: tuple[int, ...] = ()
            while len(prefix) < self.space.num_levels:
                opts = self.feasible_options(prefix)
                if not opts:
                    break
                prefix += (int(pick(prefix, opts)),)
            else:
                return prefix
        raise BudgetError(f"budget {self.budget}: {max_restarts} dead ends in {self.space.name}; widen the band")

    # ----------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        """One architecture uniformly at random among those inside the band."""
        if self._dp is None:
            return self.sample_many(1, rng)[0]
        rng = np.random.default_rng(rng)
        for _ in range(self.max_tries):
            self.draws += 1
            genes = self._dp.draw_one(rng)
            if self.budget.contains_value(float(self.cost(genes))):
                self.accepted += 1
                return self.space.arch(genes)
        raise BudgetError(f"budget {self.budget}: no architecture of {self.space.name} found inside in "
                          f"{self.max_tries} draws; widen the band")

    def sample_genes(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` in-band gene rows, i.i.d. uniform over the band (vectorised: the fast path)."""
        rng = np.random.default_rng(rng)
        n = int(n)
        if n < 1:
            raise ValueError(f"n: expected a positive number of samples, got {V.shorten(n)}")
        if self._feasible_idx is not None:
            self.draws += n
            self.accepted += n
            return self.cost.genes[self._feasible_idx[rng.integers(len(self._feasible_idx), size=n)]]
        out: list[np.ndarray] = []
        got, tries = 0, 0
        deadline = time.monotonic() + self.max_seconds
        seen = [math.inf, -math.inf]  # least and greatest cost met (for the message)
        while got < n:
            if tries >= self.max_tries:
                raise BudgetError(f"budget {self.budget}: only {got} of {n} architectures of {self.space.name} "
                                  f"found inside in {tries} draws; widen the band")
            m = min(max(2 * (n - got), 16), self.max_tries - tries)
            if self._dp is not None:
                g = self._dp.draw(rng, m)
                ok = self.mask(g)
            else:
                g = np.array([self.space.sample(rng).genes for _ in range(m)], dtype=np.int64)
                ok = self._timed_mask(g, deadline, seen, n, got, tries)
            tries += m
            # keep draw order so that the accepted rows are the first in-band proposals
            idx = np.flatnonzero(ok)[:n - got]
            used = int(idx[-1]) + 1 if len(idx) == n - got else m
            self.draws += used
            self.accepted += len(idx)
            out.append(g[idx])
            got += len(idx)
        return np.concatenate(out)

    def _timed_mask(self, genes: np.ndarray, deadline: float, seen: list[float], n: int, got: int,
                    tries: int) -> np.ndarray:
        """:meth:`mask` one cost at a time (a cost without bounds can take 0.5 s: DARTS builds the
        network), stopping with a BudgetError once ``max_seconds`` have passed."""
        ok = np.zeros(len(genes), dtype=bool)
        for i, g in enumerate(genes):
            if time.monotonic() > deadline:
                raise BudgetError(
                    f"budget {self.budget}: only {got} of {n} architectures of {self.space.name} found inside in "
                    f"{tries + i} draws and max_seconds={self.max_seconds:g} s; the {self.budget.metric} of the "
                    f"draws ranged over [{seen[0]:.6g}, {seen[1]:.6g}]. Widen the band (or pass a larger "
                    "max_seconds when it is merely narrow)")
            c = float(self.cost(tuple(int(v) for v in g)))
            seen[0], seen[1] = min(seen[0], c), max(seen[1], c)
            ok[i] = self.budget.contains_value(c)
        return ok

    def sample_many(self, n: int, rng: np.random.Generator | int | None = None) -> list[Arch]:
        """``n`` architectures i.i.d. uniform over the band."""
        if self._feasible_idx is not None:
            rng = np.random.default_rng(rng)
            idx = self._feasible_idx[rng.integers(len(self._feasible_idx), size=int(n))]
            self.draws += int(n)
            self.accepted += int(n)
            return [self.cost.archs[int(i)] for i in idx]
        return [self.space.arch(g) for g in self.sample_genes(n, rng)]

    @property
    def size(self) -> float:
        """Number of architectures inside the band (exact for small spaces; estimated otherwise)."""
        if self._feasible_idx is not None:
            return float(len(self._feasible_idx))
        if self._dp is not None:
            return self._dp.total * (self.accepted / self.draws if self.draws else self.measure(2000)["acceptance"])
        return float("nan")

    @property
    def fraction(self) -> float:
        """Share of the space inside the band."""
        return self.size / float(self.space.size)

    def measure(self, n: int = 2000, seed: int = 0) -> dict[str, float]:
        """Draw ``n`` in-band samples: acceptance rate of the proposals, samples per second, and the
        share of the space inside the band (for the report and ``nasbench-lab latency``/budgets)."""
        rng = np.random.default_rng(seed)
        d0, a0 = self.draws, self.accepted
        t0 = time.perf_counter()
        self.sample_genes(n, rng)
        dt = time.perf_counter() - t0
        draws, acc = self.draws - d0, self.accepted - a0
        t1 = time.perf_counter()
        k = max(1, min(200, int(n) // 10))
        for _ in range(k):
            self.sample(rng)
        single = k / (time.perf_counter() - t1)
        return {"samples": acc, "draws": draws, "acceptance": acc / draws if draws else float("nan"),
                "samples_per_s": acc / dt if dt > 0 else float("inf"), "archs_per_s_one_at_a_time": single,
                "seconds": dt}

    def __repr__(self) -> str:
        return f"<BudgetedSpace {self.space.name}: {self.budget}>"


#: the levels whose exact completion costs are kept (sorted) for the exact feasibility check
_EXACT_SUFFIX = 60_000


def _exact_suffixes(cost: AdditiveCost, limit: int) -> dict[int, np.ndarray]:
    """Sorted exact costs of every completion of levels ``k..L-1``, for the last levels whose
    number of completions stays below ``limit``."""
    out: dict[int, np.ndarray] = {}
    vals = np.zeros(1)
    for k in range(len(cost.table) - 1, 0, -1):
        t = cost.table[k]
        t = t[~np.isnan(t)]
        if len(vals) * len(t) > limit:
            break
        vals = (t[:, None] + vals[None, :]).ravel()
        out[k] = np.sort(vals)
    return out


class _BandDP:
    """Counts of completions by quantised cost for an additive cost model (module docstring)."""

    def __init__(self, cost: AdditiveCost, low: float, high: float, grid: int) -> None:
        L = len(cost.table)
        width = max(high - low, 0.0)
        span = float(cost.upper - cost.lower)
        # step: a fraction of the band (so the superset is small), but at most ~20k cells in all
        delta = width / (grid * L) if width > 0 else span / 20_000
        delta = max(delta, span / 20_000, 1e-12)
        self.delta, self.L = delta, L
        # q[lv][g] = floor((c - min_l) / delta): the quantised extra cost of option g at level lv
        self.options = [np.flatnonzero(~np.isnan(t)) for t in cost.table]
        self.q = [np.floor((cost.table[lv][opts] - cost.level_min[lv]) / delta).astype(np.int64)
                  for lv, opts in enumerate(self.options)]
        base = cost.base + float(cost.level_min.sum())
        # exact extra = delta * sum q + residual, residual in [0, L * delta)
        self.s_lo = max(0, math.ceil((low - base) / delta - L))
        self.s_hi = math.floor((high - base) / delta)
        smax = int(sum(int(q.max()) for q in self.q))
        self.s_hi = min(self.s_hi, smax)
        # N[lv][s]: completions of levels lv..L-1 with quantised sum exactly s (floats: counts reach 13**21)
        self.N: list[np.ndarray] = [np.zeros(1)] * (L + 1)
        self.N[L] = np.ones(1)
        for lv in range(L - 1, -1, -1):
            nxt = self.N[lv + 1]
            cur = np.zeros(len(nxt) + int(self.q[lv].max()))
            for qv in self.q[lv]:
                cur[qv:qv + len(nxt)] += nxt
            self.N[lv] = cur
        self.C = [np.concatenate([[0.0], np.cumsum(n)]) for n in self.N]  # prefix sums for range counts
        self.total = self._range(0, 0) if self.s_hi >= self.s_lo else 0.0
        # plain-Python copies for the one-at-a-time path
        self.Cl = [c.tolist() for c in self.C]
        self.ql = [q.tolist() for q in self.q]
        self.optl = [o.tolist() for o in self.options]
        self._cache: dict[tuple[int, ...], float] = {}

    def _range(self, level: int, partial: int) -> float:
        """Completions of levels ``level..`` whose quantised sum puts the total in [s_lo, s_hi]."""
        c = self.C[level]
        a = max(self.s_lo - partial, 0)
        b = min(self.s_hi - partial, len(c) - 2)
        return float(c[b + 1] - c[a]) if b >= a else 0.0

    def weights(self, prefix: tuple[int, ...], options: Sequence[int]) -> np.ndarray:
        """``completions(prefix + (g,))`` for every ``g`` of ``options`` at once (no cache)."""
        lv, s = len(prefix), 0
        for i, g in enumerate(prefix):
            idx = np.searchsorted(self.options[i], g)
            if idx >= len(self.options[i]) or self.options[i][idx] != g:
                return np.zeros(len(options))
            s += int(self.q[i][idx])
        opts = self.options[lv]
        idx = np.searchsorted(opts, np.asarray(options, dtype=np.int64))
        valid = (idx < len(opts)) & (opts[np.minimum(idx, len(opts) - 1)] == np.asarray(options))
        q = self.q[lv][np.minimum(idx, len(opts) - 1)]
        c = self.C[lv + 1]
        end = len(c) - 1
        a = np.clip(self.s_lo - s - q, 0, end)
        b = np.clip(self.s_hi - s - q + 1, 0, end)
        return np.where(valid & (b > a), c[b] - c[a], 0.0)

    def completions(self, prefix: tuple[int, ...]) -> float:
        if len(self._cache) > 200_000:  # a long run's tree walks must not grow it without end
            self._cache.clear()
        if prefix not in self._cache:
            s = 0
            for lv, g in enumerate(prefix):
                idx = np.searchsorted(self.options[lv], g)
                if idx >= len(self.options[lv]) or self.options[lv][idx] != g:
                    return 0.0
                s += int(self.q[lv][idx])
            self._cache[prefix] = self._range(len(prefix), s)
        return self._cache[prefix]

    def draw_one(self, rng: np.random.Generator) -> tuple[int, ...]:
        """One proposal with scalar arithmetic (no per-level array overhead)."""
        genes, s = [], 0
        for lv in range(self.L):
            c, q, opts = self.Cl[lv + 1], self.ql[lv], self.optl[lv]
            end = len(c) - 1
            w = []
            for qv in q:
                a = min(max(self.s_lo - s - qv, 0), end)
                b = min(max(self.s_hi - s - qv + 1, 0), end)
                w.append(c[b] - c[a] if b > a else 0.0)
            u = rng.random() * sum(w)
            k, acc = 0, w[0]
            while acc <= u and k < len(w) - 1:
                k += 1
                acc += w[k]
            genes.append(opts[k])
            s += q[k]
        return tuple(genes)

    def draw(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` proposals (an ``(n, levels)`` gene array), vectorised over the batch."""
        genes = np.empty((n, self.L), dtype=np.int64)
        s = np.zeros(n, dtype=np.int64)
        for lv in range(self.L):
            c = self.C[lv + 1]
            end = len(c) - 1
            q = self.q[lv][None, :]
            a = np.clip(self.s_lo - s[:, None] - q, 0, end)
            b = np.clip(self.s_hi - s[:, None] - q + 1, 0, end)
            w = np.where(b > a, c[b] - c[a], 0.0)  # (n, options)
            cum = np.cumsum(w, axis=1)
            u = rng.random(n) * cum[:, -1]
            k = np.minimum((cum <= u[:, None]).sum(axis=1), w.shape[1] - 1)
            genes[:, lv] = self.options[lv][k]
            s += self.q[lv][k]
        return genes
