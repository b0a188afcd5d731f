"""NAS-Bench-201: one cell of 4 nodes and 6 edges, 5 candidate ops per edge (5**6 = 15,625).

Genes are the 6 edges in the order of the standard string, ``(1<-0), (2<-0), (2<-1), (3<-0),
(3<-1), (3<-2)``, each an index into :data:`OPS`. The canonical string is the benchmark's own::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

(``+`` separates nodes 1, 2, 3; ``op~k`` is the edge from node ``k``).

The network is the paper's (Dong & Yang, ICLR 2020): a 3x3 conv + BN stem (16 channels, no ReLU),
three stages of 5 identical cells (16, 32, 64 channels) joined by stride-2 ResNet basic blocks,
then BN -> ReLU -> global average pooling -> linear. A node sums its incoming edges; the cell
output is node 3. Standalone and supernet share one class, :class:`NB201Network`; an edge holds an
``nn.ModuleDict`` keyed by op name (only the chosen op in a standalone model, all 5 in the
supernet), so a standalone model's ``state_dict`` keys are a subset of the supernet's and
``model.load_state_dict(supernet.state_dict(), strict=False)`` inherits the shared weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx
import torch
import torch.nn as nn
import torch.nn.init as init

from nasbench_lab import validation as V
from nasbench_lab.nn.ops import ResNetBasicBlock, make_op
from nasbench_lab.spaces.base import Arch, SearchSpace

__all__ = ["NB201Space", "NB201Network", "NB201Cell", "OPS", "EDGES"]

#: candidate ops; a gene is an index into this tuple
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to, from) of every gene, in the order of the standard string
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
#: for each non-input node j: the (gene index, source node) of its incoming edges
_NODE_INPUTS: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple((k, src) for k, (dst, src) in enumerate(EDGES) if dst == j) for j in range(1, NUM_NODES)
)
#: every input -> output path of the cell, as node sequences
PATHS: tuple[tuple[int, ...], ...] = ((0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3))
_EDGE_INDEX = {(src, dst): k for k, (dst, src) in enumerate(EDGES)}
_OPTIONS: tuple[int, ...] = tuple(range(len(OPS)))
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def format_genes(genes: Sequence[int]) -> str:
    """The standard NB-201 string of 6 genes."""
    nodes = ["|" + "|".join(f"{OPS[genes[k]]}~{src}" for k, src in ins) + "|" for ins in _NODE_INPUTS]
    return "+".join(nodes)


def parse_genes(text: str) -> tuple[int, ...]:
    """Genes of a standard NB-201 string; ValueError saying what is wrong otherwise."""
    parts = text.strip().split("+")
    if len(parts) != NUM_NODES - 1:
        raise ValueError(f"expected {NUM_NODES - 1} nodes separated by '+', got {len(parts)}")
    genes: list[int] = []
    for j, (part, ins) in enumerate(zip(parts, _NODE_INPUTS), start=1):
        if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
            raise ValueError(f"node {j}: {V.shorten(part)} should look like |op~0|...|")
        entries = part[1:-1].split("|")
        if len(entries) != len(ins):
            raise ValueError(f"node {j} takes {len(ins)} edge(s) (from nodes 0..{j - 1}), got {len(entries)}")
        for (_, src), entry in zip(ins, entries):
            op, sep, idx = entry.partition("~")
            if not sep:
                raise ValueError(f"node {j}: edge {V.shorten(entry)} should be op~k")
            if op not in OPS:
                raise ValueError(f"node {j}: unknown op {V.shorten(op)} (valid: {', '.join(OPS)})")
            if idx != str(src):
                raise ValueError(f"node {j}: edge {V.shorten(entry)} should come from node {src} (~{src})")
            genes.append(OPS.index(op))
    return tuple(genes)


def _as_genes(arch: Arch | str | Sequence[int]) -> tuple[int, ...]:
    """Genes of an Arch, a string or a gene sequence, checked (the networks' fast path)."""
    if isinstance(arch, Arch):
        if arch.space != "nb201":
            raise ValueError(f"nb201: architecture {arch} belongs to space {arch.space!r}")
        return arch.genes
    if isinstance(arch, str):
        return parse_genes(arch)
    genes = tuple(int(g) for g in arch)
    if len(genes) != len(EDGES) or not all(0 <= g < len(OPS) for g in genes):
        raise ValueError(f"nb201: expected {len(EDGES)} genes in 0..{len(OPS) - 1}, got {genes}")
    return genes


# --------------------------------------------------------------------------- network
class NB201Cell(nn.Module):
    """One cell at ``C`` channels; ``genes=None`` builds every candidate on every edge (supernet).

    ``conv_bias=True`` gives the cell's convolutions a bias (NB-201's own have none); with it,
    ``affine=False`` and ``track_running_stats=False`` the cell is the one of the zero-cost proxy
    reference (see :class:`NB201Network`).
    """

    def __init__(self, C: int, genes: Sequence[int] | None = None, affine: bool = True,
                 track_running_stats: bool = True, conv_bias: bool = False) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        for k in range(len(EDGES)):
            names = OPS if genes is None else (OPS[genes[k]],)
            self.edges.append(nn.ModuleDict({n: make_op(n, C, C, 1, affine, track_running_stats) for n in names}))
        if conv_bias:
            for m in self.edges.modules():
                if isinstance(m, nn.Conv2d) and m.bias is None:
                    m.bias = nn.Parameter(torch.empty(m.out_channels))
                    fan_in, _ = init._calculate_fan_in_and_fan_out(m.weight)
                    init.uniform_(m.bias, -fan_in ** -0.5, fan_in ** -0.5)  # nn.Conv2d's own bias init

    def forward(self, x: torch.Tensor, genes: Sequence[int]) -> torch.Tensor:
        nodes = [x]
        for ins in _NODE_INPUTS:
            total: torch.Tensor | None = None
            for k, src in ins:
                if genes[k] == 0:  # "none" adds zeros: skip the work
                    continue
                y = self.edges[k][OPS[genes[k]]](nodes[src])
                total = y if total is None else total + y
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[-1]


def macro_skeleton(C: int, N: int, make_cell: Callable[[int], nn.Module]
                   ) -> tuple[nn.Module, nn.ModuleList, nn.Module, int]:
    """NB-201's macro network around any cell: stem, 3 stages of ``N`` cells (C, 2C, 4C) with a
    stride-2 ResNet block between stages, and the final BN-ReLU. Returns (stem, layers, lastact,
    output width); the standalone/single-path and the relaxed supernets share it."""
    stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
    layers: list[nn.Module] = []
    c_prev = C
    for stage, width in enumerate((C, 2 * C, 4 * C)):
        if stage > 0:
            layers.append(ResNetBasicBlock(c_prev, width, 2))
        layers += [make_cell(width) for _ in range(N)]
        c_prev = width
    return stem, nn.ModuleList(layers), nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True)), c_prev


