"""The DARTS cell space (Liu et al. 2019; seed 002 §3, 001 §2.2.4).

A network stacks two cell types: *normal* cells keep the resolution, *reduction* cells halve it
and double the channels. A cell has two input nodes (``0`` = the output of the cell before the
previous one, c_{k-2}; ``1`` = the previous cell, c_{k-1}) and four intermediate nodes ``2..5``;
each intermediate node sums two edges, each edge = (an earlier node, an op). The cell output
concatenates the four intermediate nodes.

Genes (32): for the normal cell, then the reduction cell, for each intermediate node
``input_a, op_a, input_b, op_b`` with ``input_a < input_b`` and ops indexed in :data:`PRIMITIVES`
(never 0 = ``none``: a derived genotype never uses it). The two edges into a node are summed, so
their order carries no meaning; the canonical text lists them by ascending input, and
``parse`` reorders pasted genotypes (the published DARTS_V2 lists node 3 as ``(..., 1), (..., 0)``).
Two edges into one node from the same input are outside the space (DARTS derivation keeps two
*distinct* predecessors). Size: per cell ``C(2,2)*C(3,2)*C(4,2)*C(5,2) * 7**8 = 180 * 7**8``,
squared for the two cells: about 1.08e18 (not enumerable).

Text (the genotype everyone pastes, also with ``range(2, 6)`` as concat)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

Networks:

* ``model(arch)``: the DARTS CIFAR evaluation network (20 cells, C=36, reductions at 1/3 and
  2/3 of the depth, optional auxiliary head after the second reduction, drop-path). ``params``
  counts it *without* the auxiliary head, as DARTS reports (DARTS_V2: 3,349,342 ~ 3.3M).
* ``supernet()``: the DARTS search network (8 cells, C=16, 14 mixed edges per cell type, 8 ops
  each), :class:`DartsSearchNetwork`. ``net(x, arch)`` runs one path (single-path weight
  sharing: each node sums the two chosen edges with the chosen ops); ``net(x, weights=...)``
  is the relaxed forward used by ``nasbench_lab.differentiable``.

The ops come from :mod:`nasbench_lab.nn.ops` (the same parameter counts as DARTS'
``operations.py``: DARTS_V2 gives the published 3.3M).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab import validation as V
from nasbench_lab.nn import ops
from nasbench_lab.nn.ops import FactorizedReduce, ReLUConvBN, Zero
from nasbench_lab.spaces.base import MAX_ARCH_CHARS, Arch, SearchSpace

__all__ = [
    "PRIMITIVES", "DARTS_V1", "DARTS_V2", "DartsSpace", "DartsSearchNetwork", "DartsNetwork",
    "MixedOp", "make_op", "edge_index", "EDGES", "STEPS",
]

#: the eight candidate ops, in DARTS' order
PRIMITIVES: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
#: intermediate nodes per cell
STEPS = 4
#: the 14 edges (source, target node) of the search cell, nodes 0..1 are the cell inputs
EDGES: tuple[tuple[int, int], ...] = tuple((j, i + 2) for i in range(STEPS) for j in range(i + 2))
CELLS = ("normal", "reduce")
GENES_PER_CELL = 4 * STEPS

DARTS_V1 = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
#: the published second-order DARTS genotype (3.3M parameters, 2.76 % CIFAR-10 error)
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def edge_index(source: int, node: int) -> int:
    """Position in :data:`EDGES` of the edge ``source -> node`` (node in 2..5)."""
    i = node - 2
    return i * (i + 3) // 2 + source


# ----------------------------------------------------------------------------- ops
def make_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """One DARTS op (from :mod:`nasbench_lab.nn.ops`). In search networks (``affine=False``)
    pooling is followed by a non-affine BN, as in DARTS' ``model_search.py``."""
    if name not in PRIMITIVES:
        raise ValueError(f"make_op: unknown op {V.shorten(name)}; valid: {', '.join(PRIMITIVES)}")
    op = ops.make_op(name, channels, channels, stride, affine=affine)
    if not affine and "pool" in name:
        return nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
    return op


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a path with probability ``drop_prob`` (scaled to keep the mean)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


