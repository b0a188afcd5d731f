"""NAS-Bench-Macro: 8 searchable layers, 3 choices each (3**8 = 6,561 networks).

Su et al., "Prioritized Architecture Sampling with Monte-Carlo Tree Search", CVPR 2021. Genes
are one digit per layer, the canonical string the 8 digits, e.g. ``22212220``:

====  ==========  ==================================================================
gene  name        layer
====  ==========  ==================================================================
0     Identity    identity; a 1x1 stride-2 conv + BN in a stage's first layer
1     MB3_K3      inverted residual, expansion 3, depthwise 3x3
2     MB6_K5      inverted residual, expansion 6, depthwise 5x5
====  ==========  ==================================================================

Network: 3x3 conv stem 3->32 + BN + ReLU at 32x32; three stages of 2, 3, 3 layers whose first
layer has stride 2 and doubles the width (64, 128, 256 channels at 16, 8, 4 pixels); head 1x1
conv 256->1280 + BN + ReLU, global average pooling, linear. No biases except the classifier's.

Identities after a stage's first layer only shorten the stage, so moving them to the stage's end
gives the same network: :meth:`NBMacroSpace.canonical` does that (3,969 classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import torch
import torch.nn as nn

from nasbench_lab.nn.mobile import InvertedResidual, projection
from nasbench_lab.spaces.base import Arch, SearchSpace

__all__ = ["NBMacroSpace", "MacroNetwork", "InvertedResidual", "OPS", "LAYERS"]

#: candidate ops; a gene is an index into this tuple
OPS: tuple[str, ...] = ("Identity", "MB3_K3", "MB6_K5")
_OP_SHAPE = {"MB3_K3": (3, 3), "MB6_K5": (6, 5)}  # expansion, kernel
STAGES: tuple[int, ...] = (2, 3, 3)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
INPUT_SIZE = 32
_OPTIONS: tuple[int, ...] = tuple(range(len(OPS)))
EXAMPLE = "22212220"


@dataclass(frozen=True)
class Layer:
    """Fixed geometry of one searchable layer."""

    index: int  # 0..7
    stage: int  # 1..3
    c_in: int
    c_out: int
    stride: int
    resolution: int  # output feature-map size


def _layers() -> tuple[Layer, ...]:
    out, c, res = [], STEM_CHANNELS, INPUT_SIZE
    for stage, n in enumerate(STAGES, start=1):
        for i in range(n):
            stride = 2 if i == 0 else 1
            c_out, res = (2 * c, res // 2) if i == 0 else (c, res)
            out.append(Layer(len(out), stage, c, c_out, stride, res))
            c = c_out
    return tuple(out)


LAYERS: tuple[Layer, ...] = _layers()
NUM_LAYERS = len(LAYERS)


def parse_genes(text: str) -> tuple[int, ...]:
    """Genes of an 8-digit string; ValueError saying what is wrong otherwise."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) != NUM_LAYERS:
        raise ValueError(f"expected {NUM_LAYERS} digits, one per layer")
    bad = sorted({ch for ch in text if int(ch) >= len(OPS)})
    if bad:
        raise ValueError(f"digit(s) {', '.join(bad)} not in 0..{len(OPS) - 1} "
                         f"({', '.join(f'{i}={n}' for i, n in enumerate(OPS))})")
    return tuple(int(ch) for ch in text)


def _as_genes(arch: Arch | str | Sequence[int]) -> tuple[int, ...]:
    """Genes of an Arch, a digit string or a gene sequence, checked (the networks' fast path)."""
    if isinstance(arch, Arch):
        if arch.space != "nbmacro":
            raise ValueError(f"nbmacro: architecture {arch} belongs to space {arch.space!r}")
        return arch.genes
    if isinstance(arch, str):
        return parse_genes(arch)
    genes = tuple(int(g) for g in arch)
    if len(genes) != NUM_LAYERS or not all(0 <= g < len(OPS) for g in genes):
        raise ValueError(f"nbmacro: expected {NUM_LAYERS} genes in 0..{len(OPS) - 1}, got {genes}")
    return genes


