"""Pooling search space: where a ResNet downsamples (thesis 003 §2.2.1, Table 2.7).

The network is a fixed chain of layers: a 3x3 stem conv (layer 1, always at full resolution)
followed by residual blocks. Strided convolutions are replaced by ``nn.MaxPool2d(2)`` and the
search decides *where* the poolings go. An architecture is written as the number of layers at
each resolution (its *layout*), e.g. ``[4,3,3]`` for ResNet20 = stem + 3 blocks at 32x32,
3 blocks at 16x16 and 3 blocks at 8x8 (the standard layout). Counts are >= 1 and sum to the
depth, so with ``p`` poolings and ``L`` layers the space has ``C(L-1, p)`` architectures.

Decisions (the genes every sampler sees) are *per layer*, as in the thesis (§3.5.1: "each layer
has the binary choice of performing downsampling (pooling) or maintaining resolution
(identity)"; §3.5: the default MCTS tree takes each layer as a level; Table 3.2 one-hot encodes
the operation of each layer): gene ``i`` is 1 when a max-pooling sits right before block
``i + 1`` (layer ``i + 2``), else 0. The stem never pools (§2.2.1: the first pooling would only
resize the input), so there are ``L - 1`` genes, and ``level_options`` enforces exactly ``p``
poolings. ``[4,3,3]`` = genes ``(0,0,0,1,0,0,1,0,0)``. The layout stays the canonical string
(tables, views, checkpoints, CLI), ``layout(arch)`` / ``from_layout(counts)`` convert, and
``enumerate()`` keeps the layout order of the pooling benchmark (``[1,1,8]``, ``[1,2,7]``, ...),
so indices into the benchmark are unchanged.

Channels are fixed per layer *index* (as in the standard network), not per resolution, so every
architecture has exactly the same parameters and one set of weights serves them all ("full
weight sharing", the property that makes this space hard for one-shot NAS). Moving a pooling
only changes resolutions. The standalone model and the supernet are therefore the same class,
:class:`PoolingResNet`, whose ``forward(x, arch)`` places the poolings per call.

Variants (``PoolingSpace(variant=...)``, registry names in brackets):

- ``resnet20`` ("pooling"): stem + 9 basic blocks, channels 16/32/64, resolutions 32/16/8,
  10 layers, C(9,2) = 36 layouts, default ``[4,3,3]``; CIFAR-10.
- ``resnet18`` ("pooling-resnet18"): stem + 8 basic blocks, channels 64/128/256/512,
  resolutions 32/16/8/4, 9 layers, C(8,3) = 56 layouts, default ``[3,2,2,2]``; CIFAR-10.
- ``resnet50`` ("pooling-resnet50"): stem + 16 bottlenecks [3,4,6,3], widths 64..512 (x4),
  resolutions 32/16/8/4, 17 layers, C(16,3) = 560 layouts, default ``[4,4,6,3]``; CIFAR-100
  (``num_classes`` defaults to 100).

Deviation from the thesis: it says the fully connected layer is removed; we keep the usual
global-average-pool + linear classifier so every model maps an image to class logits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab import validation as V
from nasbench_lab.spaces.base import Arch, SearchSpace

__all__ = ["PoolingSpace", "PoolingResNet", "VARIANTS", "BasicBlock", "Bottleneck", "decisions_of", "layout_of"]


# --------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """A backbone: the fixed chain of layers whose poolings are searched."""

    name: str
    block: str  # "basic" or "bottleneck"
    stem_channels: int
    widths: tuple[int, ...]  # per block; the output channels are width * expansion
    resolutions: tuple[int, ...]  # feature-map sizes, first = input size
    default: tuple[int, ...]  # the standard layout (layers per resolution, stem included)
    num_classes: int
    dataset: str

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def depth(self) -> int:
        """Searched layers: the stem plus every block."""
        return 1 + len(self.widths)

    @property
    def channels(self) -> tuple[int, ...]:
        """Output channels of every layer (stem first)."""
        return (self.stem_channels, *(w * self.expansion for w in self.widths))


VARIANTS: dict[str, Variant] = {
    "resnet20": Variant("resnet20", "basic", 16, (16,) * 3 + (32,) * 3 + (64,) * 3,
                        (32, 16, 8), (4, 3, 3), 10, "cifar10"),
    "resnet18": Variant("resnet18", "basic", 64, (64, 64, 128, 128, 256, 256, 512, 512),
                        (32, 16, 8, 4), (3, 2, 2, 2), 10, "cifar10"),
    "resnet50": Variant("resnet50", "bottleneck", 64, (64,) * 3 + (128,) * 4 + (256,) * 6 + (512,) * 3,
                        (32, 16, 8, 4), (4, 4, 6, 3), 100, "cifar100"),
}

_REGISTRY_NAME = {"resnet20": "pooling", "resnet18": "pooling-resnet18", "resnet50": "pooling-resnet50"}


def _fmt(counts: Sequence[int]) -> str:
    return "[" + ",".join(str(int(c)) for c in counts) + "]"


def _parse_counts(text: str) -> tuple[int, ...]:
    """``"[4, 3,3]"`` -> ``(4, 3, 3)`` (a trailing comma allowed); ValueError on anything else.

    Split, not a regular expression: the old pattern's adjacent ``\\s*`` runs backtracked
    quadratically (``[1`` and 120 KB of spaces took more than 30 s); this is one pass.
    """
    text = text.strip()
    parts = text[1:-1].split(",") if len(text) >= 2 and text[0] == "[" and text[-1] == "]" else []
    if parts and not parts[-1].strip() and len(parts) > 1:
        parts.pop()  # "[4,3,3,]"
    numbers = [p.strip() for p in parts]
    if not numbers or not all(n.isascii() and n.isdigit() for n in numbers):
        raise ValueError("expected a bracketed list of layer counts such as [4,3,3]")
    return tuple(int(n) for n in numbers)


def _boundaries(counts: Sequence[int]) -> tuple[int, ...]:
    """Layer indices (0 = stem) that have a pooling right before them."""
    out, total = [], 0
    for c in counts[:-1]:
        total += int(c)
        out.append(total)
    return tuple(out)


def decisions_of(counts: Sequence[int], depth: int) -> tuple[int, ...]:
    """Per-layer pooling decisions of a layout: gene ``i`` = 1 when block ``i + 1`` is pooled."""
    pools = set(_boundaries(counts))
    return tuple(int(i in pools) for i in range(1, depth))


def layout_of(decisions: Sequence[int]) -> tuple[int, ...]:
    """Layers per resolution of per-layer decisions (the stem is layer 0 and never pools)."""
    out, n = [], 1
    for d in decisions:
        if int(d):
            out.append(n)
            n = 0
        n += 1
    return (*out, n)


# --------------------------------------------------------------------------- network
def _conv_bn(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """ResNet basic block without stride; a 1x1 conv+BN projection when channels change."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, 3), nn.ReLU(inplace=True), *_conv_bn(cout, cout, 3))
        self.shortcut = nn.Sequential(*_conv_bn(cin, cout, 1)) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, expansion 4) without stride."""

    def __init__(self, cin: int, width: int, expansion: int = 4) -> None:
        super().__init__()
        cout = width * expansion
        self.body = nn.Sequential(
            *_conv_bn(cin, width, 1), nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3), nn.ReLU(inplace=True),
            *_conv_bn(width, cout, 1),
        )
        self.shortcut = nn.Sequential(*_conv_bn(cin, cout, 1)) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class PoolingResNet(nn.Module):
    """A ResNet whose max-poolings are placed per forward call.

    ``forward(x, arch=None)``: ``arch`` is an :class:`Arch` (per-layer decisions), its string
    (``"[4,3,3]"``), a layout (layers per resolution, e.g. ``(4, 3, 3)``) or a sequence of
    per-layer decisions (``depth - 1`` zeros and ones). Without it the architecture fixed at
    construction is used (``space.model(arch)``), or else the variant's standard layout (a
    supernet called without an architecture behaves as the reference network).
    """

    def __init__(self, variant: str | Variant = "resnet20", num_classes: int | None = None,
                 arch: Arch | Sequence[int] | str | None = None) -> None:
        super().__init__()
        self.variant = VARIANTS[variant] if isinstance(variant, str) else variant
        v = self.variant
        self.num_classes = int(num_classes if num_classes is not None else v.num_classes)
        stem = nn.Sequential(*_conv_bn(3, v.stem_channels, 3), nn.ReLU(inplace=True))
        layers: list[nn.Module] = [stem]
        cin = v.stem_channels
        for w in v.widths:
            layers.append(BasicBlock(cin, w) if v.block == "basic" else Bottleneck(cin, w, v.expansion))
            cin = w * v.expansion
        self.layers = nn.ModuleList(layers)
        self.pool = nn.MaxPool2d(2)
        self.classifier = nn.Linear(cin, self.num_classes)
        self._pools_cache: dict[tuple[int, ...], frozenset[int]] = {}
        self.arch: tuple[int, ...] = self._genes(arch if arch is not None else v.default)
        self.fixed = arch is not None
        self.pools()  # validate the fixed layout now rather than at the first forward

    def _genes(self, arch: Arch | Sequence[int] | str) -> tuple[int, ...]:
        """The layout (layers per resolution) of any accepted form of ``arch``."""
        if isinstance(arch, Arch):
            return layout_of(arch.genes)
        if isinstance(arch, str):
            return _parse_counts(arch)
        genes = tuple(int(g) for g in arch)
        v = self.variant
        if len(genes) == v.depth - 1 and len(genes) != len(v.resolutions) and set(genes) <= {0, 1} \
                and sum(genes) == len(v.resolutions) - 1:
            return layout_of(genes)  # per-layer decisions
        return genes

    def pools(self, arch: Arch | Sequence[int] | str | None = None) -> frozenset[int]:
        """Indices of the layers (0 = stem) preceded by a max-pooling."""
        genes = self.arch if arch is None else self._genes(arch)
        pools = self._pools_cache.get(genes)
        if pools is None:
            v = self.variant
            if len(genes) != len(v.resolutions) or sum(genes) != v.depth or min(genes) < 1:
                raise ValueError(
                    f"PoolingResNet({v.name}): {list(genes)} is not a layout of {v.depth} layers over "
                    f"{len(v.resolutions)} resolutions (each >= 1), e.g. {_fmt(v.default)}"
                )
            pools = self._pools_cache[genes] = frozenset(_boundaries(genes))
        return pools

    def features(self, x: torch.Tensor, arch: Arch | Sequence[int] | str | None = None) -> torch.Tensor:
        """Globally pooled features before the classifier."""
        pools = self.pools(arch)
        for i, layer in enumerate(self.layers):
            if i in pools:
                x = self.pool(x)
            x = layer(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor, arch: Arch | Sequence[int] | str | None = None) -> torch.Tensor:
        return self.classifier(self.features(x, arch))


# --------------------------------------------------------------------------- space
class PoolingSpace(SearchSpace):
    """Where a ResNet pools; genes = one binary decision per block (1 = pool before it), the
    canonical string = the layout, e.g. ``[4,3,3]`` = genes ``(0,0,0,1,0,0,1,0,0)``.

    ``distance`` is the L1 distance between the per-layer resolution-level vectors (level 0 =
    full resolution), which equals the summed displacement of the poolings and the length of
    the shortest path of ``neighbours`` moves (each move shifts one pooling by one layer).
    """

    product_space = False

    def __init__(self, variant: str = "resnet20") -> None:
        if variant not in VARIANTS:
            raise ValueError(f"PoolingSpace: unknown variant {V.shorten(variant)}; valid: {', '.join(VARIANTS)}")
        self.variant = VARIANTS[variant]
        v = self.variant
        self.name = _REGISTRY_NAME[variant]
        self.example = _fmt(v.default)
        self.input_shape = (3, v.resolutions[0], v.resolutions[0])
        self.default_num_classes = v.num_classes
        self.description = (
            f"{v.name} ({v.depth} layers, {v.block} blocks): layers per resolution "
            f"{'/'.join(map(str, v.resolutions))}, C({v.depth - 1},{len(v.resolutions) - 1}) architectures"
        )

    # ----------------------------------------------------------------- decision tree
    @property
    def num_levels(self) -> int:
        """One decision per block (every layer but the stem)."""
        return self.variant.depth - 1

    @property
    def depth(self) -> int:
        return self.variant.depth

    @property
    def num_resolutions(self) -> int:
        return len(self.variant.resolutions)

    @property
    def num_poolings(self) -> int:
        return self.num_resolutions - 1

    def level_options(self, prefix: Sequence[int]) -> Sequence[int]:
        """0 (identity) and/or 1 (pool), so that exactly ``num_poolings`` poolings are placed."""
        level = len(prefix)
        if level >= self.num_levels:
            return []
        placed = sum(int(g) for g in prefix)
        left = self.num_poolings - placed  # poolings still to place
        remaining = self.num_levels - level  # decisions left, this one included
        if left <= 0:
            return [0]
        if left >= remaining:
            return [1]
        return [0, 1]

    def level_name(self, level: int) -> str:
        return f"block {level + 1}"

    def option_label(self, level: int, gene: int) -> str:
        return "pool" if int(gene) else "identity"

    def format(self, genes: Sequence[int]) -> str:
        return _fmt(layout_of(genes))

    def _parse_genes(self, text: str) -> tuple[int, ...]:
        counts = _parse_counts(text)
        self.validate_layout(counts)
        return decisions_of(counts, self.depth)

    def validate_layout(self, counts: Sequence[int]) -> None:
        """Clear messages for the three ways a layout (layers per resolution) can be wrong."""
        counts = tuple(int(c) for c in counts)
        if len(counts) != self.num_resolutions:
            raise self.error(
                f"expected {self.num_resolutions} layer counts (one per resolution "
                f"{'/'.join(map(str, self.variant.resolutions))}), got {len(counts)}"
            )
        if min(counts) < 1:
            raise self.error(f"{_fmt(counts)}: every resolution needs at least one layer")
        if sum(counts) != self.depth:
            raise self.error(f"{_fmt(counts)}: layer counts must sum to {self.depth}, got {sum(counts)}")

    def validate_genes(self, genes: Sequence[int]) -> None:
        if len(genes) != self.num_levels or not set(int(g) for g in genes) <= {0, 1}:
            hint = (f"; {list(genes)} looks like a layout: use parse() or from_layout()"
                    if len(genes) == self.num_resolutions else "")
            raise self.error(f"expected {self.num_levels} per-layer pooling decisions (0 = identity, "
                             f"1 = pool before the block), got {list(genes)}{hint}")
        if sum(int(g) for g in genes) != self.num_poolings:
            raise self.error(f"{list(genes)}: expected exactly {self.num_poolings} poolings, "
                             f"got {sum(int(g) for g in genes)}")

    def parse(self, text: str | Arch | Sequence[int]) -> Arch:
        """Also takes a layout sequence such as ``(4, 3, 3)`` (its length tells it from decisions)."""
        if not isinstance(text, str | Arch):
            if isinstance(text, bytes) or not isinstance(text, Sequence | np.ndarray):
                raise self.error(f"expected a layout of {self.num_resolutions} layer counts such as "
                                 f"{self.example}, {self.num_levels} per-layer pooling decisions or its string, "
                                 f"got {V.shorten(text)}")
            seq = self.integer_genes(text)  # 4.7 or True is an error, never truncated
            if len(seq) == self.num_resolutions:
                return self.from_layout(seq)
        return super().parse(text)

    def from_layout(self, counts: Sequence[int]) -> Arch:
        """The architecture of a layout (layers per resolution), e.g. ``(4, 3, 3)``."""
        self.validate_layout(counts)
        return self.arch(decisions_of(counts, self.depth))

    def layout(self, arch: Arch | str | Sequence[int]) -> tuple[int, ...]:
        """Layers per resolution, e.g. ``(4, 3, 3)``."""
        return layout_of(self.parse(arch).genes)

    def iter_genes(self) -> Iterator[tuple[int, ...]]:
        """Every architecture in the layout order of the pooling benchmark ([1,1,8], [1,2,7], ...)."""
        def layouts(prefix: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
            left, later = self.depth - sum(prefix), self.num_resolutions - len(prefix) - 1
            if later == 0:
                yield (*prefix, left)
                return
            for c in range(1, left - later + 1):
                yield from layouts((*prefix, c))

        for counts in layouts(()):
            yield decisions_of(counts, self.depth)

    @cached_property
    def size(self) -> int:
        return math.comb(self.depth - 1, self.num_poolings)

    # ----------------------------------------------------------------- geometry of the space
    def pool_positions(self, arch: Arch | str | Sequence[int]) -> tuple[int, ...]:
        """Layer indices (0 = stem) preceded by a pooling."""
        return _boundaries(self.layout(arch))

    def levels(self, arch: Arch | str | Sequence[int]) -> list[int]:
        """Resolution level of every layer (0 = full resolution)."""
        return [lvl for lvl, n in enumerate(self.layout(arch)) for _ in range(n)]

    def resolutions(self, arch: Arch | str | Sequence[int]) -> list[int]:
        """Feature-map size of every layer, e.g. 32, 32, 32, 32, 16, ..."""
        res = self.variant.resolutions
        return [res[lvl] for lvl in self.levels(arch)]

    def distance(self, a: Arch, b: Arch) -> int:
        """L1 distance of the per-layer resolution levels = total pooling displacement."""
        pa, pb = self.pool_positions(a), self.pool_positions(b)
        return int(sum(abs(x - y) for x, y in zip(pa, pb)))

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Move one pooling by one layer (earlier or later), keeping every count >= 1."""
        counts = list(self.layout(arch))
        out = []
        for k in range(self.num_poolings):
            for step in (-1, 1):  # -1: pooling k moves one layer earlier
                g = counts.copy()
                g[k] += step
                g[k + 1] -= step
                if min(g) >= 1:
                    out.append(self.from_layout(g))
        return out

    # ----------------------------------------------------------------- networks
    def graph(self, arch: Arch) -> nx.DiGraph:
        """Chain stem -> block1 -> ...; nodes carry op, resolution, channels, pool_before.

        Edges carry ``op`` = ``"maxpool"`` where a pooling sits between two layers, else
        ``"identity"``.
        """
        arch = self.parse(arch)
        v = self.variant
        pools = set(_boundaries(self.layout(arch)))
        res = self.resolutions(arch)
        g = nx.DiGraph(space=self.name, arch=str(arch))
        names = ["stem"] + [f"block{i}" for i in range(1, v.depth)]
        for i, name in enumerate(names):
            g.add_node(name, op="conv3x3" if i == 0 else v.block, layer=i, resolution=res[i],
                       channels=v.channels[i], pool_before=i in pools)
        for i in range(1, v.depth):
            g.add_edge(names[i - 1], names[i], op="maxpool" if i in pools else "identity")
        return g

    def _classes(self, num_classes: int | None) -> int:
        return self.default_num_classes if num_classes is None else int(num_classes)

    def model(self, arch: Arch, num_classes: int | None = None) -> PoolingResNet:
        return PoolingResNet(self.variant, self._classes(num_classes), arch=self.parse(arch))

    def supernet(self, num_classes: int | None = None) -> PoolingResNet:
        """All architectures share every weight, so the supernet is the plain network."""
        return PoolingResNet(self.variant, self._classes(num_classes))

    def params(self, arch: Arch, num_classes: int | None = None) -> int:
        self.parse(arch)  # validate; every architecture has the same parameters
        return self._params(self._classes(num_classes))

    def _params(self, num_classes: int) -> int:
        cache = self.__dict__.setdefault("_params_cache", {})
        if num_classes not in cache:
            net = PoolingResNet(self.variant, num_classes)
            cache[num_classes] = int(sum(p.numel() for p in net.parameters()))
        return cache[num_classes]

    @cached_property
    def _layer_macs(self) -> list[int]:
        """MACs of every layer at full resolution (a pooling divides them by 4)."""
        v = self.variant
        hw = self.input_shape[1] * self.input_shape[2]
        out = [hw * 3 * v.stem_channels * 9]
        cin = v.stem_channels
        for w in v.widths:
            cout = w * v.expansion
            if v.block == "basic":
                macs = cin * w * 9 + w * w * 9
            else:
                macs = cin * w + w * w * 9 + w * cout
            if cin != cout:
                macs += cin * cout  # projection shortcut
            out.append(hw * macs)
            cin = cout
        return out

    def flops(self, arch: Arch, num_classes: int | None = None) -> int:
        """Conv and linear MACs, computed analytically (equal to ``count_macs`` on the model)."""
        levels = self.levels(arch)
        convs = sum(m // 4**lvl for m, lvl in zip(self._layer_macs, levels))
        return int(convs + self.variant.channels[-1] * self._classes(num_classes))

    def info(self) -> dict:
        return {**super().info(), "variant": self.variant.name, "depth": self.depth,
                "resolutions": list(self.variant.resolutions), "num_classes": self.default_num_classes}