# ----------------------------------------------------------------------------- the relaxed edge
class MixedOp(nn.Module):
    """One relaxed edge: ``sum_k w_k * op_k(x)`` over candidate ops.

    ``forward(x, w=None, index=None, aux=0.0, op=None)``:

    * ``op`` (int): single path, only ``op_k(x)`` (weight-sharing supernet);
    * ``index`` (int): hard sample (GDAS), only ``op_index(x)`` is computed; as in GDAS'
      reference ``forward_gdas`` the output is ``w[index] * op_index(x) + sum_{k != index} w[k]``:
      the unselected hard weights are 0 in value but carry the straight-through gradient
      (``dL/dw_k = sum dL/d out``) to every logit of the edge, not only the selected one;
    * otherwise the weighted sum over all ops.

    ``partial`` = K > 1 (PC-DARTS): only the first C/K channels go through the ops, the rest
    bypass (max-pooled when the edge strides) and the channels are shuffled. ``aux`` > 0
    (DARTS-) adds ``aux * skip(x)`` from an auxiliary skip connection outside the mixture.
    ``op_names`` may be any op set; ``builder(name, channels, stride)`` builds one op.
    """

    def __init__(self, op_names: Sequence[str], channels: int, stride: int = 1, partial: int = 1,
                 builder=None, aux_skip: bool = False) -> None:
        super().__init__()
        if partial < 1 or channels % partial:
            raise ValueError(f"MixedOp: partial={partial} must divide channels={channels} (e.g. partial=4 for 16)")
        build = builder or (lambda name, c, s: make_op(name, c, s, affine=False))
        self.op_names = tuple(op_names)
        self.stride = stride
        self.partial = partial
        self.ops = nn.ModuleList(build(name, channels // partial, stride) for name in self.op_names)
        self.aux = None
        if aux_skip:
            self.aux = nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, affine=False)

    def _mix(self, x: torch.Tensor, w: torch.Tensor | None, index: int | None) -> torch.Tensor:
        if index is not None:
            out = self.ops[index](x)
            if w is None:
                return out
            rest = torch.cat([w[:index], w[index + 1:]]).sum()  # 0 in value, straight-through in gradient
            return w[index] * out + rest
        # "none" (Zero) adds w_k * 0: nothing to the value (x + 0 is exact) and nothing to any
        # gradient (d out / d w_k = 0), so it is left out of the sum: one multiply and one add of a
        # full activation less per edge, and the sum keeps the layout of a real op's output
        terms = [w[k] * op(x) for k, op in enumerate(self.ops) if not isinstance(op, Zero)]
        if not terms:  # an all-"none" op set
            return w[0] * self.ops[0](x)
        return sum(terms[1:], terms[0])

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None, index: int | None = None,
                aux: float = 0.0, op: int | None = None) -> torch.Tensor:
        if op is not None:
            index, w = op, None
        elif w is None:
            raise ValueError("MixedOp.forward: give weights w (relaxed) or op (single path)")
        if self.partial > 1:
            c = x.shape[1] // self.partial
            y = self._mix(x[:, :c], w, index)
            rest = x[:, c:]
            if self.stride > 1:
                rest = F.max_pool2d(rest, 2, 2)
            out = channel_shuffle(torch.cat([y, rest], dim=1), self.partial)
        else:
            out = self._mix(x, w, index)
        if aux and self.aux is not None:
            out = out + aux * self.aux(x)
        return out


# ----------------------------------------------------------------------------- search network
class SearchCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                 partial: int = 1, aux_skip: bool = False, ops: Sequence[str] = PRIMITIVES) -> None:
        super().__init__()
        self.reduction = reduction
        self.ops = tuple(ops)
        self.pre0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedOp(self.ops, c, 2 if reduction and src < 2 else 1, partial=partial, aux_skip=aux_skip)
            for src, _ in EDGES)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None = None,
                index: Sequence[int] | None = None, edge_weights: torch.Tensor | None = None,
                aux: float = 0.0, genes: Sequence[int] | None = None) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(STEPS):
            if genes is not None:  # single path: the two chosen (input, op) edges
                a, oa, b, ob = genes[4 * i:4 * i + 4]
                s = (self.edges[edge_index(a, i + 2)](states[a], op=self._column(oa))
                     + self.edges[edge_index(b, i + 2)](states[b], op=self._column(ob)))
            else:
                s = 0
                for j in range(i + 2):
                    e = edge_index(j, i + 2)
                    h = self.edges[e](states[j], weights[e], None if index is None else int(index[e]), aux)
                    s = s + (h if edge_weights is None else edge_weights[e] * h)
            states.append(s)
        return torch.cat(states[2:], dim=1)

    def _column(self, gene: int) -> int:
        name = PRIMITIVES[gene]
        if name not in self.ops:
            raise ValueError(f"SearchCell: op {name!r} is not among this supernet's ops {self.ops}")
        return self.ops.index(name)