class NB201Network(nn.Module):
    """The NB-201 macro skeleton (stem, 3x5 cells, 2 reduction blocks, head).

    ``genes`` fixes the architecture (standalone model); ``None`` builds the single-path supernet
    whose ``forward(x, arch)`` runs only the chosen op of every edge. ``affine``,
    ``track_running_stats`` and ``conv_bias`` apply to the ops inside the cells; stem, reduction
    blocks and head always use standard affine BN (as in NB-201's own supernets).

    ``affine=False, track_running_stats=False, conv_bias=True`` builds the network of the
    zero-cost proxy reference (Abdelfattah et al. 2021, ``SamsungLabs/zero-cost-nas``
    ``foresight/models/nasbench2.py``: cells built with ``affine=False``, whose ``ReLUConvBN``
    makes ``Conv2d(bias=not affine)``). It is not NB-201's (Dong & Yang's cells have bias-free
    convolutions and affine BN): where a conv reads a node that is all zeros (every input edge
    ``none``), its output is its bias, constant over the batch, so the BN after it has variance 0
    and scales its gradient by ``1 / sqrt(eps)``; gradient-times-activation proxies (fisher) then
    explode on those cells.
    """

    def __init__(self, genes: Sequence[int] | None = None, num_classes: int = 10, C: int = 16, N: int = 5,
                 affine: bool = True, track_running_stats: bool = True, conv_bias: bool = False) -> None:
        super().__init__()
        self.genes: tuple[int, ...] | None = None if genes is None else _as_genes(genes)
        self.num_classes = int(num_classes)
        self.stem, self.layers, self.lastact, c_prev = macro_skeleton(
            C, N, lambda width: NB201Cell(width, self.genes, affine, track_running_stats, conv_bias))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, self.num_classes)

    def resolve(self, arch: Arch | str | Sequence[int] | None) -> tuple[int, ...]:
        """Genes to run: ``arch``'s, or the fixed ones; a fixed model refuses another arch."""
        if arch is None:
            if self.genes is None:
                raise ValueError(f"nb201 supernet: forward(x, arch) needs an architecture, e.g. {EXAMPLE!r}")
            return self.genes
        genes = _as_genes(arch)
        if self.genes is not None and genes != self.genes:
            raise ValueError(f"nb201: this model is built for {format_genes(self.genes)}, "
                             f"not {format_genes(genes)}; use the supernet for other architectures")
        return genes

    def forward(self, x: torch.Tensor, arch: Arch | str | Sequence[int] | None = None) -> torch.Tensor:
        genes = self.resolve(arch)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, genes) if isinstance(layer, NB201Cell) else layer(x)
        x = self.global_pool(self.lastact(x)).flatten(1)
        return self.classifier(x)


