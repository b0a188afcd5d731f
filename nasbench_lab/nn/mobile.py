"""MobileNetV2 building blocks shared by NAS-Bench-Macro and the MobileNetV2 (ImageNet) space.

- :class:`InvertedResidual` (``MBt_Kk``, Sandler et al. 2018): 1x1 expand (t x C_in) -> BN -> ReLU ->
  depthwise kxk (stride) -> BN -> ReLU -> [squeeze-excite] -> 1x1 project -> BN, the input added
  back when the stride is 1 and the width does not change. ``expansion=1`` has no expand conv
  (MobileNetV2's first block, ``MB1_K3``).
- :class:`SqueezeExcite` on the expanded features (Hu et al. 2018, as MobileNetV3 / GreedyNAS place
  it: after the depthwise conv, reduction 4 rounded to a multiple of 8, h-swish then h-sigmoid).
- :func:`projection`: the 1x1 conv + BN that stands for "identity" where shapes change.
- :func:`mb_macs` / :func:`mb_params`: the closed forms of the counts above (conv and linear
  weights only for MACs; weights, biases and BN affine for params), so a space can price an op
  without building it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["InvertedResidual", "SqueezeExcite", "projection", "make_divisible", "se_channels", "conv_out",
           "mb_macs", "mb_params", "projection_macs", "projection_params"]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never below 90% of ``v``."""
    min_value = divisor if min_value is None else min_value
    out = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if out < 0.9 * v:
        out += divisor
    return int(out)


def se_channels(hidden: int) -> int:
    """Squeeze width of the SE module on ``hidden`` channels (ratio 4, multiple of 8)."""
    return make_divisible(hidden / 4, 8)


def conv_out(size: int, stride: int) -> int:
    """Output size of a "same"-padded (k // 2) odd-kernel conv: ``ceil(size / stride)``."""
    return (size + stride - 1) // stride


class SqueezeExcite(nn.Module):
    """x * h_sigmoid(W2 h_swish(W1 avgpool(x))), both 1x1 convs with bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = se_channels(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.act = nn.Hardswish(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MBt_Kk[_SE]; see the module docstring. ``conv`` keeps NB-Macro's state-dict keys for t > 1 without SE."""

    def __init__(self, C_in: int, C_out: int, stride: int, expansion: int, kernel_size: int,
                 affine: bool = True, se: bool = False) -> None:
        super().__init__()
        hidden = C_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(C_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden, affine=affine),
                       nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, kernel_size, stride, kernel_size // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden, affine=affine), nn.ReLU(inplace=True)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, C_out, 1, bias=False), nn.BatchNorm2d(C_out, affine=affine)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and C_in == C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + x if self.residual else y


def projection(C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module:
    """Identity where shapes allow, else a 1x1 conv (stride) + BN (the shape-changing "ID")."""
    if stride == 1 and C_in == C_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(C_in, C_out, 1, stride, bias=False), nn.BatchNorm2d(C_out, affine=affine))


# ----------------------------------------------------------------------------- closed-form counts
def mb_macs(C_in: int, C_out: int, stride: int, expansion: int, kernel_size: int, se: bool, size: int) -> int:
    """Conv MACs of :class:`InvertedResidual` on a ``size`` x ``size`` input (biases not counted)."""
    hidden = C_in * expansion
    out = conv_out(size, stride)
    macs = 0 if expansion == 1 else size * size * C_in * hidden
    macs += out * out * hidden * kernel_size * kernel_size
    if se:
        macs += 2 * hidden * se_channels(hidden)  # two 1x1 convs on the pooled 1x1 map
    return macs + out * out * hidden * C_out


def mb_params(C_in: int, C_out: int, expansion: int, kernel_size: int, se: bool, affine: bool = True) -> int:
    """Parameters of :class:`InvertedResidual` (BN affine counted when ``affine``, running stats not)."""
    hidden = C_in * expansion
    bn = 2 if affine else 0
    p = 0 if expansion == 1 else C_in * hidden + bn * hidden
    p += hidden * kernel_size * kernel_size + bn * hidden
    if se:
        mid = se_channels(hidden)
        p += hidden * mid + mid + mid * hidden + hidden
    return p + hidden * C_out + bn * C_out


def projection_macs(C_in: int, C_out: int, stride: int, size: int) -> int:
    if stride == 1 and C_in == C_out:
        return 0
    out = conv_out(size, stride)
    return out * out * C_in * C_out


def projection_params(C_in: int, C_out: int, stride: int, affine: bool = True) -> int:
    if stride == 1 and C_in == C_out:
        return 0
    return C_in * C_out + (2 * C_out if affine else 0)