class DartsSearchNetwork(nn.Module):
    """The DARTS search network: ``layers`` cells (reductions at 1/3 and 2/3), ``C`` channels.

    ``forward(x, arch)`` runs one architecture's path; ``forward(x, weights=..., index=...,
    edge_weights=..., aux=...)`` the relaxation, with ``weights = {"normal": (14, 8),
    "reduce": (14, 8)}`` mixing weights (and optional GDAS hard indices, PC-DARTS edge weights
    and DARTS- auxiliary skip weight). ``partial`` (PC-DARTS) and ``aux_skip`` (DARTS-) are set
    at construction because they change the modules; ``ops`` (a subset of :data:`PRIMITIVES` in
    their order; FairDARTS drops ``none``) sets the candidate ops and the weight columns.
    """

    groups = CELLS

    def __init__(self, num_classes: int = 10, C: int = 16, layers: int = 8, stem_multiplier: int = 3,
                 partial: int = 1, aux_skip: bool = False, ops: Sequence[str] | None = None) -> None:
        super().__init__()
        if layers < 3:
            raise ValueError(f"DartsSearchNetwork: layers must be >= 3 (two of them reduce), got {layers}")
        ops = PRIMITIVES if ops is None else tuple(ops)
        if not ops or any(o not in PRIMITIVES for o in ops) or len(set(ops)) != len(ops):
            raise ValueError(f"DartsSearchNetwork: ops must be distinct DARTS ops ({', '.join(PRIMITIVES)}), "
                             f"got {ops!r}")
        self.op_names = tuple(o for o in PRIMITIVES if o in ops)
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(c_pp, c_p, c_curr, reduction, reduction_prev, partial, aux_skip,
                                         self.op_names))
            reduction_prev = reduction
            c_pp, c_p = c_p, STEPS * c_curr
        self.classifier = nn.Linear(c_p, num_classes)

    def num_edges(self, group: str) -> int:
        return len(EDGES)

    def edge_labels(self, group: str) -> list[str]:
        """Edge names as in DARTS' cell plots (intermediate nodes 0..3, as in :meth:`DartsSpace.graph`)."""
        return [f"{_plot_name(j)}→{i - 2}" for j, i in EDGES]

    def node_edges(self, group: str) -> list[list[int]]:
        """Edge indices into each intermediate node (for edge normalisation and derivation)."""
        return [[edge_index(j, i + 2) for j in range(i + 2)] for i in range(STEPS)]

    def forward(self, x: torch.Tensor, arch: Arch | None = None, weights: dict[str, torch.Tensor] | None = None,
                index: dict[str, Sequence[int]] | None = None,
                edge_weights: dict[str, torch.Tensor] | None = None, aux: float = 0.0) -> torch.Tensor:
        if arch is None and weights is None:
            raise ValueError("DartsSearchNetwork.forward: give an arch (single path) or weights (relaxed)")
        genes = arch.genes if arch is not None else None
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            g = "reduce" if cell.reduction else "normal"
            if genes is not None:
                off = GENES_PER_CELL * CELLS.index(g)
                s0, s1 = s1, cell(s0, s1, genes=genes[off:off + GENES_PER_CELL])
            else:
                s0, s1 = s1, cell(s0, s1, weights[g], None if index is None else index[g],
                                  None if edge_weights is None else edge_weights[g], aux)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(s1, 1), 1))


