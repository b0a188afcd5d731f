"""Plain PyTorch source of one exported network, per space family.

Each family has two halves that must agree: ``build`` (the workbench's own standalone network, whose
``state_dict`` is what ``model.safetensors`` holds) and ``source`` (the text of ``model.py``: a
``Net`` class that imports only torch and has the *same* module tree, hence the same state-dict
keys, and runs the same operations in the same order, hence bit-identical logits). The export
tests check both on every family, in a process that never imports nasbench_lab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from nasbench_lab.spaces.base import Arch, SearchSpace

HEADER = '''"""{title}

Exported by nasbench_lab {version} (space {space}). Plain PyTorch: nothing here imports nasbench_lab.

    import torch, model
    from safetensors.torch import load_file
    net = model.Net()
    net.load_state_dict(load_file("model.safetensors"))
    net.eval()
    logits = net(torch.randn(1, {shape}))
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
'''


@dataclass(frozen=True)
class Family:
    """How one space family is built in the workbench and written as code."""

    name: str
    settings: Callable[[SearchSpace], dict[str, Any]]  # the space settings the network depends on
    build: Callable[[SearchSpace, Arch, int, dict[str, Any]], nn.Module]
    source: Callable[[SearchSpace, Arch, int, dict[str, Any]], str]  # the body after HEADER


def _lines(items: list[str], indent: int) -> str:
    pad = " " * indent
    return "\n".join(pad + it for it in items)


# ============================================================================ pooling
_POOL_BLOCKS = '''

def conv_bn(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """ResNet basic block without stride; a 1x1 conv+BN projection when channels change."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, 3), nn.ReLU(inplace=True), *conv_bn(cout, cout, 3))
        self.shortcut = nn.Sequential(*conv_bn(cin, cout, 1)) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))
'''

_POOL_BOTTLENECK = '''

class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, expansion 4) without stride."""

    def __init__(self, cin: int, width: int, expansion: int = 4) -> None:
        super().__init__()
        cout = width * expansion
        self.body = nn.Sequential(
            *conv_bn(cin, width, 1), nn.ReLU(inplace=True),
            *conv_bn(width, width, 3), nn.ReLU(inplace=True),
            *conv_bn(width, cout, 1),
        )
        self.shortcut = nn.Sequential(*conv_bn(cin, cout, 1)) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))
'''


def _pooling_settings(space: SearchSpace) -> dict[str, Any]:
    return {"variant": space.variant.name}


def _pooling_build(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> nn.Module:
    return space.model(arch, num_classes)


def _pooling_source(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> str:
    from nasbench_lab.spaces.pooling import _boundaries

    v = space.variant
    pools = _boundaries(space.layout(arch))
    res = space.resolutions(arch)
    rows = [f"nn.Sequential(*conv_bn(3, {v.stem_channels}, 3), nn.ReLU(inplace=True)),  # stem, {res[0]}x{res[0]}"]
    cin = v.stem_channels
    for i, w in enumerate(v.widths, start=1):
        block = f"BasicBlock({cin}, {w})" if v.block == "basic" else f"Bottleneck({cin}, {w}, {v.expansion})"
        note = f"  # block {i}, {res[i]}x{res[i]}" + (", after a 2x2 max-pooling" if i in pools else "")
        rows.append(block + "," + note)
        cin = w * v.expansion
    body = _POOL_BLOCKS + (_POOL_BOTTLENECK if v.block == "bottleneck" else "")
    return body + f'''

class Net(nn.Module):
    """{v.name} with its poolings at layout {arch} (layers per resolution, stem included)."""

    POOL_BEFORE = {tuple(pools)!r}  # layers (0 = stem) preceded by a 2x2 max-pooling

    def __init__(self, num_classes: int = {num_classes}) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
{_lines(rows, 12)}
        ])
        self.pool = nn.MaxPool2d(2)
        self.classifier = nn.Linear({cin}, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if i in self.POOL_BEFORE:
                x = self.pool(x)
            x = layer(x)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
'''


# ============================================================================ NAS-Bench-201
_NB201_OPS = '''

class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias) -> BN (NAS-Bench-201's nor_conv_kxk)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int | None = None) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(cin, cout, k, stride, k // 2 if padding is None else padding, bias=False),
                         nn.BatchNorm2d(cout))


