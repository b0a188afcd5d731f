"""The thesis' MobileNetV2 macro space: 21 searchable layers, 13 ops each (13**21 networks).

Thesis 003 §3.5.4 and App. II, Tables II-1 and II-2 (the space of Su et al. 2021a / GreedyNAS /
SCARLET / ProxylessNAS, searched under a FLOPs budget on ImageNet):

========  ===========================  =====  ========  ======
layers    op                           input  channels  stride
========  ===========================  =====  ========  ======
1         3x3 conv + BN + ReLU         224    32        2
1         MB1_K3 (fixed)               112    16        1
4         choice                       112    32        2
4         choice                       56     40        2
4         choice                       28     80        2
4         choice                       14     96        1
4         choice                       14     192       2
1         choice                       7      320       1
1         1x1 conv + BN + ReLU         7      1280      1
1         global average pool, fc
========  ===========================  =====  ========  ======

Only a stack's first layer has the stack's stride. Each choice is one of 13 ops (Table II-2): ID,
or MB{3,6}_K{3,5,7} (inverted residual, expansion 3 or 6, depthwise kernel 3/5/7) with or
without squeeze-excite. Genes index :data:`OPS`; the canonical string is one character per layer
(:data:`SYMBOLS`: ``0`` = ID, ``1``-``6`` = MB3_K3, MB3_K5, MB3_K7, MB6_K3, MB6_K5, MB6_K7, and
``A``-``F`` the same six with SE), grouped by stack with ``-``, e.g. MobileNetV2's all-MB6_K3
``4444-4444-4444-4444-4444-4``.

**ID where shapes change.** The first layer of stacks 1-3 and 5 halves the resolution, and every
stack's first layer changes the width, so a true identity does not fit there. As in the GreedyNAS
reference (OpenMMLab mmrazor's ``Identity`` op: a 1x1 conv at the layer's stride + BN when stride
or channels differ) and in NAS-Bench-Macro here, ID at such a layer is that 1x1 projection; that
keeps all 13 choices at every layer (the 13**21 of the thesis). ProxylessNAS instead removes the
skip choice from first layers (12 ops there); we do not, to keep the thesis' count.

**Deviations, on purpose.** Activations are ReLU in the blocks (the thesis names none; GreedyNAS
uses h-swish), which changes neither FLOPs nor params. SE follows MobileNetV3 / GreedyNAS (see
:mod:`nasbench_lab.nn.mobile`).

**Geometry variants.** ``variant="imagenet"`` is the table above at 224x224. ``variant="cifar"``
is the usual 32x32 adaptation (as CIFAR MobileNetV2 ports do): stem stride 1 and stack 1 stride 1,
so feature maps are 32/32/16/8/8/4/4 instead of collapsing to 1x1. ``width_mult`` scales every
width but the 1280 head as MobileNetV2 does (``make_divisible(c * w, 8)``); a smaller network for a
CPU registers as ``spaces.register("mobilenet-tiny", "nasbench_lab.spaces.mobilenet", "MobileNetSpace",
variant="cifar", width_mult=0.25, space_name="mobilenet-tiny")`` (``space_name`` = the registry name).

**Counting.** ``flops`` are multiply-accumulates of conv and linear weights (biases, BN, activations,
pooling, the SE product and residual additions not counted: the convention of NAS-Bench-Macro,
MobileNetV2's "300M MAdds" and the thesis' MFLOPs), in closed form from a per-layer table
(:meth:`MobileNetSpace.layer_table`), at any input size. ``params`` likewise in closed form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np
import torch
import torch.nn as nn

from nasbench_lab import validation as V
from nasbench_lab.nn.mobile import (
    InvertedResidual,
    conv_out,
    make_divisible,
    mb_macs,
    mb_params,
    projection,
    projection_macs,
    projection_params,
)
from nasbench_lab.spaces.base import Arch, SearchSpace

__all__ = ["MobileNetSpace", "MobileNetNetwork", "OPS", "SYMBOLS", "STACKS", "VARIANTS"]

#: the 13 candidate ops (Table II-2); a gene indexes this tuple
OPS: tuple[str, ...] = ("ID", "MB3_K3", "MB3_K5", "MB3_K7", "MB6_K3", "MB6_K5", "MB6_K7",
                        "MB3_K3_SE", "MB3_K5_SE", "MB3_K7_SE", "MB6_K3_SE", "MB6_K5_SE", "MB6_K7_SE")
#: one character per op in the canonical string
SYMBOLS = "0123456ABCDEF"
_SYMBOL_GENE = {c: i for i, c in enumerate(SYMBOLS)}
#: (expansion, kernel, se) of every op but ID
_SHAPE: dict[str, tuple[int, int, bool]] = {
    f"MB{t}_K{k}{'_SE' if se else ''}": (t, k, se) for se in (False, True) for t in (3, 6) for k in (3, 5, 7)}
#: (layers, channels, stride of the first layer) of the searchable stacks (Table II-1)
STACKS: tuple[tuple[int, int, int], ...] = ((4, 32, 2), (4, 40, 2), (4, 80, 2), (4, 96, 1), (4, 192, 2), (1, 320, 1))
STEM_CHANNELS, FIRST_CHANNELS, HEAD_CHANNELS = 32, 16, 1280
NUM_LAYERS = sum(n for n, _, _ in STACKS)  # 21
_OPTIONS = tuple(range(len(OPS)))


@dataclass(frozen=True)
class Variant:
    name: str
    resolution: int  # input size the counts default to
    stem_stride: int
    stack_strides: tuple[int, ...]
    num_classes: int


VARIANTS: dict[str, Variant] = {
    "imagenet": Variant("imagenet", 224, 2, tuple(s for _, _, s in STACKS), 1000),
    "cifar": Variant("cifar", 32, 1, (1, 2, 2, 1, 2, 1), 10),
}


@dataclass(frozen=True)
class Layer:
    """Fixed geometry of one searchable layer (sizes at the variant's own input resolution)."""

    index: int  # 0..20
    stack: int  # 1..6
    c_in: int
    c_out: int
    stride: int


def _format(genes: Sequence[int]) -> str:
    chars = "".join(SYMBOLS[g] for g in genes)
    out, i = [], 0
    for n, _, _ in STACKS:
        out.append(chars[i:i + n])
        i += n
    return "-".join(out)


_STRING_RE = re.compile(r"^[0-9A-F]{4}(-[0-9A-F]{4}){4}-[0-9A-F]$|^[0-9A-F]{21}$")


def parse_genes(text: str) -> tuple[int, ...]:
    """Genes of ``"4444-4444-4444-4444-4444-4"`` (or the 21 characters without dashes)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string, got {type(text).__name__}")
    s = text.strip()
    if not _STRING_RE.match(s):
        bad = sorted({c for c in s if c not in SYMBOLS and c != "-"})
        if bad:
            raise ValueError(f"{V.shorten(text)}: characters {V.shorten(bad)} are not ops; use {SYMBOLS} "
                             f"({', '.join(f'{c}={o}' for c, o in zip(SYMBOLS, OPS))})")
        raise ValueError(f"{V.shorten(text)}: expected 21 op characters in stacks of 4/4/4/4/4/1 joined by '-'")
    return tuple(_SYMBOL_GENE[c] for c in s.replace("-", ""))


# --------------------------------------------------------------------------- network
class MobileNetNetwork(nn.Module):
    """The network of one architecture (``genes``), or the single-path supernet (``genes=None``).

    Every layer is an ``nn.ModuleDict`` keyed by op name (only the chosen op in a standalone model,
    all 13 in the supernet), so a standalone model inherits supernet weights with
    ``load_state_dict(supernet.state_dict(), strict=False)``.
    """

    def __init__(self, space: MobileNetSpace, genes: Sequence[int] | None = None, num_classes: int = 10,
                 affine: bool = True) -> None:
        super().__init__()
        self.space_name = space.name
        self.genes: tuple[int, ...] | None = None if genes is None else space._genes(genes)
        self.num_classes = int(num_classes)
        v, c0, c1 = space.variant, space.stem_channels, space.first_channels
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, v.stem_stride, 1, bias=False), nn.BatchNorm2d(c0),
                                  nn.ReLU(inplace=True), InvertedResidual(c0, c1, 1, 1, 3))
        self.layers = nn.ModuleList()
        for layer in space.layers:
            names = OPS if self.genes is None else (OPS[self.genes[layer.index]],)
            self.layers.append(nn.ModuleDict({n: _make_op(n, layer, affine) for n in names}))
        self.head = nn.Sequential(nn.Conv2d(space.layers[-1].c_out, HEAD_CHANNELS, 1, bias=False),
                                  nn.BatchNorm2d(HEAD_CHANNELS), nn.ReLU(inplace=True))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD_CHANNELS, self.num_classes)
        self._space = space

    def resolve(self, arch: Arch | str | Sequence[int] | None) -> tuple[int, ...]:
        if arch is None:
            if self.genes is None:
                raise ValueError(f"{self.space_name} supernet: forward(x, arch) needs an architecture, "
                                 f"e.g. {self._space.example!r}")
            return self.genes
        genes = self._space._genes(arch)
        if self.genes is not None and genes != self.genes:
            raise ValueError(f"{self.space_name}: this model is built for {_format(self.genes)}, not "
                             f"{_format(genes)}; use the supernet for other architectures")
        return genes

    def forward(self, x: torch.Tensor, arch: Arch | str | Sequence[int] | None = None) -> torch.Tensor:
        genes = self.resolve(arch)
        x = self.stem(x)
        for layer, g in zip(self.layers, genes):
            x = layer[OPS[g]](x)
        return self.classifier(self.global_pool(self.head(x)).flatten(1))


def _make_op(name: str, layer: Layer, affine: bool = True) -> nn.Module:
    if name == "ID":
        return projection(layer.c_in, layer.c_out, layer.stride, affine)
    t, k, se = _SHAPE[name]
    return InvertedResidual(layer.c_in, layer.c_out, layer.stride, t, k, affine, se=se)


# --------------------------------------------------------------------------- space
class MobileNetSpace(SearchSpace):
    """21 layers x 13 ops (see the module docstring)."""

    product_space = True
    OPS = OPS

    def __init__(self, variant: str = "imagenet", width_mult: float = 1.0, space_name: str | None = None) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"MobileNetSpace: variant must be one of {', '.join(VARIANTS)}, got {V.shorten(variant)}")
        w = float(width_mult)
        if not 0.05 <= w <= 4.0:
            raise ValueError(f"MobileNetSpace: width_mult must be in [0.05, 4], got {V.shorten(width_mult)} (e.g. 1.0)")
        self.variant = VARIANTS[variant]
        self.width_mult = w
        self.name = space_name or ("mobilenet" if variant == "imagenet" else f"mobilenet-{variant}")
        self.example = "4444-4444-4444-4444-4444-4"
        r = self.variant.resolution
        self.input_shape = (3, r, r)
        self.default_num_classes = self.variant.num_classes
        self.stem_channels = make_divisible(STEM_CHANNELS * w)
        self.first_channels = make_divisible(FIRST_CHANNELS * w)
        layers, c = [], self.first_channels
        for stack, ((n, ch, _), stride) in enumerate(zip(STACKS, self.variant.stack_strides), start=1):
            c_out = make_divisible(ch * w)
            for i in range(n):
                layers.append(Layer(len(layers), stack, c, c_out, stride if i == 0 else 1))
                c = c_out
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.description = (f"MobileNetV2 macro space ({variant}, {r}x{r}, width x{w:g}): 21 layers x 13 ops "
                            "(ID, MB{3,6}_K{3,5,7} +/- SE), thesis App. II, 13^21 networks")

    # ----------------------------------------------------------------- decision tree
    @property
    def num_levels(self) -> int:
        return NUM_LAYERS

    def level_options(self, prefix: Sequence[int]) -> Sequence[int]:
        return _OPTIONS if len(prefix) < NUM_LAYERS else ()

    def level_name(self, level: int) -> str:
        layer = self.layers[level]
        return f"layer {level + 1} (stack {layer.stack}, {layer.c_out} ch{', stride 2' if layer.stride == 2 else ''})"

    def option_label(self, level: int, gene: int) -> str:
        return OPS[gene]

    def format(self, genes: Sequence[int]) -> str:
        return _format(genes)

    def _parse_genes(self, text: str) -> tuple[int, ...]:
        return parse_genes(text)

    def _genes(self, arch: Arch | str | Sequence[int]) -> tuple[int, ...]:
        """Checked genes of an Arch, a string or a gene sequence (the network's fast path)."""
        if isinstance(arch, Arch):
            if arch.space != self.name:
                raise ValueError(f"{self.name}: architecture {arch} belongs to space {arch.space!r}")
            return arch.genes
        if isinstance(arch, str):
            return self.parse(arch).genes
        genes = tuple(int(g) for g in arch)
        if len(genes) != NUM_LAYERS or not all(0 <= g < len(OPS) for g in genes):
            raise ValueError(f"{self.name}: expected {NUM_LAYERS} genes in 0..{len(OPS) - 1}, got {genes}")
        return genes

    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        rng = np.random.default_rng(rng)
        return self.arch(rng.integers(len(OPS), size=NUM_LAYERS))

    def canonical(self, arch: Arch | str) -> Arch:
        """Move the IDs after a stack's first layer to the end of the stack (a stride-1 ID is a no-op)."""
        genes = self.parse(arch).genes
        out: list[int] = []
        start = 0
        for n, _, _ in STACKS:
            rest = genes[start + 1:start + n]
            kept = [g for g in rest if g != 0]
            out += [genes[start], *kept, *([0] * (len(rest) - len(kept)))]
            start += n
        return self.arch(out)

    # ----------------------------------------------------------------- geometry and counts
    def sizes(self, resolution: int | None = None) -> list[int]:
        """Input size of every searchable layer, then the head's input size, for a given input size."""
        r = conv_out(int(resolution or self.variant.resolution), self.variant.stem_stride)
        out = []
        for layer in self.layers:
            out.append(r)
            r = conv_out(r, layer.stride)
        return out + [r]

    def layer_table(self, metric: str = "flops", resolution: int | None = None,
                    num_classes: int | None = None) -> tuple[int, np.ndarray]:
        """``(fixed, table)`` with ``count(genes) = fixed + sum_l table[l, genes[l]]`` (exact).

        ``metric`` is ``"flops"`` (MACs at ``resolution``, default the variant's) or ``"params"``;
        ``fixed`` is the stem, the MB1_K3 layer, the head and the classifier.
        """
        if metric not in ("flops", "params"):
            raise ValueError(f"layer_table: metric must be 'flops' or 'params', got {V.shorten(metric)}")
        res = int(resolution or self.variant.resolution)
        if res < 1:
            raise ValueError(f"resolution: expected a positive input size such as 224 or 32, got {V.shorten(resolution)}")
        classes = self.default_num_classes if num_classes is None else int(num_classes)
        key = (metric, res, classes)
        if key not in self._tables:
            self._tables[key] = self._table(metric, res, classes)
        return self._tables[key]

    @cached_property
    def _tables(self) -> dict[tuple, tuple[int, np.ndarray]]:
        return {}

    def _table(self, metric: str, res: int, classes: int) -> tuple[int, np.ndarray]:
        v, c0, c1 = self.variant, self.stem_channels, self.first_channels
        sizes = self.sizes(res)
        r0 = conv_out(res, v.stem_stride)
        c_last = self.layers[-1].c_out
        if metric == "flops":
            fixed = r0 * r0 * 3 * c0 * 9 + mb_macs(c0, c1, 1, 1, 3, False, r0)
            fixed += sizes[-1] ** 2 * c_last * HEAD_CHANNELS + HEAD_CHANNELS * classes
        else:
            fixed = 3 * c0 * 9 + 2 * c0 + mb_params(c0, c1, 1, 3, False)
            fixed += c_last * HEAD_CHANNELS + 2 * HEAD_CHANNELS + HEAD_CHANNELS * classes + classes
        table = np.zeros((NUM_LAYERS, len(OPS)), dtype=np.int64)
        for layer, size in zip(self.layers, sizes):
            for g, op in enumerate(OPS):
                if op == "ID":
                    table[layer.index, g] = (projection_macs(layer.c_in, layer.c_out, layer.stride, size)
                                             if metric == "flops" else
                                             projection_params(layer.c_in, layer.c_out, layer.stride))
                else:
                    t, k, se = _SHAPE[op]
                    table[layer.index, g] = (mb_macs(layer.c_in, layer.c_out, layer.stride, t, k, se, size)
                                             if metric == "flops" else mb_params(layer.c_in, layer.c_out, t, k, se))
        return int(fixed), table

    def _cost(self, metric: str, arch: Arch | str | Sequence[int], resolution: int | None,
              num_classes: int | None) -> int:
        genes = self._genes(arch)
        fixed, table = self.layer_table(metric, resolution, num_classes)
        return int(fixed + table[np.arange(NUM_LAYERS), list(genes)].sum())

    def flops(self, arch: Arch | str, num_classes: int | None = None, resolution: int | None = None) -> int:
        """Conv + linear MACs at ``resolution`` x ``resolution`` (default: the variant's input size)."""
        return self._cost("flops", arch, resolution, num_classes)

    def params(self, arch: Arch | str, num_classes: int | None = None) -> int:
        """Parameters of the standalone model (weights, biases, BN affine; no running stats)."""
        return self._cost("params", arch, None, num_classes)

    # ----------------------------------------------------------------- latency lookup table
    def latency_units(self) -> tuple[list, list[dict[int, list]]]:
        """Units for :mod:`nasbench_lab.spaces.latency`: stem and head fixed, one unit per
        (layer geometry, op); layers of equal geometry share their entries."""
        sizes = self.sizes()
        levels = [{g: [("op", OPS[g], layer.c_in, layer.c_out, layer.stride, size)] for g in range(len(OPS))}
                  for layer, size in zip(self.layers, sizes)]
        return [("stem",), ("head", self.default_num_classes)], levels

    def latency_module(self, key: tuple) -> tuple[nn.Module, tuple[int, int, int]]:
        v = self.variant
        if key[0] == "stem":
            c0, c1 = self.stem_channels, self.first_channels
            return (nn.Sequential(nn.Conv2d(3, c0, 3, v.stem_stride, 1, bias=False), nn.BatchNorm2d(c0),
                                  nn.ReLU(inplace=True), InvertedResidual(c0, c1, 1, 1, 3)), self.input_shape)
        if key[0] == "head":
            c, s = self.layers[-1].c_out, self.sizes()[-1]
            return (nn.Sequential(nn.Conv2d(c, HEAD_CHANNELS, 1, bias=False), nn.BatchNorm2d(HEAD_CHANNELS),
                                  nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(HEAD_CHANNELS, int(key[1]))), (c, s, s))
        _, op, c_in, c_out, stride, size = key
        return _make_op(op, Layer(0, 0, c_in, c_out, stride)), (c_in, size, size)

    # ----------------------------------------------------------------- networks
    def graph(self, arch: Arch | str) -> nx.DiGraph:
        """Chain ``input -> mb1 -> layer1 .. layer21 -> head`` with ``op``, ``stage`` (stack),
        ``resolution`` (output size at the variant's input), ``channels`` and ``stride``."""
        arch = self.parse(arch)
        sizes = self.sizes()
        r0 = conv_out(self.variant.resolution, self.variant.stem_stride)
        g = nx.DiGraph(space=self.name, arch=str(arch))
        g.add_node("input", op="stem", stage=0, resolution=r0, channels=self.stem_channels,
                   stride=self.variant.stem_stride)
        g.add_node("mb1", op="MB1_K3", stage=0, resolution=r0, channels=self.first_channels, stride=1)
        g.add_edge("input", "mb1", op="identity")
        prev = "mb1"
        for layer, size in zip(self.layers, sizes[1:]):
            name = f"layer{layer.index + 1}"
            g.add_node(name, op=OPS[arch.genes[layer.index]], stage=layer.stack, resolution=size,
                       channels=layer.c_out, stride=layer.stride)
            g.add_edge(prev, name, op="identity")
            prev = name
        g.add_node("head", op="head", stage=len(STACKS) + 1, resolution=sizes[-1], channels=HEAD_CHANNELS, stride=1)
        g.add_edge(prev, "head", op="identity")
        return g

    def _classes(self, num_classes: int | None) -> int:
        return self.default_num_classes if num_classes is None else int(num_classes)

    def model(self, arch: Arch | str, num_classes: int | None = None) -> MobileNetNetwork:
        return MobileNetNetwork(self, self.parse(arch).genes, self._classes(num_classes))

    def supernet(self, num_classes: int | None = None, affine: bool = True) -> MobileNetNetwork:
        """Single-path supernet: all 13 ops at every layer; ``net(x, arch)`` runs the chosen ones."""
        return MobileNetNetwork(self, None, self._classes(num_classes), affine=affine)

    def info(self) -> dict:
        return {**super().info(), "variant": self.variant.name, "width_mult": self.width_mult,
                "resolution": self.variant.resolution, "num_classes": self.default_num_classes}
