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
* **Pooling** (``pooling``, ``pooling-resnet18``, ``pooling-resnet50``): per layer the argmax
  resolution (possibly non-monotone, which is outside the space, as the thesis notes for DARTS);
  the derived architecture is the valid layout of largest total log-weight, i.e. the most
  likely layout under the per-layer distributions (the stem is fixed at full resolution).
  No skip rule (there are no skip ops); the eigenvalue rule still applies.
"""

from __future__ import annotations

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

    def build(self, num_classes: int, channels: int | None, cells: int | None, partial: int,
              aux_skip: bool) -> nn.Module:
        raise NotImplementedError

    def derive(self, weights: dict[str, np.ndarray], edge_weights: dict[str, np.ndarray] | None = None,
               ) -> tuple[Arch, dict[str, Any]]:
        """The discrete architecture of the mixing weights and details for the view."""
        raise NotImplementedError

    def skip_count(self, arch: Arch) -> int | None:
        return None


class DartsRelaxation(Relaxation):
    space_name = "darts"
    skip_threshold = 2

    def build(self, num_classes, channels, cells, partial, aux_skip):
        from nasbench_lab.spaces.darts import DartsSearchNetwork

        return DartsSearchNetwork(num_classes, channels or self.space.search_C, cells or self.space.search_layers,
                                  partial=partial, aux_skip=aux_skip)

    def derive(self, weights, edge_weights=None):
        from nasbench_lab.spaces.darts import STEPS, edge_index

        genes: list[int] = []
        for group in ("normal", "reduce"):
            w = np.asarray(weights[group], dtype=float)
            if edge_weights is not None:
                w = w * np.asarray(edge_weights[group], dtype=float)[:, None]
            for i in range(STEPS):
                cand = []
                for j in range(i + 2):
                    e = edge_index(j, i + 2)
                    k = 1 + int(np.argmax(w[e, 1:]))  # never "none"
                    cand.append((-w[e, k], j, k))
                best = sorted(cand)[:2]
                for _, j, k in sorted(best, key=lambda t: t[1]):
                    genes += [j, k]
        arch = self.space.arch(genes)
        return arch, {"skip_count": self.skip_count(arch)}

    def skip_count(self, arch):
        return self.space.skip_count(arch, "normal")


class NB201Relaxation(Relaxation):
    space_name = "nb201"
    skip_threshold = 3

    def build(self, num_classes, channels, cells, partial, aux_skip):
        from nasbench_lab.differentiable.networks import RelaxedNB201

        return RelaxedNB201(num_classes, channels or 16, cells or 5, partial=partial, aux_skip=aux_skip)

    def derive(self, weights, edge_weights=None):
        w = np.asarray(weights["cell"], dtype=float)
        arch = self.space.arch([int(k) for k in w.argmax(axis=1)])
        return arch, {"skip_count": self.skip_count(arch)}

    def skip_count(self, arch):
        return sum(self.space.option_label(i, g) == "skip_connect" for i, g in enumerate(arch.genes))


class PoolingRelaxation(Relaxation):
    unsupported = frozenset({"pcdarts", "darts-minus"})

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)
        self.space_name = space.name

    def build(self, num_classes, channels, cells, partial, aux_skip):
        from nasbench_lab.differentiable.networks import MultiResPooling

        return MultiResPooling(self.space.variant.name, num_classes)

    def derive(self, weights, edge_weights=None):
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
