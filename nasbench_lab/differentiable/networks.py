"""Relaxed networks beyond the DARTS search network (which lives with its space).

Every relaxed network answers the same calls, so one trainer drives them all:

* ``groups`` (names of the alpha tensors), ``op_names``, ``num_edges(group)``,
  ``edge_labels(group)``, ``node_edges(group)`` (edge indices into each node, or None when the
  network has no nodes that sum edges);
* ``forward(x, arch)`` runs one architecture (single path) and
  ``forward(x, weights=..., index=None, edge_weights=None, aux=0.0)`` the relaxation, with
  ``weights[group]`` of shape ``(num_edges, num_ops)``.

:class:`RelaxedNB201` is the NAS-Bench-201 supernet with 6 mixed edges of the 5 NB-201 ops on
the NB-201 macro skeleton (stem, 3 stages of N cells, stride-2 ResNet blocks between them, BN-ReLU
head), built from the NB-201 building blocks in :mod:`nasbench_lab.nn.ops`.

:class:`MultiResPooling` is the multi-resolution relaxation of the pooling space (thesis 003 eq
2.4-2.5): every layer after the stem runs at every resolution r with the *same* filters,

    h_{l+1} = sum_r softmax(alpha_l)_r * U_{2^r}( layer_l( S_{2^r}(h_l) ) ),

where S is max-pooling by 2^r (the space's downsampling op) and U nearest upsampling back to the
input size, so the feature map keeps its full resolution between layers. The stem is fixed at
full resolution, as in the thesis.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab.nn.ops import make_op
from nasbench_lab.spaces import Arch
from nasbench_lab.spaces.darts import MixedOp
from nasbench_lab.spaces.nb201 import EDGES as NB201_EDGES
from nasbench_lab.spaces.nb201 import OPS as NB201_OPS
from nasbench_lab.spaces.nb201 import macro_skeleton
from nasbench_lab.spaces.pooling import VARIANTS, PoolingResNet

__all__ = ["RelaxedNB201", "MultiResPooling"]


def _nb201_op(name: str, c: int, stride: int) -> nn.Module:
    # NB-201's DARTS baseline: non-affine BN inside the searched ops
    return make_op(name, c, c, stride, affine=False, track_running_stats=True)


class RelaxedCell(nn.Module):
    """An NB-201 cell whose 6 edges are :class:`MixedOp` over the NB-201 ops (all 5, or ``ops``)."""

    def __init__(self, C: int, partial: int = 1, aux_skip: bool = False, ops: Sequence[str] = NB201_OPS) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(MixedOp(self.ops, C, 1, partial=partial, builder=_nb201_op, aux_skip=aux_skip)
                                   for _ in NB201_EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None, index: Sequence[int] | None = None,
                edge_weights: torch.Tensor | None = None, aux: float = 0.0,
                genes: Sequence[int] | None = None) -> torch.Tensor:
        nodes = [x]
        for dst in (1, 2, 3):
            total = 0
            for k, (d, src) in enumerate(NB201_EDGES):
                if d != dst:
                    continue
                if genes is not None:
                    name = NB201_OPS[genes[k]]
                    if name == "none":
                        continue
                    if name not in self.ops:
                        raise ValueError(f"RelaxedCell: op {name!r} is not among this supernet's ops {self.ops}")
                    h = self.edges[k](nodes[src], op=self.ops.index(name))
                else:
                    h = self.edges[k](nodes[src], weights[k], None if index is None else int(index[k]), aux)
                    if edge_weights is not None:
                        h = edge_weights[k] * h
                total = total + h
            nodes.append(total if torch.is_tensor(total) else torch.zeros_like(x))
        return nodes[-1]


class RelaxedNB201(nn.Module):
    """NAS-Bench-201 supernet with mixed edges (``C`` channels, ``N`` cells per stage).

    ``ops``: the candidate ops of every edge, a subset of the NB-201 ops in their order (default
    all 5; FairDARTS drops ``none``); ``op_names`` and the weight columns follow it.
    """

    groups = ("cell",)

    def __init__(self, num_classes: int = 10, C: int = 16, N: int = 5, partial: int = 1,
                 aux_skip: bool = False, ops: Sequence[str] | None = None) -> None:
        super().__init__()
        if C < 1 or N < 1:
            raise ValueError(f"RelaxedNB201: C and N must be positive, got C={C}, N={N} (e.g. C=16, N=5)")
        ops = NB201_OPS if ops is None else tuple(ops)
        if not ops or any(o not in NB201_OPS for o in ops) or len(set(ops)) != len(ops):
            raise ValueError(f"RelaxedNB201: ops must be distinct NB-201 ops ({', '.join(NB201_OPS)}), got {ops!r}")
        self.op_names = tuple(o for o in NB201_OPS if o in ops)
        self.stem, self.layers, self.lastact, c_prev = macro_skeleton(
            C, N, lambda width: RelaxedCell(width, partial, aux_skip, self.op_names))
        self.classifier = nn.Linear(c_prev, num_classes)

    def num_edges(self, group: str) -> int:
        return len(NB201_EDGES)

    def edge_labels(self, group: str) -> list[str]:
        return [f"{src}→{dst}" for dst, src in NB201_EDGES]

    def node_edges(self, group: str) -> list[list[int]]:
        return [[k for k, (d, _) in enumerate(NB201_EDGES) if d == dst] for dst in (1, 2, 3)]

    def forward(self, x: torch.Tensor, arch: Arch | None = None, weights: dict[str, torch.Tensor] | None = None,
                index: dict[str, Sequence[int]] | None = None, edge_weights: dict[str, torch.Tensor] | None = None,
                aux: float = 0.0) -> torch.Tensor:
        if arch is None and weights is None:
            raise ValueError("RelaxedNB201.forward: give an arch (single path) or weights (relaxed)")
        x = self.stem(x)
        for layer in self.layers:
            if not isinstance(layer, RelaxedCell):
                x = layer(x)
            elif arch is not None:
                x = layer(x, genes=arch.genes)
            else:
                x = layer(x, weights["cell"], None if index is None else index["cell"],
                          None if edge_weights is None else edge_weights["cell"], aux)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.lastact(x), 1), 1))


class MultiResPooling(nn.Module):
    """Thesis eq 2.4-2.5 on a pooling-space ResNet (weights shared across resolutions).

    Group ``"layers"``: one edge per layer after the stem, one "op" per resolution level.
    ``forward(x, arch)`` runs the plain network with the arch's poolings (single path).
    """

    groups = ("layers",)

    def __init__(self, variant: str = "resnet20", num_classes: int = 10) -> None:
        super().__init__()
        self.variant = VARIANTS[variant]
        self.net = PoolingResNet(self.variant, num_classes)
        self.op_names = tuple(f"{r}x{r}" for r in self.variant.resolutions)

    def num_edges(self, group: str) -> int:
        return self.variant.depth - 1

    def edge_labels(self, group: str) -> list[str]:
        return [f"block{i}" for i in range(1, self.variant.depth)]

    def node_edges(self, group: str) -> None:
        return None

    def forward(self, x: torch.Tensor, arch: Arch | None = None, weights: dict[str, torch.Tensor] | None = None,
                index: dict[str, Sequence[int]] | None = None, edge_weights=None, aux: float = 0.0) -> torch.Tensor:
        if arch is not None:
            return self.net(x, arch)
        if weights is None:
            raise ValueError("MultiResPooling.forward: give an arch (single path) or weights (relaxed)")
        w = weights["layers"]
        idx = None if index is None else index["layers"]
        layers = self.net.layers
        h = layers[0](x)  # the stem stays at full resolution
        size = h.shape[-2:]
        for i, layer in enumerate(layers[1:]):
            levels = range(len(self.op_names)) if idx is None else (int(idx[i]),)
            out = 0
            for r in levels:
                f = 2 ** r
                y = layer(F.max_pool2d(h, f) if f > 1 else h)
                if f > 1:
                    y = F.interpolate(y, size=size, mode="nearest")
                out = out + w[i, r] * y
            h = out
        return self.net.classifier(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
