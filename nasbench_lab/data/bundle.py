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


def make_bundle(name: str, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray,
                test_labels: np.ndarray, classes: Sequence[str], augment: Augment, seed: int,
                ) -> DataBundle:
    """Split the training set 50/50, normalise with the train-split statistics, build tensors.

    ``images`` are float32 or uint8 NCHW arrays; uint8 is scaled to [0, 1] first.
    """
    def as_float(a: np.ndarray) -> torch.Tensor:
        t = torch.tensor(a)  # a copy: cached source arrays are read-only and stay untouched
        return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()

    tr, va = half_split(labels, seed)
    train_x = as_float(images[tr])
    # statistics in float64 so that 25k CIFAR images sum without drift
    mean = train_x.double().mean(dim=(0, 2, 3))
    std = train_x.double().std(dim=(0, 2, 3)).clamp_min(1e-8)
    m, s = mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1)

    def norm(t: torch.Tensor) -> torch.Tensor:
        return t.sub_(m).div_(s)

    return DataBundle(
        name=name, num_classes=len(classes),
        train_x=norm(train_x), train_y=torch.from_numpy(labels[tr].astype(np.int64)),
        val_x=norm(as_float(images[va])), val_y=torch.from_numpy(labels[va].astype(np.int64)),
        test_x=norm(as_float(test_images)), test_y=torch.from_numpy(test_labels.astype(np.int64)),
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
        classes=[str(c) for c in classes], augment=augment, seed=seed, train_index=tr, val_index=va,
    )