# --------------------------------------------------------------------------- network
def make_layer_op(name: str, layer: Layer, affine: bool = True) -> nn.Module:
    """The module of op ``name`` at one layer's geometry."""
    if name == "Identity":
        return projection(layer.c_in, layer.c_out, layer.stride, affine)
    t, k = _OP_SHAPE[name]
    return InvertedResidual(layer.c_in, layer.c_out, layer.stride, t, k, affine)


class MacroNetwork(nn.Module):
    """The NAS-Bench-Macro network; ``genes=None`` builds the single-path supernet.

    Every layer is an ``nn.ModuleDict`` keyed by op name (only the chosen op in a standalone
    model, all 3 in the supernet), so a standalone model can inherit supernet weights with
    ``load_state_dict(supernet.state_dict(), strict=False)``. ``affine`` applies to the BNs of the
    searchable layers; stem and head always use affine BN.
    """

    def __init__(self, genes: Sequence[int] | None = None, num_classes: int = 10, affine: bool = True) -> None:
        super().__init__()
        self.genes: tuple[int, ...] | None = None if genes is None else _as_genes(genes)
        self.num_classes = int(num_classes)
        self.stem = nn.Sequential(nn.Conv2d(3, STEM_CHANNELS, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(STEM_CHANNELS), nn.ReLU(inplace=True))
        self.layers = nn.ModuleList()
        for layer in LAYERS:
            names = OPS if self.genes is None else (OPS[self.genes[layer.index]],)
            self.layers.append(nn.ModuleDict({n: make_layer_op(n, layer, affine) for n in names}))
        c = LAYERS[-1].c_out
        self.head = nn.Sequential(nn.Conv2d(c, HEAD_CHANNELS, 1, bias=False), nn.BatchNorm2d(HEAD_CHANNELS),
                                  nn.ReLU(inplace=True))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_CHANNELS, self.num_classes)

    def resolve(self, arch: Arch | str | Sequence[int] | None) -> tuple[int, ...]:
        """Genes to run: ``arch``'s, or the fixed ones; a fixed model refuses another arch."""
        if arch is None:
            if self.genes is None:
                raise ValueError(f"nbmacro supernet: forward(x, arch) needs an architecture, e.g. {EXAMPLE!r}")
            return self.genes
        genes = _as_genes(arch)
        if self.genes is not None and genes != self.genes:
            raise ValueError(f"nbmacro: this model is built for {''.join(map(str, self.genes))}, not "
                             f"{''.join(map(str, genes))}; use the supernet for other architectures")
        return genes

    def forward(self, x: torch.Tensor, arch: Arch | str | Sequence[int] | None = None) -> torch.Tensor:
        genes = self.resolve(arch)
        x = self.stem(x)
        for layer, g in zip(self.layers, genes):
            x = layer[OPS[g]](x)
        x = self.global_pool(self.head(x)).flatten(1)
        return self.classifier(x)


