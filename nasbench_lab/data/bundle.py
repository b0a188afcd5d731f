"""DataBundle: a small image dataset held as tensors (train / val / test) on one device."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nasbench_lab.data.augment import Augment

SPLITS = ("train", "val", "test")


@dataclass
class DataBundle:
    """Normalised float32 NCHW images and int64 labels for the three splits.

    ``mean``/``std`` are the per-channel statistics of the *train* split (in [0, 1] pixel
    units) used to normalise every split; ``augment`` is the batch augmentation suited to the
    dataset (see :class:`Augment`).
    """

    name: str
    num_classes: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    augment: Augment = field(default_factory=Augment)
    seed: int = 0
    #: positions of the train / val images in the dataset's full training set
    train_index: np.ndarray | None = field(default=None, repr=False)
    val_index: np.ndarray | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise ValueError(f"DataBundle.split: unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    def to(self, device: str | torch.device, non_blocking: bool = False) -> DataBundle:
        """A bundle with every tensor on ``device`` (self when already there)."""
        device = torch.device(device)
        if self.device == device:
            return self
        moved = {f"{s}_{k}": getattr(self, f"{s}_{k}").to(device, non_blocking=non_blocking)
                 for s in SPLITS for k in ("x", "y")}
        return dataclasses.replace(self, **moved)

    def batches(self, split: str = "train", batch_size: int = 256, shuffle: bool = True,
                generator: torch.Generator | None = None, drop_last: bool = False,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Minibatches of one split, shuffled on the data's device (no CPU loader)."""
        x, y = self.split(split)
        n = len(y)
        if shuffle:
            gdev = generator.device if generator is not None else x.device
            order = torch.randperm(n, generator=generator, device=gdev).to(x.device)
        else:
            order = torch.arange(n, device=x.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            yield x[idx], y[idx]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name, "num_classes": self.num_classes, "input_shape": self.input_shape,
            "train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y),
            "mean": list(self.mean), "std": list(self.std), "device": str(self.device),
            "dtype": str(self.train_x.dtype).replace("torch.", ""), "augment": repr(self.augment),
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (f"DataBundle({self.name!r}: {s['train']}/{s['val']}/{s['test']} train/val/test, "
                f"{self.num_classes} classes, {tuple(self.input_shape)}, {s['device']})")


def half_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified 50/50 split of a training set (train, val), fixed by ``seed``."""
    idx = np.arange(len(labels))
    # Stratify when every class can be halved; tiny or odd sets fall back to a plain shuffle.
    counts = np.unique(labels, return_counts=True)[1]
    stratify = labels if len(counts) and counts.min() >= 2 else None
    train, val = train_test_split(idx, test_size=0.5, stratify=stratify, random_state=seed, shuffle=True)
    return np.sort(train), np.sort(val)


def channel_stats(images: np.ndarray, index: np.ndarray | None = None, chunk: int = 4096,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (ddof=1) of ``images[index]`` (NCHW), in [0, 1]
    pixel units (uint8 is divided by 255).

    uint8 images are counted exactly, chunk by chunk (a 256-bin histogram per channel), so
    25,000 CIFAR images need no float copy at all; float images are summed in float64 chunks.
    """
    idx = np.arange(len(images)) if index is None else np.asarray(index)
    n_ch = images.shape[1]
    if images.dtype == np.uint8:
        hist = torch.zeros((n_ch, 256), dtype=torch.int64)
        for start in range(0, len(idx), chunk):
            sel = np.ascontiguousarray(images[idx[start:start + chunk]])
            part = torch.from_numpy(sel).reshape(len(sel), n_ch, -1)
            for c in range(n_ch):
                hist[c] += torch.bincount(part[:, c].reshape(-1), minlength=256)
        levels = torch.arange(256, dtype=torch.float64) / 255.0
        count = hist.sum(1).double()
        mean = (hist.double() @ levels) / count
        var = (hist.double() * (levels.view(1, -1) - mean.view(-1, 1)) ** 2).sum(1) / (count - 1).clamp_min(1)
        return mean.numpy(), var.sqrt().numpy()
    s1, s2, count = np.zeros(n_ch), np.zeros(n_ch), 0
    for start in range(0, len(idx), chunk):
        part = images[idx[start:start + chunk]].astype(np.float64).reshape(-1, n_ch, int(np.prod(images.shape[2:])))
        s1 += part.sum(axis=(0, 2))
        s2 += (part * part).sum(axis=(0, 2))
        count += part.shape[0] * part.shape[2]
    mean = s1 / count
    var = (s2 - count * mean ** 2) / max(count - 1, 1)
    return mean, np.sqrt(np.clip(var, 0.0, None))


def _normalised(images: np.ndarray, index: np.ndarray | None, mean: np.ndarray, std: np.ndarray,
                chunk: int = 4096) -> torch.Tensor:
    """float32 ``(images[index] / 255 - mean) / std`` written chunk by chunk into one tensor.

    The source arrays are cached read-only copies and stay untouched; only the float32 result
    and one chunk of the source are alive at any time (no full-size uint8 or float64 copy).
    """
    idx = np.arange(len(images)) if index is None else np.asarray(index)
    out = torch.empty((len(idx), *images.shape[1:]), dtype=torch.float32)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    m = torch.tensor(mean * scale, dtype=torch.float32).view(1, -1, *([1] * (images.ndim - 2)))
    s = torch.tensor(std * scale, dtype=torch.float32).clamp_min(1e-8 * scale).view_as(m)
    for start in range(0, len(idx), chunk):
        part = torch.from_numpy(np.ascontiguousarray(images[idx[start:start + chunk]]))
        out[start:start + chunk] = part
        out[start:start + chunk].sub_(m).div_(s)
    return out


def make_bundle(name: str, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
                test_labels: np.ndarray, classes: Sequence[str], augment: Augment, seed: int,
                ) -> DataBundle:
    """Split the training set 50/50, normalise with the train-split statistics, build tensors.

    ``images`` are float32 or uint8 NCHW arrays; uint8 is scaled to [0, 1] first. Peak memory is
    the float32 result plus one chunk (for full CIFAR-10: 737 MB of float32 for 60,000 images).
    """
    tr, va = half_split(labels, seed)
    mean, std = channel_stats(images, tr)
    return DataBundle(
        name=name, num_classes=len(classes),
        train_x=_normalised(images, tr, mean, std), train_y=torch.from_numpy(labels[tr].astype(np.int64)),
        val_x=_normalised(images, va, mean, std), val_y=torch.from_numpy(labels[va].astype(np.int64)),
        test_x=_normalised(test_images, None, mean, std), test_y=torch.from_numpy(test_labels.astype(np.int64)),
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in np.clip(std, 1e-8, None)),
        classes=[str(c) for c in classes], augment=augment, seed=seed, train_index=tr, val_index=va,
    )

