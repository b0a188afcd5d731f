"""On-device batch augmentation: random crop with zero padding and optional horizontal flip.

Everything is one gather over the whole batch on the tensor's device: no per-image Python loop
and no CPU round trip, so augmentation stays out of the hot loop's way on a GPU.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Augment(nn.Module):
    """Random ``pad``-pixel shift (zero padding, then crop back) and optional mirror.

    ``forward(x, generator=None)`` takes an NCHW batch and returns a new one of the same shape.
    The crop offsets and flips are drawn from ``generator`` (a ``torch.Generator`` on any
    device), so a seeded generator gives a reproducible batch. Padding is applied to the
    *normalised* tensor, i.e. padded pixels are zeros = the per-channel mean colour.
    """

    def __init__(self, pad: int = 4, flip: bool = True) -> None:
        super().__init__()
        if pad < 0:
            raise ValueError(f"Augment: pad must be >= 0, got {pad}")
        self.pad = int(pad)
        self.flip = bool(flip)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, flip={self.flip}"

    def pair(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented ``(x, y)``: the labels of whole images do not move (a segmentation
        augmentation moves its label maps with the images, :class:`~nasbench_lab.data.scenes.SegAugment`)."""
        return self(x, generator=generator), y

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"Augment: expected an NCHW batch, got shape {tuple(x.shape)}")
        n, _, h, w = x.shape
        if n == 0 or (self.pad == 0 and not self.flip):
            return x.clone()
        p = self.pad
        # Draw on the generator's device (randint requires it), then move the few numbers over.
        gdev = generator.device if generator is not None else x.device
        oy = torch.randint(0, 2 * p + 1, (n, 1), generator=generator, device=gdev).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (n, 1), generator=generator, device=gdev).to(x.device)
        cols = torch.arange(w, device=x.device).expand(n, w)
        if self.flip:
            mirror = torch.rand(n, 1, generator=generator, device=gdev).to(x.device) < 0.5
            cols = torch.where(mirror, (w - 1) - cols, cols)
        rows = oy + torch.arange(h, device=x.device)  # (n, h)
        cols = ox + cols  # (n, w)
        padded = F.pad(x, (p, p, p, p)) if p else x
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        # Advanced indices around a slice put their broadcast dims first: result is (n, h, w, c).
        out = padded[batch, :, rows.view(n, h, 1), cols.view(n, 1, w)]
        return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)
