"""Pareto fronts: non-dominated sorting, crowding distance and hypervolume (all *minimisation*).

Non-dominated sorting and the hypervolume come from ``moocore`` (López-Ibáñez et al.'s C
implementations, the reference code behind most hypervolume numbers in the literature); the
crowding distance is NSGA-II's (Deb et al. 2002, §III-B) and is written here because it is three
lines on top of a sort. Objectives to maximise (accuracy) are negated by the caller
(:class:`Objectives`), and every objective is scaled to [0, 1] over the space before a
hypervolume is taken, so hypervolumes of different spaces and objectives read alike
(reference point ``(1, ..., 1)``: the worst value of every objective).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import moocore
import numpy as np

__all__ = ["nondominated", "pareto_ranks", "crowding_distance", "hypervolume", "Objectives", "OBJECTIVES"]

#: objective names: "acc" is maximised (the evaluator's answer), the costs are minimised
OBJECTIVES = ("acc", "flops", "params", "latency")


def _points(F: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.ndim != 2:
        raise ValueError(f"points: expected an (n, objectives) array, got shape {F.shape}")
    return F


def nondominated(F: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Boolean mask of the points no other point dominates (duplicates of a front point all kept)."""
    F = _points(F)
    if not len(F):
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(F, keep_weakly=True), dtype=bool)


def pareto_ranks(F: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Front index of every point (0 = non-dominated, 1 = non-dominated once front 0 is removed, ...)."""
    F = _points(F)
    if not len(F):
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(F), dtype=int)


def crowding_distance(F: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """NSGA-II crowding distance within one front: per objective, sort the points, give the two
    extremes infinity, and add ``(f[i+1] - f[i-1]) / (f_max - f_min)`` to every inner point."""
    F = _points(F)
    n, m = F.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        f = F[order, j]
        span = f[-1] - f[0]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (f[2:] - f[:-2]) / span
    return d


def hypervolume(F: np.ndarray | Sequence[Sequence[float]], ref: Sequence[float] | float = 1.0) -> float:
    """Volume dominated by the points and bounded by ``ref`` (points beyond ``ref`` add nothing)."""
    F = _points(F)
    ref_arr = np.broadcast_to(np.asarray(ref, dtype=float), (F.shape[1],)) if len(F) else np.asarray(ref)
    if not len(F):
        return 0.0
    inside = np.all(F < ref_arr, axis=1)
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(F[inside], ref=ref_arr))


@dataclass(frozen=True)
class Objectives:
    """Named objectives of a space, mapped to a minimisation vector scaled to [0, 1].

    ``names`` start with ``"acc"`` (maximised) or list only costs; ``lows``/``highs`` are each
    objective's range over the space (accuracy: the table's; a cost: its cost model's bounds).
    ``scale(values)`` maps raw values (accuracy in %, costs in counts or ms) to the unit cube with 0
    the best, so the hypervolume with reference ``(1, ..., 1)`` lies in [0, 1].
    """

    names: tuple[str, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]

    @staticmethod
    def parse(spec: str | Sequence[str]) -> tuple[str, ...]:
        """``"acc,flops"`` or ``["acc", "flops"]`` -> ``("acc", "flops")``, checked."""
        items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if str(s).strip()]
        if len(items) < 2:
            raise ValueError(f"objectives: expected at least two of {', '.join(OBJECTIVES)}, got {spec!r} "
                             "(e.g. 'acc,flops')")
        bad = [s for s in items if s not in OBJECTIVES]
        if bad:
            raise ValueError(f"objectives: unknown {bad}; valid: {', '.join(OBJECTIVES)} (e.g. 'acc,flops')")
        if len(set(items)) != len(items):
            raise ValueError(f"objectives: {items} names one objective twice")
        return tuple(items)

    def scale(self, values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        V = np.atleast_2d(np.asarray(values, dtype=float))
        lo, hi = np.asarray(self.lows), np.asarray(self.highs)
        span = np.where(hi > lo, hi - lo, 1.0)
        out = (V - lo) / span
        maximise = np.array([n == "acc" for n in self.names])
        out[:, maximise] = 1.0 - out[:, maximise]
        return out