class AvgPool3x3(nn.Module):
    """3x3 average pooling, stride 1, padding 1, padded pixels not counted.

    On a CPU it runs as a depthwise convolution with a ones kernel divided by the in-bounds count
    (the same values as F.avg_pool2d up to float rounding, and the path the search ran, so the
    logits match the workbench's bit for bit); elsewhere it is F.avg_pool2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        w = torch.ones(x.shape[1], 1, 3, 3, dtype=x.dtype, device=x.device)
        total = F.conv2d(x, w, stride=1, padding=1, groups=x.shape[1])
        ones = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        return total / F.conv2d(ones, w[:1], stride=1, padding=1)


class ResNetBasicBlock(nn.Module):
    """Reduction block between stages: b(a(x)) + shortcut(x), stride 2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2, 1)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)
'''

_NB201_MODULE = {
    "skip_connect": "nn.Identity()",
    "nor_conv_1x1": "ReLUConvBN(C, C, 1, 1, 0)",
    "nor_conv_3x3": "ReLUConvBN(C, C, 3, 1, 1)",
    "avg_pool_3x3": "AvgPool3x3()",
}


def _nb201_settings(space: SearchSpace) -> dict[str, Any]:
    return {"C": 16, "N": 5}


def _nb201_build(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> nn.Module:
    from nasbench_lab.spaces.nb201 import NB201Network

    return NB201Network(arch.genes, num_classes, C=int(settings["C"]), N=int(settings["N"]))


def _nb201_source(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> str:
    from nasbench_lab.spaces.nb201 import _NODE_INPUTS, EDGES, OPS

    genes = arch.genes
    edges = []
    for k, (dst, src) in enumerate(EDGES):
        op = OPS[genes[k]]
        if op == "none":
            edges.append(f"nn.ModuleDict(),  # edge {dst}<-{src}: none (no connection)")
        else:
            edges.append(f'nn.ModuleDict({{"{op}": {_NB201_MODULE[op]}}}),  # edge {dst}<-{src}')
    fwd = []
    for j, ins in enumerate(_NODE_INPUTS, start=1):
        src_name = ["x", "n1", "n2"]
        terms = [f'e[{k}]["{OPS[genes[k]]}"]({src_name[src]})' for k, src in ins if genes[k] != 0]
        fwd.append(f"n{j} = " + (" + ".join(terms) if terms else "torch.zeros_like(x)  # only 'none' edges"))
    C, N = int(settings["C"]), int(settings["N"])
    return _NB201_OPS + f'''

