"""Multiply-accumulate counting by forward hooks (conv and linear weights only).

This is the convention of NAS-Bench-Macro and most NAS papers: BN, activations, pooling and
additions are not counted.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def count_macs(model: nn.Module, input_shape: tuple[int, ...], *forward_args) -> int:
    """MACs of one forward pass on a single input of shape ``input_shape`` (C, H, W)."""
    total = 0

    def conv_hook(mod: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        # per output element: (in_channels / groups) * kh * kw multiply-accumulates
        total += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * kh * kw

    def linear_hook(mod: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() // out.shape[0] * mod.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape), *forward_args)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
