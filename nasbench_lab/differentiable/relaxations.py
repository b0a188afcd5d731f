"""What a differentiable method needs to know about a space: its relaxed network, how to read an
architecture off the mixing weights, and what "collapse" looks like there.

Derivation rules (documented choices):

* **DARTS cells** (``darts``): per edge the strength is the largest weight among the non-``none``
  ops (times the PC-DARTS edge weight when there is one); each intermediate node keeps its 2
  strongest incoming edges, each with its argmax non-``none`` op (DARTS' ``genotype()``).
  Collapse rule (DARTS+ criterion 1): >= 2 ``skip_connect`` edges in the derived normal cell.
* **NAS-Bench-201** (``nb201``): argmax over all 5 ops on each of the 6 edges, ``none``
  included, as the NB-201 paper's DARTS baseline does (a ``none`` edge is a legal NB-201 cell).
  Collapse rule: >= 3 of the 6 edges are ``skip_connect`` (half the cell parameter-free; the
  all-skip cell DARTS converges to scores 54.30 % on CIFAR-10).
* **FairDARTS** (``threshold``): as the reference's ``threshold_sparse`` parse, an op is kept only
  when its sigmoid weight reaches the threshold (0.85). On NB-201 an edge whose best op falls short
  becomes ``none``; on DARTS cells the genotype needs two inputs per node, so the edges are still
  chosen by DARTS' rule and ``details["below_threshold"]`` counts the chosen ops under the
  threshold (the reference would drop them: a deviation the genotype format forces).
* **Skip margins**: ``details["skip_margins"]`` gives, for every derived skip edge, how far its
  normalised weight leads the best other candidate of that edge (the ops the rule chooses among),
  so the collapse alarm can count only decided skips.
* **Pooling** (``pooling``, ``pooling-resnet18``, ``pooling-resnet50``): per layer the argmax
  resolution (possibly non-monotone, which is outside the space, as the thesis notes for DARTS);
  the derived architecture is the valid layout of largest total log-weight, i.e. the most
  likely layout under the per-layer distributions (the stem is fixed at full resolution).
  No skip rule (there are no skip ops); the eigenvalue rule still applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch.nn as nn

from nasbench_lab import spaces
from nasbench_lab.spaces import Arch, SearchSpace

__all__ = ["Relaxation", "get", "names"]


class Relaxation:
    """Base: a space, its relaxed network and its derivation rule."""

    space_name: str = ""
    #: number of skip edges at which the collapse alarm fires (None: no skip rule)
    skip_threshold: int | None = None
    #: methods that need module changes this relaxation cannot make
    unsupported: frozenset[str] = frozenset()

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    #: the candidate ops of the relaxed network, in the column order of its weights
    op_names: tuple[str, ...] = ()

    def build(self, num_classes: int, channels: int | None, cells: int | None, partial: int,
              aux_skip: bool, ops: Sequence[str] | None = None) -> nn.Module:
        """The relaxed network; ``ops`` a subset of :attr:`op_names` (FairDARTS: without ``none``)."""
        raise NotImplementedError

    def ops_without_none(self) -> tuple[str, ...] | None:
        """The candidate ops minus ``none`` (None when the space has no ``none`` op)."""
        return tuple(o for o in self.op_names if o != "none") if "none" in self.op_names else None

    def derive(self, weights: dict[str, np.ndarray], edge_weights: dict[str, np.ndarray] | None = None,
               ops: Sequence[str] | None = None, threshold: float | None = None) -> tuple[Arch, dict[str, Any]]:
        """The discrete architecture of the mixing weights and details for the view.

        ``ops`` names the weight columns (default: all of :attr:`op_names`); ``threshold`` is
        FairDARTS' sigmoid threshold (see the module docstring)."""
        raise NotImplementedError

    def skip_count(self, arch: Arch) -> int | None:
        return None

    def _columns(self, ops: Sequence[str] | None, width: int) -> list[str]:
        cols = list(ops) if ops is not None else list(self.op_names)
        if len(cols) != width or any(c not in self.op_names for c in cols):
            raise ValueError(f"derive: ops {cols} do not name the {width} weight columns of {self.space_name} "
                             f"(valid ops: {', '.join(self.op_names)})")
        return cols


def _lead(row: np.ndarray, k: int, candidates: Sequence[int]) -> float:
    """How far column ``k`` of ``row`` (normalised to sum 1) leads the best other candidate."""
    p = np.clip(np.asarray(row, dtype=float), 0.0, None)
    p = p / max(float(p.sum()), 1e-12)
    others = [p[j] for j in candidates if j != k]
    return float(p[k] - max(others)) if others else 1.0