# --------------------------------------------------------------------------- space
class NB201Space(SearchSpace):
    """NAS-Bench-201 cells: 6 edges, each one of :data:`OPS`."""

    name = "nb201"
    description = "NAS-Bench-201 cell: 6 edges x 5 ops (none, skip, conv1x1, conv3x3, avgpool), 15,625 cells"
    example = EXAMPLE
    product_space = True
    additive_costs = True  # every edge/layer op at a fixed width and resolution
    OPS = OPS
    EDGES = EDGES

    @property
    def num_levels(self) -> int:
        return len(EDGES)

    def level_options(self, prefix: Sequence[int]) -> Sequence[int]:
        return _OPTIONS if len(prefix) < len(EDGES) else ()

    def level_name(self, level: int) -> str:
        dst, src = EDGES[level]
        return f"edge {dst}←{src}"

    def option_label(self, level: int, gene: int) -> str:
        return OPS[gene]

    def format(self, genes: Sequence[int]) -> str:
        return format_genes(genes)

    def _parse_genes(self, text: str) -> tuple[int, ...]:
        return parse_genes(text)

    def ops_on_paths(self, arch: Arch | str) -> list[tuple[str, ...]]:
        """Op sequence of every input -> output path that carries signal.

        Paths (by nodes) are 0-3, 0-1-3, 0-2-3, 0-1-2-3, in that order; a path through a ``none``
        edge carries nothing and is left out, so an empty list means the cell outputs zeros.
        """
        genes = self.parse(arch).genes
        out = []
        for path in PATHS:
            ops = tuple(OPS[genes[_EDGE_INDEX[(u, v)]]] for u, v in zip(path, path[1:]))
            if "none" not in ops:
                out.append(ops)
        return out

    # ----------------------------------------------------------------- networks
    def graph(self, arch: Arch | str) -> nx.DiGraph:
        """Cell DAG: nodes 0..3 (``label`` input / node k / output), one edge per gene.

        Edges carry ``op`` (the op name) and ``gene`` (the level index). ``none`` edges are kept,
        with ``op="none"``, so the view can draw them dashed.
        """
        arch = self.parse(arch)
        g = nx.DiGraph(space=self.name, arch=str(arch))
        for n in range(NUM_NODES):
            g.add_node(n, label="input" if n == 0 else "output" if n == NUM_NODES - 1 else f"node {n}")
        for k, (dst, src) in enumerate(EDGES):
            g.add_edge(src, dst, op=OPS[arch.genes[k]], gene=k)
        return g

    # ----------------------------------------------------------------- latency lookup table
    def latency_units(self) -> tuple[list, list[dict[int, list]]]:
        """Units for :mod:`nasbench_lab.spaces.latency`: stem, the two reduction blocks and the head
        are fixed; an edge's op runs in the 5 cells of each of the 3 stages (16/32/64 channels at
        32/16/8 pixels), so option ``g`` of every edge adds 5 x (op at each stage). ``none`` runs
        nothing. The sum of a cell's ops ignores the additions at the nodes (as per-op tables do)."""
        fixed = [("stem",), ("reduce", 16, 32, 32), ("reduce", 32, 64, 16), ("head",)]
        stages = ((16, 32), (32, 16), (64, 8))
        levels = [{g: [] if OPS[g] == "none" else [("op", OPS[g], c, r) for c, r in stages for _ in range(5)]
                   for g in _OPTIONS} for _ in EDGES]
        return fixed, levels

    def latency_module(self, key: tuple) -> tuple[nn.Module, tuple[int, int, int]]:
        if key[0] == "stem":
            return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)), (3, 32, 32)
        if key[0] == "reduce":
            _, c_in, c_out, r = key
            return ResNetBasicBlock(c_in, c_out, 2), (c_in, r, r)
        if key[0] == "head":
            return (nn.Sequential(nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(64, 10)), (64, 8, 8))
        _, op, c, r = key
        return make_op(op, c, c, 1), (c, r, r)

    def model(self, arch: Arch | str, num_classes: int = 10) -> NB201Network:
        return NB201Network(self.parse(arch).genes, num_classes)

    def supernet(self, num_classes: int = 10, affine: bool = True,
                 track_running_stats: bool = True) -> NB201Network:
        """Single-path supernet: every edge holds all 5 ops; ``net(x, arch)`` runs the chosen ones."""
        return NB201Network(None, num_classes, affine=affine, track_running_stats=track_running_stats)
