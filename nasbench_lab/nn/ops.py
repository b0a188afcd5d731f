"""Reusable cell operations (NAS-Bench-201 and DARTS).

Every op takes ``C_in, C_out, stride`` plus ``affine`` / ``track_running_stats`` for its BN, so
the same classes serve standalone networks (affine BN) and supernets (where DARTS-style search
often drops the BN affine parameters). ``OPS`` maps the standard op names to factories with the
signature ``(C_in, C_out, stride, affine, track_running_stats) -> nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ReLUConvBN", "Pool", "box_mean", "Identity", "Zero", "FactorizedReduce", "SepConv", "DilConv",
           "ResNetBasicBlock", "OPS", "make_op"]


def _bn(C: int, affine: bool, track_running_stats: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(C, affine=affine, track_running_stats=track_running_stats)


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias) -> BN; NB-201's ``nor_conv_kxk``."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int = 1, padding: int | None = None,
                 dilation: int = 1, affine: bool = True, track_running_stats: bool = True) -> None:
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2  # "same" size at stride 1
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride, padding, dilation=dilation, bias=False),
            _bn(C_out, affine, track_running_stats),
        )


def box_mean(x: torch.Tensor, kernel_size: int = 3, stride: int = 1, padding: int = 1) -> torch.Tensor:
    """``F.avg_pool2d(x, k, stride, padding, count_include_pad=False)`` as a depthwise convolution
    with a ones kernel, divided by the number of in-bounds pixels of each window.

    The same values (to float rounding: the 9 terms are summed in another order), for a reason of
    speed only: ATen's CPU average pooling with ``count_include_pad=False`` is its slow path
    (NB-201, 64x16x32x32, forward + backward, 2 cores: 8-26 ms NCHW, 2.5 ms channels_last; this:
    1.7 / 1.3 ms), and it was a third of a DARTS step on NB-201.
    """
    C = x.shape[1]
    w = torch.ones(C, 1, kernel_size, kernel_size, dtype=x.dtype, device=x.device)
    total = F.conv2d(x, w, stride=stride, padding=padding, groups=C)
    ones = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype, device=x.device)
    count = F.conv2d(ones, w[:1], stride=stride, padding=padding)  # in-bounds pixels per window
    return total / count


class Pool(nn.Module):
    """3x3 average (``count_include_pad=False``) or max pooling, padding 1.

    When ``C_in != C_out`` a 1x1 :class:`ReLUConvBN` first maps the channels (as NB-201 does);
    pooling itself has no parameters. On CPU, ATen's pooling kernels are slow in NCHW: average
    pooling runs as :func:`box_mean`, max pooling in channels_last (same values exactly: a max does
    not depend on the order; NB-201 64x16x32x32, forward + backward: 12-27 -> 6 ms with the two
    copies). On CUDA both are cuDNN's.
    """

    def __init__(self, C_in: int, C_out: int, stride: int = 1, mode: str = "avg", kernel_size: int = 3,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        if mode not in ("avg", "max"):
            raise ValueError(f"Pool: mode must be 'avg' or 'max', got {mode!r}")
        self.preprocess = (ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine, track_running_stats=track_running_stats)
                           if C_in != C_out else None)
        self.mode, self.kernel_size, self.stride, self.padding = mode, kernel_size, stride, kernel_size // 2
        self.pool = (nn.AvgPool2d(kernel_size, stride, self.padding, count_include_pad=False) if mode == "avg"
                     else nn.MaxPool2d(kernel_size, stride, self.padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        if x.device.type != "cpu" or x.dim() != 4:
            return self.pool(x)
        if self.mode == "avg":
            return box_mean(x, self.kernel_size, self.stride, self.padding)
        if x.is_contiguous(memory_format=torch.channels_last):
            return self.pool(x)
        return self.pool(x.contiguous(memory_format=torch.channels_last)).contiguous()


class Identity(nn.Module):
    """``skip_connect`` at stride 1 with equal channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (``C_out`` channels, spatial size ``ceil(H / stride)``)."""

    def __init__(self, C_in: int, C_out: int, stride: int = 1) -> None:
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = self.stride
        # dtype, device and memory layout of the input (a channels_last network stays channels_last);
        # a zero tensor with no graph needs no backward work
        fmt = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
               else torch.contiguous_format)
        return torch.empty(n, self.C_out, (h + s - 1) // s, (w + s - 1) // s, dtype=x.dtype,
                           device=x.device, memory_format=fmt).zero_()

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


class FactorizedReduce(nn.Module):
    """ReLU -> two stride-2 1x1 convs on pixel grids offset by one -> concat -> BN.

    Halves the resolution without dropping every other pixel (DARTS's ``skip_connect`` at
    stride 2). Odd input sizes are padded on the right/bottom so both halves line up.

    A 1x1 conv at stride 2 is the 1x1 conv of every other pixel: the grids are taken first and the
    convs run at stride 1 (same weights, same numbers). Why: oneDNN (torch 2.13 CPU) corrupts the
    heap in the backward of a stride-2 1x1 conv on channels_last input with one or two output
    channels (C=4 with PC-DARTS' K=4, or C=2, on the DARTS space aborted the process).
    """

    def __init__(self, C_in: int, C_out: int, stride: int = 2, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        if stride != 2:
            raise ValueError(f"FactorizedReduce: only stride 2 is supported, got {stride}")
        self.relu = nn.ReLU(inplace=False)
        half = C_out // 2
        self.conv_1 = nn.Conv2d(C_in, half, 1, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out - half, 1, bias=False)
        self.bn = _bn(C_out, affine, track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        y = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x[:, :, ::2, ::2]), self.conv_2(y[:, :, ::2, ::2])], dim=1))


class DilConv(nn.Sequential):
    """ReLU -> depthwise kxk conv (stride, dilation) -> 1x1 conv -> BN (DARTS ``dil_conv_kxk``)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int = 1, padding: int | None = None,
                 dilation: int = 2, affine: bool = True, track_running_stats: bool = True) -> None:
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            _bn(C_out, affine, track_running_stats),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable units (DARTS ``sep_conv_kxk``); only the first is strided."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int = 1, padding: int | None = None,
                 dilation: int = 1, affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, dilation, affine, track_running_stats),
            DilConv(C_in, C_out, kernel_size, 1, padding, dilation, affine, track_running_stats),
        )