class Cell(nn.Module):
    """The cell {arch}: node j sums its incoming edges; the output is node 3."""

    def __init__(self, C: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList([
{_lines(edges, 12)}
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.edges
{_lines(fwd, 8)}
        return n3


class Net(nn.Module):
    """NAS-Bench-201 network: stem, 3 stages of {N} cells ({C}/{2 * C}/{4 * C} channels) joined by
    stride-2 residual blocks, BN-ReLU, global average pooling, linear."""

    def __init__(self, num_classes: int = {num_classes}, C: int = {C}, N: int = {N}) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                layers.append(ResNetBasicBlock(width // 2, width))
            layers += [Cell(width) for _ in range(N)]
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=True))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        x = self.global_pool(self.lastact(x)).flatten(1)
        return self.classifier(x)
'''


# ============================================================================ NAS-Bench-Macro / MobileNet blocks
_MB_BLOCKS = '''

def make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never below 90% of ``v``."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


class SqueezeExcite(nn.Module):
    """x * h_sigmoid(W2 h_swish(W1 avgpool(x))), both 1x1 convs with bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = make_divisible(channels / 4, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.act = nn.Hardswish(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand -> BN -> ReLU] -> depthwise kxk (stride) -> BN -> ReLU
    -> [squeeze-excite] -> 1x1 project -> BN, plus the input when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int, k: int, se: bool = False) -> None:
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + x if self.residual else y


def projection(cin: int, cout: int, stride: int) -> nn.Module:
    """The identity layer: a 1x1 conv (stride) + BN where the shape changes, else nothing."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
'''


def _no_settings(space: SearchSpace) -> dict[str, Any]:
    return {}


def _nbmacro_build(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> nn.Module:
    return space.model(arch, num_classes)


def _nbmacro_source(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> str:
    from nasbench_lab.spaces.nbmacro import _OP_SHAPE, HEAD_CHANNELS, LAYERS, OPS, STEM_CHANNELS

    rows = []
    for layer in LAYERS:
        op = OPS[arch.genes[layer.index]]
        if op == "Identity":
            mod = f"projection({layer.c_in}, {layer.c_out}, {layer.stride})"
        else:
            t, k = _OP_SHAPE[op]
            mod = f"InvertedResidual({layer.c_in}, {layer.c_out}, {layer.stride}, {t}, {k})"
        rows.append(f'nn.ModuleDict({{"{op}": {mod}}}),  # layer {layer.index + 1}, '
                    f"{layer.resolution}x{layer.resolution}")
    c = LAYERS[-1].c_out
    return _MB_BLOCKS + f'''

class Net(nn.Module):
    """NAS-Bench-Macro network {arch}: stem, 8 searched layers (stages of 2/3/3), 1x1 head, linear."""

    def __init__(self, num_classes: int = {num_classes}) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, {STEM_CHANNELS}, 3, 1, 1, bias=False), nn.BatchNorm2d({STEM_CHANNELS}),
                                  nn.ReLU(inplace=True))
        self.layers = nn.ModuleList([
{_lines(rows, 12)}
        ])
        self.head = nn.Sequential(nn.Conv2d({c}, {HEAD_CHANNELS}, 1, bias=False), nn.BatchNorm2d({HEAD_CHANNELS}),
                                  nn.ReLU(inplace=True))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear({HEAD_CHANNELS}, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = next(iter(layer.values()))(x)  # each layer holds its one chosen op
        x = self.global_pool(self.head(x)).flatten(1)
        return self.classifier(x)
'''


# ============================================================================ DARTS (evaluation network)
_DARTS_OPS = """

class ReLUConvBN(nn.Sequential):
    \"\"\"ReLU -> conv (no bias) -> BN.\"\"\"

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, padding, bias=False),
                         nn.BatchNorm2d(cout))


class DilConv(nn.Sequential):
    \"\"\"ReLU -> depthwise kxk conv (stride, dilation) -> 1x1 conv -> BN.\"\"\"

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(cin, cin, k, stride, padding, dilation=dilation, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


class SepConv(nn.Sequential):
    \"\"\"Two stacked depthwise-separable units; only the first is strided.\"\"\"

    def __init__(self, C: int, k: int, stride: int) -> None:
        super().__init__(DilConv(C, C, k, stride, k // 2, 1), DilConv(C, C, k, 1, k // 2, 1))


class FactorizedReduce(nn.Module):
    \"\"\"ReLU -> two stride-2 1x1 convs on pixel grids offset by one -> concat -> BN.\"\"\"

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(cin, cout // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(cin, cout - cout // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        y = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(y)], dim=1))


class AvgPool3x3(nn.Module):
    \"\"\"3x3 average pooling, padding 1, padded pixels not counted.

    On a CPU it runs as a depthwise convolution with a ones kernel divided by the in-bounds count
    (F.avg_pool2d's values up to float rounding, and the path the workbench runs, so the logits
    match it bit for bit); elsewhere it is F.avg_pool2d.
    \"\"\"

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        w = torch.ones(x.shape[1], 1, 3, 3, dtype=x.dtype, device=x.device)
        total = F.conv2d(x, w, stride=self.stride, padding=1, groups=x.shape[1])
        ones = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        return total / F.conv2d(ones, w[:1], stride=self.stride, padding=1)


def make_op(name: str, C: int, stride: int) -> nn.Module:
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C, C)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "avg_pool_3x3":
        return AvgPool3x3(stride)
    if name.startswith("sep_conv"):
        k = int(name[-1])
        return SepConv(C, k, stride)
    k = int(name[-1])  # dil_conv_kxk: dilation 2
    return DilConv(C, C, k, stride, k - 1, 2)


class Cell(nn.Module):
    \"\"\"A DARTS cell: inputs c_{k-2} (node 0) and c_{k-1} (node 1), four nodes that each sum two
    (op, input) edges, output = the four nodes concatenated.\"\"\"

    def __init__(self, genotype: list[tuple[str, int]], c_pp: int, c_p: int, C: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, C) if reduction_prev else ReLUConvBN(c_pp, C, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_p, C, 1, 1, 0)
        self.inputs = [i for _, i in genotype]
        self.ops = nn.ModuleList([make_op(op, C, 2 if reduction and i < 2 else 1) for op, i in genotype])

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for n in range(4):
            a, b = 2 * n, 2 * n + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)
"""


def _darts_settings(space: SearchSpace) -> dict[str, Any]:
    return {"C": int(space.C), "layers": int(space.layers)}


def _darts_build(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> nn.Module:
    from nasbench_lab.spaces.darts import DartsNetwork

    return DartsNetwork(arch, num_classes, int(settings["C"]), int(settings["layers"]))


def _darts_source(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> str:
    def fmt(cell: str) -> str:
        return "[" + ", ".join(f"({op!r}, {i})" for op, i in space.cell(arch, cell)) + "]"

    C, layers = int(settings["C"]), int(settings["layers"])
    return _DARTS_OPS + f'''

class Net(nn.Module):
    """DARTS evaluation network ({layers} cells, C={C}; reduction cells at 1/3 and 2/3 of the depth;
    no auxiliary head, no drop-path: this is the inference network)."""

    NORMAL = {fmt("normal")}
    REDUCE = {fmt("reduce")}

    def __init__(self, num_classes: int = {num_classes}, C: int = {C}, layers: int = {layers}) -> None:
        super().__init__()
        c_curr = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            genotype = self.REDUCE if reduction else self.NORMAL
            self.cells.append(Cell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_curr
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(s1, 1), 1))
'''


# ============================================================================ MobileNetV2 macro space
def _mobilenet_settings(space: SearchSpace) -> dict[str, Any]:
    return {"variant": space.variant.name, "width_mult": float(space.width_mult)}


def mobilenet_space(name: str, settings: dict[str, Any]) -> SearchSpace:
    """The MobileNet space of an export (a registered name, or rebuilt from its settings)."""
    from nasbench_lab.spaces.mobilenet import MobileNetSpace

    return MobileNetSpace(str(settings["variant"]), float(settings["width_mult"]), space_name=name)


def _mobilenet_build(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> nn.Module:
    if settings != _mobilenet_settings(space):
        space = mobilenet_space(space.name, settings)
    return space.model(arch, num_classes)


def _mobilenet_source(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any]) -> str:
    from nasbench_lab.spaces.mobilenet import _SHAPE, HEAD_CHANNELS, OPS

    if settings != _mobilenet_settings(space):
        space = mobilenet_space(space.name, settings)
    rows = []
    for layer in space.layers:
        op = OPS[arch.genes[layer.index]]
        if op == "ID":
            mod = f"projection({layer.c_in}, {layer.c_out}, {layer.stride})"
        else:
            t, k, se = _SHAPE[op]
            mod = f"InvertedResidual({layer.c_in}, {layer.c_out}, {layer.stride}, {t}, {k}, se={se})"
        rows.append(f'nn.ModuleDict({{"{op}": {mod}}}),  # layer {layer.index + 1} (stack {layer.stack})')
    v, c0, c1 = space.variant, space.stem_channels, space.first_channels
    return _MB_BLOCKS + f'''

class Net(nn.Module):
    """MobileNetV2-style network {arch} ({v.name} geometry, {v.resolution}x{v.resolution} input,
    width x{space.width_mult:g}): stem, 21 searched layers, 1x1 head, linear."""

    def __init__(self, num_classes: int = {num_classes}) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, {c0}, 3, {v.stem_stride}, 1, bias=False), nn.BatchNorm2d({c0}),
                                  nn.ReLU(inplace=True), InvertedResidual({c0}, {c1}, 1, 1, 3))
        self.layers = nn.ModuleList([
{_lines(rows, 12)}
        ])
        self.head = nn.Sequential(nn.Conv2d({space.layers[-1].c_out}, {HEAD_CHANNELS}, 1, bias=False),
                                  nn.BatchNorm2d({HEAD_CHANNELS}), nn.ReLU(inplace=True))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear({HEAD_CHANNELS}, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = next(iter(layer.values()))(x)  # each layer holds its one chosen op
        return self.classifier(self.global_pool(self.head(x)).flatten(1))
'''


FAMILIES: dict[str, Family] = {
    "pooling": Family("pooling", _pooling_settings, _pooling_build, _pooling_source),
    "nb201": Family("nb201", _nb201_settings, _nb201_build, _nb201_source),
    "nbmacro": Family("nbmacro", _no_settings, _nbmacro_build, _nbmacro_source),
    "darts": Family("darts", _darts_settings, _darts_build, _darts_source),
    "mobilenet": Family("mobilenet", _mobilenet_settings, _mobilenet_build, _mobilenet_source),
}


def family_of(space: SearchSpace) -> Family:
    """The family that exports ``space`` (ValueError naming the exportable spaces otherwise)."""
    from nasbench_lab.spaces.mobilenet import MobileNetSpace

    key = ("pooling" if space.name.startswith("pooling") else "mobilenet" if isinstance(space, MobileNetSpace)
           else space.name)
    if key not in FAMILIES:
        raise ValueError(f"export: space {space.name!r} cannot be exported yet; exportable families: "
                         f"{', '.join(FAMILIES)} (e.g. space='pooling')")
    return FAMILIES[key]


def source(space: SearchSpace, arch: Arch, num_classes: int, settings: dict[str, Any], version: str) -> str:
    """The full text of ``model.py``."""
    fam = family_of(space)
    c, h, w = space.input_shape
    head = HEADER.format(title=f"{space.name} network {arch}", version=version, space=space.name, arch=arch,
                         shape=f"{c}, {h}, {w}")
    return head + fam.source(space, arch, num_classes, settings)