# --------------------------------------------------------------------------- space
class NBMacroSpace(SearchSpace):
    """NAS-Bench-Macro: one of :data:`OPS` per layer, 8 layers."""

    name = "nbmacro"
    description = "NAS-Bench-Macro: 8 layers x {Identity, MB3_K3, MB6_K5}, stages of 2/3/3 layers, 6,561 networks"
    example = EXAMPLE
    product_space = True
    additive_costs = True  # every edge/layer op at a fixed width and resolution
    OPS = OPS
    LAYERS = LAYERS

    @property
    def num_levels(self) -> int:
        return NUM_LAYERS

    def level_options(self, prefix: Sequence[int]) -> Sequence[int]:
        return _OPTIONS if len(prefix) < NUM_LAYERS else ()

    def level_name(self, level: int) -> str:
        return f"layer {level + 1}"

    def option_label(self, level: int, gene: int) -> str:
        return OPS[gene]

    def format(self, genes: Sequence[int]) -> str:
        return "".join(str(int(g)) for g in genes)

    def _parse_genes(self, text: str) -> tuple[int, ...]:
        return parse_genes(text)

    def canonical(self, arch: Arch | str) -> Arch:
        """Move the identities after each stage's first layer to the end of the stage.

        A stride-1 identity is a no-op, so only the order of a stage's other layers matters.
        """
        genes = self.parse(arch).genes
        out: list[int] = []
        start = 0
        for n in STAGES:
            rest = genes[start + 1:start + n]
            kept = [g for g in rest if g != 0]
            out += [genes[start], *kept, *([0] * (len(rest) - len(kept)))]
            start += n
        return self.arch(out)

    # ----------------------------------------------------------------- latency lookup table
    def latency_units(self) -> tuple[list, list[dict[int, list]]]:
        """Units for :mod:`nasbench_lab.spaces.latency`: stem and head fixed, one per (layer, op)."""
        return [("stem",), ("head",)], [{g: [("op", layer.index, g)] for g in _OPTIONS} for layer in LAYERS]

    def latency_module(self, key: tuple) -> tuple[nn.Module, tuple[int, int, int]]:
        if key[0] == "stem":
            return (nn.Sequential(nn.Conv2d(3, STEM_CHANNELS, 3, 1, 1, bias=False), nn.BatchNorm2d(STEM_CHANNELS),
                                  nn.ReLU(inplace=True)), (3, INPUT_SIZE, INPUT_SIZE))
        if key[0] == "head":
            c, r = LAYERS[-1].c_out, LAYERS[-1].resolution
            return (nn.Sequential(nn.Conv2d(c, HEAD_CHANNELS, 1, bias=False), nn.BatchNorm2d(HEAD_CHANNELS),
                                  nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(HEAD_CHANNELS, 10)), (c, r, r))
        layer = LAYERS[key[1]]
        r_in = layer.resolution * layer.stride
        return make_layer_op(OPS[key[2]], layer), (layer.c_in, r_in, r_in)

    # ----------------------------------------------------------------- networks
    def graph(self, arch: Arch | str) -> nx.DiGraph:
        """Chain ``input -> layer1 .. layer8 -> head``.

        Nodes carry ``op`` (``"stem"``, the layer's op name, ``"head"``), ``stage`` (0 for the
        stem, 1-3, 4 for the head), ``resolution`` (output feature-map size), ``channels``
        (output width) and ``stride``; edges carry ``op="identity"`` (a plain connection).
        """
        arch = self.parse(arch)
        g = nx.DiGraph(space=self.name, arch=str(arch))
        g.add_node("input", op="stem", stage=0, resolution=INPUT_SIZE, channels=STEM_CHANNELS, stride=1)
        prev = "input"
        for layer in LAYERS:
            name = f"layer{layer.index + 1}"
            g.add_node(name, op=OPS[arch.genes[layer.index]], stage=layer.stage, resolution=layer.resolution,
                       channels=layer.c_out, stride=layer.stride)
            g.add_edge(prev, name, op="identity")
            prev = name
        g.add_node("head", op="head", stage=len(STAGES) + 1, resolution=LAYERS[-1].resolution,
                   channels=HEAD_CHANNELS, stride=1)
        g.add_edge(prev, "head", op="identity")
        return g

    def model(self, arch: Arch | str, num_classes: int = 10) -> MacroNetwork:
        return MacroNetwork(self.parse(arch).genes, num_classes)

    def supernet(self, num_classes: int = 10, affine: bool = True) -> MacroNetwork:
        """Single-path supernet: every layer holds all 3 ops; ``net(x, arch)`` runs the chosen ones."""
        return MacroNetwork(None, num_classes, affine=affine)