class DartsRelaxation(Relaxation):
    space_name = "darts"
    skip_threshold = 2

    @property
    def op_names(self) -> tuple[str, ...]:  # type: ignore[override]
        from nasbench_lab.spaces.darts import PRIMITIVES

        return PRIMITIVES

    def build(self, num_classes, channels, cells, partial, aux_skip, ops=None):
        from nasbench_lab.spaces.darts import DartsSearchNetwork

        return DartsSearchNetwork(num_classes, channels or self.space.search_C, cells or self.space.search_layers,
                                  partial=partial, aux_skip=aux_skip, ops=ops)

    def derive(self, weights, edge_weights=None, ops=None, threshold=None):
        from nasbench_lab.spaces.darts import PRIMITIVES, STEPS, edge_index

        genes: list[int] = []
        margins: list[float] = []
        below = 0
        for group in ("normal", "reduce"):
            w = np.asarray(weights[group], dtype=float)
            cols = self._columns(ops, w.shape[1])
            cand_cols = [c for c, name in enumerate(cols) if name != "none"]  # never "none"
            raw = w
            if edge_weights is not None:
                w = w * np.asarray(edge_weights[group], dtype=float)[:, None]
            for i in range(STEPS):
                cand = []
                for j in range(i + 2):
                    e = edge_index(j, i + 2)
                    c = cand_cols[int(np.argmax(w[e, cand_cols]))]
                    cand.append((-w[e, c], j, c, e))
                best = sorted(cand)[:2]
                for _, j, c, e in sorted(best, key=lambda t: t[1]):
                    genes += [j, PRIMITIVES.index(cols[c])]
                    if threshold is not None and raw[e, c] < threshold:
                        below += 1
                    if group == "normal" and cols[c] == "skip_connect":
                        margins.append(_lead(raw[e], c, cand_cols))
        arch = self.space.arch(genes)
        details: dict[str, Any] = {"skip_count": self.skip_count(arch), "skip_margins": margins}
        if threshold is not None:
            details["below_threshold"] = below
        return arch, details

    def skip_count(self, arch):
        return self.space.skip_count(arch, "normal")


class NB201Relaxation(Relaxation):
    space_name = "nb201"
    skip_threshold = 3

    @property
    def op_names(self) -> tuple[str, ...]:  # type: ignore[override]
        from nasbench_lab.spaces.nb201 import OPS

        return OPS

    def build(self, num_classes, channels, cells, partial, aux_skip, ops=None):
        from nasbench_lab.differentiable.networks import RelaxedNB201

        return RelaxedNB201(num_classes, channels or 16, cells or 5, partial=partial, aux_skip=aux_skip, ops=ops)

    def derive(self, weights, edge_weights=None, ops=None, threshold=None):
        w = np.asarray(weights["cell"], dtype=float)
        cols = self._columns(ops, w.shape[1])
        genes, margins = [], []
        for row in w:
            c = int(np.argmax(row))
            name = cols[c] if threshold is None or row[c] >= threshold else "none"
            genes.append(self.op_names.index(name))
            if name == "skip_connect":
                margins.append(_lead(row, c, range(len(cols))))
        arch = self.space.arch(genes)
        return arch, {"skip_count": self.skip_count(arch), "skip_margins": margins}

    def skip_count(self, arch):
        return sum(self.space.option_label(i, g) == "skip_connect" for i, g in enumerate(arch.genes))


class PoolingRelaxation(Relaxation):
    unsupported = frozenset({"pcdarts", "darts-minus"})

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)
        self.space_name = space.name
        self.op_names = tuple(f"{r}x{r}" for r in space.variant.resolutions)

    def build(self, num_classes, channels, cells, partial, aux_skip, ops=None):
        from nasbench_lab.differentiable.networks import MultiResPooling

        return MultiResPooling(self.space.variant.name, num_classes)

    def derive(self, weights, edge_weights=None, ops=None, threshold=None):
        w = np.asarray(weights["layers"], dtype=float)
        p = w / np.clip(w.sum(axis=1, keepdims=True), 1e-12, None)
        logp = np.log(np.clip(p, 1e-12, None))
        best, best_score = None, -np.inf
        for arch in self.space.enumerate():
            levels = self.space.levels(arch)[1:]  # the stem is fixed at level 0
            score = float(logp[np.arange(len(levels)), levels].sum())
            if score > best_score:
                best, best_score = arch, score
        return best, {"levels": [0] + [int(k) for k in w.argmax(axis=1)], "skip_count": None}


_BY_SPACE = {"darts": DartsRelaxation, "nb201": NB201Relaxation, "pooling": PoolingRelaxation,
             "pooling-resnet18": PoolingRelaxation, "pooling-resnet50": PoolingRelaxation}


def names() -> list[str]:
    """Spaces with a relaxation."""
    return list(_BY_SPACE)


def get(space: str | SearchSpace) -> Relaxation:
    """The relaxation of a space (by name or instance)."""
    name = space.name if isinstance(space, SearchSpace) else str(space)
    if name not in _BY_SPACE:
        raise ValueError(f"space: no differentiable relaxation for {name!r}; valid: {', '.join(_BY_SPACE)} "
                         "(e.g. space='nb201')")
    if name == "darts" and "darts" not in spaces.names():
        spaces.register("darts", "nasbench_lab.spaces.darts", "DartsSpace")
    sp = space if isinstance(space, SearchSpace) else spaces.get(name)
    return _BY_SPACE[name](sp)
