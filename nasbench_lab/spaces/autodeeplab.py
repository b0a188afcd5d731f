"""Auto-DeepLab's network-level search space: a path through the layer x resolution trellis.

Liu et al., "Auto-DeepLab: Hierarchical Neural Architecture Search for Semantic Image
Segmentation", CVPR 2019, §3.2 and Fig. 1; searched with iterative MCTS in the thesis (003
§4.4.3, Table 4.5). A stem brings the image to 1/4 resolution; then ``L`` layers each sit at one
of 4 levels (downsampling 4, 8, 16, 32) and move by at most one level from the layer before
(halve, keep or double the resolution). The cell is fixed; only the path is searched.

The thesis (§4.4.3): "reduces the search space size from 10^19 to 2.9 x 10^4". With ``L = 12``
and layer 1 pinned at 1/4 (``pin_first=True``, the default) there are exactly 28,657 paths, the
Fibonacci number F(2L-1); Auto-DeepLab's public code also lets layer 1 sit at 1/8 (``pin_first=
False``: 75,025 = F(2L+1)). :attr:`AutoDeepLabSpace.size` is exact for any ``L`` (a dynamic
programme over the trellis, tested against a brute-force count).

Genes: the level of each layer (0..3 = 1/4 .. 1/32). Canonical string: the downsampling rates
joined by ``-``, e.g. ``4-8-16-16-8-4`` for 6 layers.

Network (shared by the standalone models and the single-path supernet, same module keys, so a
standalone model inherits supernet weights with ``load_state_dict(strict=False)``):

- stem: 3x3 conv stride 2 (8 channels) + BN + ReLU, 3x3 conv stride 2 to ``C = B*F`` channels +
  BN + ReLU (1/4 resolution). Auto-DeepLab's stem has three convs (stride 2, 1, 2); the middle one
  is left out for a CPU.
- layer ``l`` at level ``s`` (``nodes["l_s"]``) has ``B*F*2**s`` channels (Auto-DeepLab: B*F*s/4
  at downsampling s). Its inputs are resampled from their levels: one level down is a 3x3 conv
  stride 2, one level up is a bilinear x2 upsampling and a 1x1 conv, the same level is the
  identity (residual cell) or a 1x1 conv (Auto-DeepLab cell, whose inputs may be 2 levels away:
  bilinear resize and a 1x1 conv, as the reference code's ``preprocess`` does).
- cell ``"residual"`` (default: what trains well on a CPU): a ResNet basic block (two 3x3 convs,
  identity shortcut). Cell ``"adl"``: the cell Auto-DeepLab found (paper Fig. 3), 5 blocks on
  ``h_{l-1}`` and ``h_{l-2}`` with atrous 3x3/5x5 (rate 2) and separable 3x3/5x5 ops, the 5 block
  outputs (``F*2**s`` channels each) concatenated (``B = 5``).
- head, unchanged by the search: ASPP on the last layer's level (DeepLabV3; here a 1x1 branch, one
  3x3 atrous branch with rate 4, 2, 1, 1 at levels 0..3 as Auto-DeepLab scales its rates with the
  level, and image pooling), then the DeepLabV3+ decoder: upsample to 1/4, concatenate the 1x1-
  reduced stem features (the 1/4 skip), a 3x3 conv, a 1x1 classifier, bilinear upsampling to the
  input size. The supernet has one ASPP per level; a path uses the one at its last level.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, cached_property

import networkx as nx
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab.spaces.base import Arch, SearchSpace

__all__ = ["AutoDeepLabSpace", "TrellisNetwork", "LEVELS", "RATES", "CELLS", "count_paths"]

#: number of resolution levels; level ``s`` is downsampling ``4 * 2**s``
LEVELS = 4
RATES: tuple[int, ...] = (4, 8, 16, 32)
CELLS: tuple[str, ...] = ("residual", "adl")
STEM_MID = 8  # channels after the first stem conv
ASPP_CHANNELS = 16
SKIP_CHANNELS = 8  # the decoder's 1x1-reduced 1/4 skip (DeepLabV3+ reduces to 48 of 256)
ASPP_RATES: tuple[int, ...] = (4, 2, 1, 1)  # atrous rate of the ASPP 3x3 branch at each level


def first_levels(pin_first: bool) -> tuple[int, ...]:
    """Levels layer 1 may take: 1/4 only (the thesis' count), or 1/4 and 1/8 (the public code)."""
    return (0,) if pin_first else (0, 1)


def next_levels(level: int) -> tuple[int, ...]:
    """Levels reachable from ``level`` in one layer: halve, keep or double the resolution."""
    return tuple(s for s in (level - 1, level, level + 1) if 0 <= s < LEVELS)


@cache
def _completions(level: int, remaining: int) -> int:
    """Paths of ``remaining`` more layers after a layer at ``level`` (dynamic programme)."""
    if remaining == 0:
        return 1
    return sum(_completions(s, remaining - 1) for s in next_levels(level))


def count_paths(layers: int, pin_first: bool = True) -> int:
    """Exact number of trellis paths of ``layers`` layers (28,657 for 12 layers, pinned)."""
    return sum(_completions(s, layers - 1) for s in first_levels(pin_first))


# --------------------------------------------------------------------------- building blocks
def conv_bn_relu(c_in: int, c_out: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Resample(nn.Module):
    """An input moved from level ``src`` to level ``dst`` with ``c_out`` channels.

    One level down: 3x3 conv stride 2 (+BN+ReLU); one level up: bilinear x2 then 1x1 conv; the same
    level: identity when the channels match (``keep_identity``), else a 1x1 conv; two levels (only
    the Auto-DeepLab cell's ``h_{l-2}``): bilinear resize then 1x1 conv.
    """

    def __init__(self, src: int, dst: int, c_in: int, c_out: int, keep_identity: bool = True) -> None:
        super().__init__()
        self.src, self.dst = src, dst
        if dst == src + 1:
            self.op: nn.Module = conv_bn_relu(c_in, c_out, 3, stride=2)
        elif dst == src and keep_identity and c_in == c_out:
            self.op = nn.Identity()
        else:
            self.op = conv_bn_relu(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.dst < self.src or (self.dst > self.src + 1):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.op(x)


class ResidualCell(nn.Module):
    """ResNet basic block: relu(x + bn(conv(relu(bn(conv(x))))))."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, h1: torch.Tensor, h2: torch.Tensor | None = None) -> torch.Tensor:
        return F.relu(h1 + self.body(h1))


def _sep(c: int, k: int) -> nn.Sequential:
    """ReLU, depthwise k x k, pointwise 1x1, BN (Auto-DeepLab's separable conv)."""
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c, c, k, 1, k // 2, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


def _atr(c: int, k: int, rate: int = 2) -> nn.Sequential:
    """ReLU, atrous (dilated) depthwise-separable k x k with ``rate``, BN."""
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c, c, k, 1, rate * (k // 2), dilation=rate, groups=c,
                                                           bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


class ADLCell(nn.Module):
    """The cell Auto-DeepLab found on Cityscapes (paper Fig. 3), 5 blocks of 2 ops each.

    With ``h1 = h_{l-1}``, ``h2 = h_{l-2}`` (both already at this level with ``c`` channels):
    b1 = atr5x5(h2) + sep3x3(h1); b2 = atr3x3(h1) + sep3x3(h2); b3 = sep3x3(b2) + sep3x3(h2);
    b4 = sep5x5(b1) + sep5x5(b3); b5 = atr5x5(b4) + sep5x5(b2); output concat(b1..b5).
    (The wiring as read from the figure and from one public re-implementation; every op has
    its own weights.)
    """

    WIRING = (("atr5", "h2", "sep3", "h1"), ("atr3", "h1", "sep3", "h2"), ("sep3", "b2", "sep3", "h2"),
              ("sep5", "b1", "sep5", "b3"), ("atr5", "b4", "sep5", "b2"))

    def __init__(self, c: int) -> None:
        super().__init__()
        make = {"sep3": lambda: _sep(c, 3), "sep5": lambda: _sep(c, 5), "atr3": lambda: _atr(c, 3),
                "atr5": lambda: _atr(c, 5)}
        self.ops = nn.ModuleList(nn.ModuleList([make[a](), make[b]()]) for a, _, b, _ in self.WIRING)

    def forward(self, h1: torch.Tensor, h2: torch.Tensor | None = None) -> torch.Tensor:
        states = {"h1": h1, "h2": h1 if h2 is None else h2}
        for i, ((_, x, _, y), (op_a, op_b)) in enumerate(zip(self.WIRING, self.ops)):
            states[f"b{i + 1}"] = op_a(states[x]) + op_b(states[y])
        return torch.cat([states[f"b{i + 1}"] for i in range(len(self.WIRING))], dim=1)


class Node(nn.Module):
    """One trellis node (layer, level): resamplers from the input levels, and the cell."""

    def __init__(self, level: int, prev_levels: Sequence[int], prev2_levels: Sequence[int], cell: str,
                 channels: Sequence[int], cell_channels: int) -> None:
        super().__init__()
        c = channels[level]
        if cell == "residual":
            self.pre = nn.ModuleDict({str(p): Resample(p, level, channels[p], c) for p in prev_levels})
            self.pre2 = nn.ModuleDict()
            self.cell: nn.Module = ResidualCell(c)
        else:
            cc = cell_channels
            self.pre = nn.ModuleDict({str(p): Resample(p, level, channels[p], cc, keep_identity=False)
                                      for p in prev_levels})
            self.pre2 = nn.ModuleDict({str(p): Resample(p, level, channels[p], cc, keep_identity=False)
                                       for p in prev2_levels})
            self.cell = ADLCell(cc)

    def forward(self, h1: torch.Tensor, p1: int, h2: torch.Tensor, p2: int, size: tuple[int, int]) -> torch.Tensor:
        x1 = self.pre[str(p1)](h1, size)
        x2 = self.pre2[str(p2)](h2, size) if len(self.pre2) else None
        return self.cell(x1, x2)


class ASPP(nn.Module):
    """DeepLabV3's ASPP, small: 1x1 branch, one 3x3 atrous branch, image pooling; 1x1 projection."""

    def __init__(self, c_in: int, c_out: int, rate: int) -> None:
        super().__init__()
        self.b1 = conv_bn_relu(c_in, c_out, 1)
        self.b2 = conv_bn_relu(c_in, c_out, 3, dilation=rate)
        # no BN on the pooled 1x1 map (its batch statistics are those of a handful of numbers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_in, c_out, 1), nn.ReLU(inplace=True))
        self.project = conv_bn_relu(3 * c_out, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).expand(-1, -1, x.shape[2], x.shape[3])
        return self.project(torch.cat([self.b1(x), self.b2(x), pooled], dim=1))


class TrellisNetwork(nn.Module):
    """A path network of the trellis; ``genes=None`` builds the single-path supernet (every node,
    every resampler, one ASPP per level) whose ``forward(x, arch)`` runs the path ``arch``."""

    def __init__(self, space: AutoDeepLabSpace, genes: Sequence[int] | None = None, num_classes: int = 11) -> None:
        super().__init__()
        self.space = space.name
        self._space = space
        self.genes = None if genes is None else tuple(int(g) for g in genes)
        self.num_classes = int(num_classes)
        ch = space.channels
        self.stem = nn.Sequential(conv_bn_relu(3, STEM_MID, 3, stride=2), conv_bn_relu(STEM_MID, ch[0], 3, stride=2))
        self.nodes = nn.ModuleDict()
        for layer in range(space.layers):
            for level in (space.reachable[layer] if self.genes is None else (self.genes[layer],)):
                if self.genes is None:
                    prev = space.reachable[layer - 1] if layer else (0,)
                    prev2 = space.reachable[layer - 2] if layer > 1 else (0,)
                    prev = tuple(p for p in prev if abs(p - level) <= 1)
                    prev2 = tuple(p for p in prev2 if abs(p - level) <= 2)  # two layers move two levels at most
                else:
                    prev = (self.genes[layer - 1],) if layer else (0,)
                    prev2 = (self.genes[layer - 2],) if layer > 1 else (0,)
                self.nodes[f"{layer + 1}_{level}"] = Node(level, prev, prev2, space.cell, ch, space.cell_channels[level])
        lasts = space.reachable[-1] if self.genes is None else (self.genes[-1],)
        self.aspp = nn.ModuleDict({str(s): ASPP(ch[s], ASPP_CHANNELS, ASPP_RATES[s]) for s in lasts})
        self.skip = conv_bn_relu(ch[0], SKIP_CHANNELS, 1)
        self.fuse = conv_bn_relu(ASPP_CHANNELS + SKIP_CHANNELS, ASPP_CHANNELS, 3)
        self.classifier = nn.Conv2d(ASPP_CHANNELS, self.num_classes, 1)

    def resolve(self, arch: Arch | str | Sequence[int] | None) -> tuple[int, ...]:
        if arch is None:
            if self.genes is None:
                raise ValueError(f"{self.space} supernet: forward(x, arch) needs a path, e.g. {self._space.example!r}")
            return self.genes
        genes = self._space.parse(arch).genes
        if self.genes is not None and genes != self.genes:
            raise ValueError(f"{self.space}: this model is built for {self._space.format(self.genes)}, not "
                             f"{self._space.format(genes)}; use the supernet for other paths")
        return genes

    def forward(self, x: torch.Tensor, arch: Arch | str | Sequence[int] | None = None) -> torch.Tensor:
        genes = self.resolve(arch)
        h, w = x.shape[2], x.shape[3]
        stem = self.stem(x)
        sizes = [stem.shape[2:]]
        for _ in range(1, LEVELS):
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))  # stride-2 convs round up
        h1, p1, h2, p2 = stem, 0, stem, 0
        for layer, level in enumerate(genes):
            out = self.nodes[f"{layer + 1}_{level}"](h1, p1, h2, p2, tuple(sizes[level]))
            h2, p2, h1, p1 = h1, p1, out, level
        y = self.aspp[str(genes[-1])](h1)
        y = F.interpolate(y, size=stem.shape[2:], mode="bilinear", align_corners=False)
        y = self.fuse(torch.cat([y, self.skip(stem)], dim=1))
        return F.interpolate(self.classifier(y), size=(h, w), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- space
class AutoDeepLabSpace(SearchSpace):
    """Paths through Auto-DeepLab's L-layer trellis (see the module docstring)."""

    task = "segmentation"
    default_dataset = "scenes"
    input_shape = (3, 32, 32)

    def __init__(self, layers: int = 12, pin_first: bool = True, cell: str = "residual",
                 filter_multiplier: int = 4, block_multiplier: int | None = None, name: str = "autodeeplab") -> None:
        if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= 64:
            raise ValueError(f"autodeeplab: layers must be an integer in 1..64, got {layers!r} (e.g. layers=12)")
        if cell not in CELLS:
            raise ValueError(f"autodeeplab: cell must be one of {CELLS}, got {cell!r} (e.g. cell='residual')")
        if isinstance(filter_multiplier, bool) or not isinstance(filter_multiplier, int) or filter_multiplier < 1:
            raise ValueError(f"autodeeplab: filter_multiplier must be a positive integer, got {filter_multiplier!r}")
        self.layers = layers
        self.pin_first = bool(pin_first)
        self.cell = cell
        self.filter_multiplier = filter_multiplier
        # B: 5 blocks concatenated in the Auto-DeepLab cell; the residual cell is a plain width factor
        self.block_multiplier = block_multiplier or (5 if cell == "adl" else 2)
        if cell == "adl" and self.block_multiplier != 5:
            raise ValueError("autodeeplab: the Auto-DeepLab cell concatenates 5 blocks; block_multiplier must be 5")
        self.name = name
        self.description = (f"Auto-DeepLab trellis: {layers} layers at 1/4..1/32, "
                            f"{'layer 1 at 1/4' if pin_first else 'layer 1 at 1/4 or 1/8'}, {cell} cell, "
                            f"{count_paths(layers, pin_first):,} paths (segmentation)")
        self.example = self.format(self._example_genes())

    def _example_genes(self) -> tuple[int, ...]:
        # down to 1/16 and back up: a DeepLab-like path
        out, level = [], first_levels(self.pin_first)[0]
        for i in range(self.layers):
            target = 2 if i < self.layers * 2 // 3 else 1
            if i:
                level += (target > level) - (target < level)
            out.append(level)
        return tuple(out)

    # ------------------------------------------------------------------ geometry
    @cached_property
    def channels(self) -> tuple[int, ...]:
        """Output channels of a node at each level: B*F*2**s (B*F*s/4 at downsampling s)."""
        return tuple(self.block_multiplier * self.filter_multiplier * 2 ** s for s in range(LEVELS))

    @cached_property
    def cell_channels(self) -> tuple[int, ...]:
        """Channels of one block of the cell (the Auto-DeepLab cell concatenates B of them)."""
        if self.cell == "adl":
            return tuple(self.filter_multiplier * 2 ** s for s in range(LEVELS))
        return self.channels

    @cached_property
    def reachable(self) -> tuple[tuple[int, ...], ...]:
        """Levels each layer can take on some path."""
        out = [first_levels(self.pin_first)]
        for _ in range(1, self.layers):
            out.append(tuple(sorted({s for p in out[-1] for s in next_levels(p)})))
        return tuple(out)

    # ------------------------------------------------------------------ decision tree
    @property
    def num_levels(self) -> int:
        return self.layers

    def level_options(self, prefix: Sequence[int]) -> Sequence[int]:
        if len(prefix) >= self.layers:
            return ()
        return first_levels(self.pin_first) if not prefix else next_levels(prefix[-1])

    def level_name(self, level: int) -> str:
        return f"layer {level + 1}"

    def option_label(self, level: int, gene: int) -> str:
        return f"1/{RATES[gene]}"

    @cached_property
    def size(self) -> int:
        return count_paths(self.layers, self.pin_first)

    def _count(self, prefix: tuple[int, ...]) -> int:
        if not prefix:
            return self.size
        return _completions(prefix[-1], self.layers - len(prefix))

    @cached_property
    def level_sizes(self) -> list[list[int]]:
        return [list(r) for r in self.reachable]

    def format(self, genes: Sequence[int]) -> str:
        return "-".join(str(RATES[int(g)]) for g in genes)

    def _parse_genes(self, text: str) -> tuple[int, ...]:
        parts = text.split("-")
        if len(parts) != self.layers:
            raise ValueError(f"expected {self.layers} downsampling rates joined by '-', got {len(parts)}")
        bad = [p for p in parts if p not in {str(r) for r in RATES}]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a downsampling rate; each layer is one of {', '.join(map(str, RATES))}")
        return tuple(RATES.index(int(p)) for p in parts)

    def validate_genes(self, genes: Sequence[int]) -> None:
        if len(genes) != self.layers:
            raise self.error(f"expected {self.layers} layers, got {len(genes)}")
        for i, g in enumerate(genes):
            if not 0 <= g < LEVELS:
                raise self.error(f"layer {i + 1}: level {g} is not one of 0..{LEVELS - 1} (1/4 .. 1/32)")
        if genes[0] not in first_levels(self.pin_first):
            allowed = " or ".join(f"1/{RATES[s]}" for s in first_levels(self.pin_first))
            raise self.error(f"layer 1 is at 1/{RATES[genes[0]]}; it must be at {allowed}"
                             + (" (the thesis' pin; pin_first=False frees it)" if self.pin_first else ""))
        for i in range(1, len(genes)):
            if abs(genes[i] - genes[i - 1]) > 1:
                raise self.error(f"layer {i + 1} jumps from 1/{RATES[genes[i - 1]]} to 1/{RATES[genes[i]]}; a layer "
                                 "halves, keeps or doubles the resolution of the layer before")

    def info(self) -> dict:
        return {**super().info(), "task": self.task, "dataset": self.default_dataset, "cell": self.cell,
                "pin_first": self.pin_first}

    # ------------------------------------------------------------------ networks
    def graph(self, arch: Arch | str) -> nx.DiGraph:
        """The path as a chain ``stem -> L1 .. LL -> aspp -> decoder`` on the trellis.

        Nodes carry ``op`` ("stem", the cell, "aspp", "decoder"), ``layer`` (0 for the stem),
        ``level`` (0..3), ``resolution`` (feature-map side for the 32-pixel input), ``channels``;
        the graph's ``layers``/``levels`` attributes give the grid for the trellis view.
        """
        arch = self.parse(arch)
        side = self.input_shape[1]
        g = nx.DiGraph(space=self.name, arch=str(arch), layers=self.layers, levels=LEVELS, trellis=True)
        g.add_node("stem", op="stem", layer=0, level=0, resolution=side // 4, channels=self.channels[0])
        prev = "stem"
        for i, s in enumerate(arch.genes):
            name = f"L{i + 1}"
            g.add_node(name, op=f"{self.cell} cell", layer=i + 1, level=s, resolution=max(1, side // RATES[s]),
                       channels=self.channels[s])
            g.add_edge(prev, name, op="identity")
            prev = name
        last = arch.genes[-1]
        g.add_node("aspp", op="aspp", layer=self.layers + 1, level=last, resolution=max(1, side // RATES[last]),
                   channels=ASPP_CHANNELS)
        g.add_edge(prev, "aspp", op="identity")
        g.add_node("decoder", op="decoder", layer=self.layers + 2, level=0, resolution=side // 4,
                   channels=ASPP_CHANNELS)
        g.add_edge("aspp", "decoder", op="identity")
        g.add_edge("stem", "decoder", op="skip")
        return g

    def model(self, arch: Arch | str, num_classes: int = 11) -> TrellisNetwork:
        return TrellisNetwork(self, self.parse(arch).genes, num_classes)

    def supernet(self, num_classes: int = 11) -> TrellisNetwork:
        """Single-path supernet: every trellis node; ``net(x, arch)`` runs one path."""
        return TrellisNetwork(self, None, num_classes)