# ----------------------------------------------------------------------------- evaluation network
class EvalCell(nn.Module):
    def __init__(self, genes: Sequence[int], c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.inputs: list[int] = []
        ops = []
        for i in range(STEPS):
            for a, o in ((genes[4 * i], genes[4 * i + 1]), (genes[4 * i + 2], genes[4 * i + 3])):
                ops.append(make_op(PRIMITIVES[o], c, 2 if reduction and a < 2 else 1, affine=True))
                self.inputs.append(a)
        self.ops = nn.ModuleList(ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(STEPS):
            hs = []
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.inputs[k]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[k], nn.Identity | ops.Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat(states[2:], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier (expects 8x8 input)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(nn.Module):
    """DARTS' ``NetworkCIFAR``: evaluation network of one genotype.

    ``forward(x)`` returns the logits; with ``auxiliary=True`` in training mode it returns
    ``(logits, aux_logits)``. ``drop_path_prob`` is an attribute (DARTS ramps it up per epoch).
    """

    def __init__(self, arch: Arch, num_classes: int = 10, C: int = 36, layers: int = 20,
                 auxiliary: bool = False, drop_path_prob: float = 0.0, stem_multiplier: int = 3) -> None:
        super().__init__()
        self.drop_path_prob = drop_path_prob
        self.auxiliary = auxiliary
        genes = arch.genes
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        self.aux_after = 2 * layers // 3
        c_aux = None
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            g = genes[GENES_PER_CELL:] if reduction else genes[:GENES_PER_CELL]
            self.cells.append(EvalCell(g, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, STEPS * c_curr
            if i == self.aux_after:
                c_aux = c_p
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        aux_logits = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_after and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(F.adaptive_avg_pool2d(s1, 1), 1))
        return (logits, aux_logits) if aux_logits is not None else logits


# ----------------------------------------------------------------------------- text
_NODE_NAMES = {0: "c_{k-2}", 1: "c_{k-1}"}
_OP_INDEX = {name: i for i, name in enumerate(PRIMITIVES)}


def _node_name(n: int) -> str:
    return _NODE_NAMES.get(n, str(n))


def _plot_name(n: int) -> str:
    """Genotype node index -> DARTS plot name (c_{k-2}, c_{k-1}, 0, 1, 2, 3)."""
    return _NODE_NAMES.get(n, str(n - 2))


#: longest genotype text accepted (the published ones are ~450 characters): the bound of every space
MAX_GENOTYPE_CHARS = MAX_ARCH_CHARS
_GENOTYPE_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
_TOKEN = re.compile(r"""\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]{0,31})|(?P<int>[+-]?\d{1,20})(?![\d.eE])
                      |'(?P<sq>[^'\\\n]{0,40})'|"(?P<dq>[^"\\\n]{0,40})"|(?P<punct>[()\[\],=]))""", re.X)


class _Tokens:
    """Tokens of genotype text, read one at a time as the parser asks (so an error says what the
    parser expected at that character): names, small integers, quoted op names and ``()[],=``."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0
        self._next: tuple[str, Any, int] | None = None

    def peek(self) -> tuple[str, Any, int]:
        if self._next is None:
            rest = self.text[self.pos:]
            at = self.pos + len(rest) - len(rest.lstrip())
            m = _TOKEN.match(self.text, self.pos) if rest.strip() else None
            if not rest.strip():
                self._next = ("end", None, -1)
            elif m is None:
                self._next = ("bad", self.text[at:at + 12], at)
            else:
                kind = m.lastgroup or ""
                value: Any = m.group(kind)
                start = m.start(kind)
                if kind == "int":
                    value = int(value)
                elif kind in ("sq", "dq"):
                    kind, start = "str", start - 1
                self._next = (kind, value, start)
                self._end = m.end()
        return self._next

    def _advance(self) -> None:
        self.pos = self._end
        self._next = None

    def take(self, kind: str, value: Any = None, what: str = "") -> Any:
        k, v, at = self.peek()
        if k != kind or (value is not None and v != value):
            got = "the end of the text" if k == "end" else repr(v)
            raise ValueError(f"expected {what or repr(value) or kind} at character {at}, got {got}" if at >= 0
                             else f"expected {what or repr(value) or kind}, got {got}")
        self._advance()
        return v

    def punct(self, ch: str) -> bool:
        k, v, _ = self.peek()
        if k == "punct" and v == ch:
            self._advance()
            return True
        return False


def _seq(tok: _Tokens, item, what: str) -> list:
    """``[a, b, ...]`` or ``(a, b, ...)`` (a trailing comma allowed) of ``item(tok)``."""
    close = "]" if tok.punct("[") else ")" if tok.punct("(") else None
    if close is None:
        tok.take("punct", "[", f"'[' to open {what}")
    out: list = []
    while not tok.punct(close):
        if len(out) >= 16:
            raise ValueError(f"{what}: too many entries (a genotype cell has 8 pairs)")
        out.append(item(tok))
        if not tok.punct(","):
            tok.take("punct", close, f"',' or {close!r} in {what}")
            break
    return out


def _pair(tok: _Tokens) -> tuple[str, int]:
    close = "]" if tok.punct("[") else ")" if tok.punct("(") else None
    if close is None:
        tok.take("punct", "(", "an (op, input) pair such as ('sep_conv_3x3', 0)")
    op = tok.take("str", what="a quoted op name such as 'sep_conv_3x3'")
    tok.take("punct", ",", "',' between op and input")
    src = tok.take("int", what="an input node number such as 0")
    tok.punct(",")
    tok.take("punct", close, f"{close!r} to close the pair")
    return op, src


def _concat(tok: _Tokens, what: str) -> list[int]:
    """``[2, 3, 4, 5]`` or ``range(a[, b])``: a range is read as its two bounds, never expanded
    beyond the few nodes a cell has."""
    if tok.peek()[:2] == ("name", "range"):
        tok.take("name", "range")
        tok.take("punct", "(", "'(' after range")
        bounds = [tok.take("int", what="an integer bound of range(...)")]
        if tok.punct(","):
            bounds.append(tok.take("int", what="an integer bound of range(...)"))
        tok.punct(",")
        tok.take("punct", ")", "')' to close range(...)")
        r = range(*bounds)
        if len(r) > 16:
            raise ValueError(f"{what}: range({', '.join(map(str, bounds))}) is not a cell's node list (2..5)")
        return list(r)
    return _seq(tok, lambda t: t.take("int", what="a node number"), what)


def parse_genotype(text: str) -> dict[str, list]:
    """``{"normal": [(op, input), ...], "normal_concat": [...], "reduce": ..., "reduce_concat": ...}``.

    A grammar, not an evaluator (DESIGN.md, "Trust boundaries")::

        genotype := "Genotype" "(" field ("," field)* [","] ")"
        field    := [name "="] (cells | concat)        positional fields in the order above
        cells    := "[" pair ("," pair)* [","] "]"       ( "(" ... ")" also accepted )
        pair     := "(" quoted-op "," integer [","] ")"
        concat   := "[" integer ("," integer)* [","] "]" | "range" "(" integer ["," integer] ")"

    Integers have at most 20 digits and quoted names at most 40 characters; the whole text at most
    :data:`MAX_GENOTYPE_CHARS`. Anything else is a ValueError saying where it went wrong.
    """
    if len(text) > MAX_GENOTYPE_CHARS:
        raise ValueError(f"genotype text of {len(text)} characters; a genotype has at most {MAX_GENOTYPE_CHARS}")
    tok = _Tokens(text)
    tok.take("name", "Genotype", "'Genotype('")
    tok.take("punct", "(", "'(' after Genotype")
    values: dict[str, list] = {}
    position = 0
    while not tok.punct(")"):
        k, v, _ = tok.peek()
        name = None
        if k == "name" and v != "range":
            name = tok.take("name")
            if name not in _GENOTYPE_FIELDS:
                raise ValueError(f"unknown field {V.shorten(name)} (fields: {', '.join(_GENOTYPE_FIELDS)})")
            tok.take("punct", "=", f"'=' after {name}")
        else:
            if name is None and values and any(f in values for f in _GENOTYPE_FIELDS[position:]):
                raise ValueError("a positional field after keyword fields")
            if position >= len(_GENOTYPE_FIELDS):
                raise ValueError(f"too many fields (fields: {', '.join(_GENOTYPE_FIELDS)})")
            name = _GENOTYPE_FIELDS[position]
        if name in values:
            raise ValueError(f"field {V.shorten(name)} given twice")
        position += 1
        values[name] = _concat(tok, name) if name.endswith("_concat") else _seq(tok, _pair, name)
        if not tok.punct(","):
            tok.take("punct", ")", "',' or ')' after a field")
            break
    if tok.peek()[0] != "end":
        raise ValueError(f"unexpected {tok.peek()[1]!r} after the closing ')'")
    missing = [f for f in _GENOTYPE_FIELDS if f not in values]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    return values


# ----------------------------------------------------------------------------- space
class DartsSpace(SearchSpace):
    """The DARTS normal + reduction cell space (see the module docstring)."""

    name = "darts"
    description = "DARTS cells: normal + reduction, 4 nodes x 2 edges, 7 ops (~1.1e18 architectures)"
    example = DARTS_V2
    product_space = False
    ops = PRIMITIVES

    def __init__(self, C: int = 36, layers: int = 20, search_C: int = 16, search_layers: int = 8) -> None:
        self.C, self.layers = int(C), int(layers)
        self.search_C, self.search_layers = int(search_C), int(search_layers)

    # ----------------------------------------------------------------- decision tree
    @property
    def num_levels(self) -> int:
        return 2 * GENES_PER_CELL

    @staticmethod
    def _where(level: int) -> tuple[str, int, int]:
        cell = CELLS[level // GENES_PER_CELL]
        r = level % GENES_PER_CELL
        return cell, r // 4, r % 4

    def level_options(self, prefix: Sequence[int]) -> Sequence[int]:
        level = len(prefix)
        if level >= self.num_levels:
            return []
        _, node, pos = self._where(level)
        if pos == 0:
            return list(range(0, node + 1))  # the second input must stay above the first
        if pos == 2:
            return list(range(int(prefix[-2]) + 1, node + 2))
        return list(range(1, len(PRIMITIVES)))

    def decision_blocks(self) -> list[tuple[int, int]]:
        """Level ranges ``[lo, hi)`` whose joint options do not depend on earlier levels: one per
        intermediate node (its two inputs and two ops). Samplers that need independent groups of
        decisions (strict fairness) use them."""
        return [(lo, lo + 4) for lo in range(0, self.num_levels, 4)]

    def level_name(self, level: int) -> str:
        cell, node, pos = self._where(level)
        edge = "a" if pos < 2 else "b"
        return f"{cell} node {node + 2} edge {edge} {'input' if pos % 2 == 0 else 'op'}"

    def option_label(self, level: int, gene: int) -> str:
        _, _, pos = self._where(level)
        return _node_name(gene) if pos % 2 == 0 else PRIMITIVES[gene]

    @cached_property
    def size(self) -> int:
        per_cell = math.prod(math.comb(i + 2, 2) for i in range(STEPS)) * (len(PRIMITIVES) - 1) ** (2 * STEPS)
        return per_cell ** 2

    @cached_property
    def level_sizes(self) -> list[list[int]]:
        out = []
        for level in range(self.num_levels):
            _, node, pos = self._where(level)
            out.append(list(range(0, node + 1)) if pos == 0 else list(range(1, node + 2)) if pos == 2
                       else list(range(1, len(PRIMITIVES))))
        return out

    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        """Uniform over the space: per node a uniform pair of distinct inputs and two uniform ops."""
        rng = np.random.default_rng(rng)
        genes: list[int] = []
        for _ in CELLS:
            for i in range(STEPS):
                a, b = sorted(int(v) for v in rng.choice(i + 2, size=2, replace=False))
                oa, ob = (int(v) for v in rng.integers(1, len(PRIMITIVES), size=2))
                genes += [a, oa, b, ob]
        return self.arch(genes)

    # ----------------------------------------------------------------- text
    def format(self, genes: Sequence[int]) -> str:
        parts = []
        for c, cell in enumerate(CELLS):
            g = genes[c * GENES_PER_CELL:(c + 1) * GENES_PER_CELL]
            pairs = ", ".join(f"('{PRIMITIVES[g[k + 1]]}', {g[k]})" for k in range(0, GENES_PER_CELL, 2))
            parts.append(f"{cell}=[{pairs}], {cell}_concat=[2, 3, 4, 5]")
        return f"Genotype({', '.join(parts)})"

    def _parse_genes(self, text: str) -> tuple[int, ...]:
        values = parse_genotype(text)
        genes: list[int] = []
        for cell in CELLS:
            concat = values[f"{cell}_concat"]
            if list(concat) != [2, 3, 4, 5]:
                raise ValueError(f"{cell}_concat must be [2, 3, 4, 5] (or range(2, 6)), got {V.shorten(concat)}")
            pairs = values[cell]
            if not isinstance(pairs, list | tuple) or len(pairs) != 2 * STEPS:
                raise ValueError(f"{cell} must list {2 * STEPS} (op, input) pairs, 2 per node")
            for i in range(STEPS):
                node = []
                for pair in pairs[2 * i:2 * i + 2]:
                    if not (isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)
                            and isinstance(pair[1], int)):
                        raise ValueError(f"{cell}: {V.shorten(pair)} is not an (op, input) pair such as ('sep_conv_3x3', 0)")
                    op, src = pair
                    if op not in _OP_INDEX:
                        raise ValueError(f"{cell}: unknown op {V.shorten(op)}; valid: {', '.join(PRIMITIVES[1:])}")
                    if op == "none":
                        raise ValueError(f"{cell}: 'none' cannot appear in a genotype")
                    if not 0 <= src < i + 2:
                        raise ValueError(f"{cell} node {i + 2}: input {src} must be an earlier node (0..{i + 1})")
                    node.append((src, _OP_INDEX[op]))
                if node[0][0] == node[1][0]:
                    raise ValueError(f"{cell} node {i + 2}: both edges come from node {node[0][0]}; "
                                     "the two inputs of a node must differ")
                for src, op in sorted(node):
                    genes += [src, op]
        return tuple(genes)

    def cell(self, arch: Arch | str, cell: str = "normal") -> list[tuple[str, int]]:
        """The ``(op, input)`` pairs of one cell, in canonical order."""
        if cell not in CELLS:
            raise ValueError(f"cell: expected 'normal' or 'reduce', got {V.shorten(cell)}")
        g = self.parse(arch).genes[CELLS.index(cell) * GENES_PER_CELL:]
        return [(PRIMITIVES[g[k + 1]], int(g[k])) for k in range(0, GENES_PER_CELL, 2)]

    def skip_count(self, arch: Arch | str, cell: str = "normal") -> int:
        """Number of ``skip_connect`` edges in one cell (DARTS+ stops at 2 in the normal cell)."""
        return sum(op == "skip_connect" for op, _ in self.cell(arch, cell))

    # ----------------------------------------------------------------- encodings
    @property
    def encoding_length(self) -> dict[str, int]:
        return {**super().encoding_length, "adjacency": 2 * len(EDGES) * (len(PRIMITIVES) - 1)}

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """``onehot`` / ``categorical`` as every space; ``adjacency``: per cell a 14-edge x 7-op
        indicator (independent of the order of a node's two edges, the usual predictor input)."""
        if kind != "adjacency":
            return super().encode(arch, kind)
        arch = self.parse(arch)
        out = np.zeros((2, len(EDGES), len(PRIMITIVES) - 1), dtype=np.float32)
        for c in range(2):
            g = arch.genes[c * GENES_PER_CELL:]
            for i in range(STEPS):
                for k in (4 * i, 4 * i + 2):
                    out[c, edge_index(g[k], i + 2), g[k + 1] - 1] = 1.0
        return out.reshape(-1)

    # ----------------------------------------------------------------- networks
    def cell_graph(self, arch: Arch | str, cell: str = "normal") -> nx.DiGraph:
        """One cell as a DAG: inputs c_{k-2}, c_{k-1}, nodes 0..3, output c_{k}; edges carry ``op``."""
        pairs = self.cell(arch, cell)
        g = nx.DiGraph(space=self.name, arch=str(self.parse(arch)), cell=cell)
        g.add_node("c_{k-2}", op="input", kind="input", layer=0)
        g.add_node("c_{k-1}", op="input", kind="input", layer=0)
        for i in range(STEPS):
            g.add_node(str(i), op="sum", kind="intermediate", layer=i + 1)
        g.add_node("c_{k}", op="concat", kind="output", layer=STEPS + 1)
        for k, (op, src) in enumerate(pairs):
            node = k // 2
            g.add_edge(_plot_name(src), str(node), op=op)
        for i in range(STEPS):
            g.add_edge(str(i), "c_{k}", op="concat")
        return g

    def graph(self, arch: Arch | str) -> nx.DiGraph:
        """The normal cell's DAG; ``graph.graph["reduce"]`` holds the reduction cell's."""
        g = self.cell_graph(arch, "normal")
        g.graph["reduce"] = self.cell_graph(arch, "reduce")
        return g

    def model(self, arch: Arch, num_classes: int = 10, auxiliary: bool = False,
              drop_path_prob: float = 0.0) -> DartsNetwork:
        return DartsNetwork(self.parse(arch), num_classes, self.C, self.layers, auxiliary, drop_path_prob)

    def supernet(self, num_classes: int = 10, partial: int = 1, aux_skip: bool = False) -> DartsSearchNetwork:
        return DartsSearchNetwork(num_classes, self.search_C, self.search_layers, partial=partial, aux_skip=aux_skip)

    def params(self, arch: Arch, num_classes: int = 10) -> int:
        """Parameters of the evaluation network without the auxiliary head (as DARTS reports)."""
        return int(sum(p.numel() for p in self.model(self.parse(arch), num_classes).parameters()))

    def info(self) -> dict:
        return {**super().info(), "C": self.C, "layers": self.layers, "ops": list(PRIMITIVES)}