class ResNetBasicBlock(nn.Module):
    """NB-201's reduction block between stages.

    ``a``: ReLU-conv3x3(stride)-BN; ``b``: ReLU-conv3x3-BN; shortcut: AvgPool2d(2, 2) then a
    1x1 conv (no bias, no BN) at stride 2, a 1x1 ReLUConvBN when only the channels change, and the
    identity otherwise. Output = ``b(a(x)) + shortcut(x)`` with no activation after the sum.
    """

    def __init__(self, C_in: int, C_out: int, stride: int = 2, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ResNetBasicBlock: stride must be 1 or 2, got {stride}")
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, affine=affine, track_running_stats=track_running_stats)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine=affine, track_running_stats=track_running_stats)
        self.downsample: nn.Module | None
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(C_in, C_out, 1, bias=False))
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine, track_running_stats=track_running_stats)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.conv_b(self.conv_a(x)) + residual


OpFactory = Callable[[int, int, int, bool, bool], nn.Module]


def _skip(C_in: int, C_out: int, stride: int, affine: bool, track: bool) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return Identity()
    if stride == 1:  # channels change only: a 1x1 projection
        return ReLUConvBN(C_in, C_out, 1, 1, 0, affine=affine, track_running_stats=track)
    return FactorizedReduce(C_in, C_out, stride, affine, track)


#: op name -> factory ``(C_in, C_out, stride, affine, track_running_stats)``; NB-201 and DARTS names
OPS: dict[str, OpFactory] = {
    "none": lambda ci, co, s, a, t: Zero(ci, co, s),
    "skip_connect": _skip,
    "nor_conv_1x1": lambda ci, co, s, a, t: ReLUConvBN(ci, co, 1, s, 0, affine=a, track_running_stats=t),
    "nor_conv_3x3": lambda ci, co, s, a, t: ReLUConvBN(ci, co, 3, s, 1, affine=a, track_running_stats=t),
    "avg_pool_3x3": lambda ci, co, s, a, t: Pool(ci, co, s, "avg", affine=a, track_running_stats=t),
    "max_pool_3x3": lambda ci, co, s, a, t: Pool(ci, co, s, "max", affine=a, track_running_stats=t),
    "sep_conv_3x3": lambda ci, co, s, a, t: SepConv(ci, co, 3, s, 1, affine=a, track_running_stats=t),
    "sep_conv_5x5": lambda ci, co, s, a, t: SepConv(ci, co, 5, s, 2, affine=a, track_running_stats=t),
    "dil_conv_3x3": lambda ci, co, s, a, t: DilConv(ci, co, 3, s, 2, 2, affine=a, track_running_stats=t),
    "dil_conv_5x5": lambda ci, co, s, a, t: DilConv(ci, co, 5, s, 4, 2, affine=a, track_running_stats=t),
}


def make_op(name: str, C_in: int, C_out: int, stride: int = 1, affine: bool = True,
            track_running_stats: bool = True) -> nn.Module:
    """Build the op called ``name`` (a key of :data:`OPS`)."""
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; valid: {', '.join(OPS)}")
    return OPS[name](C_in, C_out, stride, affine, track_running_stats)
