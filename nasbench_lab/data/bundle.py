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
#: how a bundle holds its images on its device (DataBundle.to(storage=...))
STORAGES = ("float32", "uint8")


class Uint8Images:
    """uint8 images held on a device and normalised there, batch by batch, when indexed.

    ``images[idx]`` (an index tensor, a slice, an int) gathers the uint8 pixels and returns
    ``(u - 255 mean) / (255 std)`` in float32 on the same device: the operations, order and
    precision of :func:`_normalised`, so every batch is bit-for-bit the float32 bundle's batch, at
    a quarter of the device memory and of the host-to-device copy. It answers what the trainers
    ask of an image tensor (indexing, ``shape``, ``len``, ``device``, ``dtype``); ``float()``
    materialises the whole split.
    """

    def __init__(self, raw: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> None:
        if raw.dtype != torch.uint8 or raw.dim() != 4:
            raise ValueError(f"Uint8Images: expected a uint8 NCHW tensor, got {raw.dtype} {tuple(raw.shape)}")
        self.raw = raw
        shape = (-1, 1, 1)  # per channel, broadcast over (N,) C, H, W
        m = torch.tensor(np.asarray(mean, dtype=np.float64) * 255.0, dtype=torch.float32)
        sd = torch.tensor(np.asarray(std, dtype=np.float64) * 255.0, dtype=torch.float32).clamp_min(1e-8 * 255.0)
        self._mean, self._std = m.view(shape).to(raw.device), sd.view(shape).to(raw.device)

    def __getitem__(self, index: Any) -> torch.Tensor:
        return self.raw[index].to(torch.float32).sub_(self._mean).div_(self._std)

    def float(self) -> torch.Tensor:
        return self[:]

    def __len__(self) -> int:
        return self.raw.shape[0]

    @property
    def shape(self) -> torch.Size:
        return self.raw.shape

    @property
    def device(self) -> torch.device:
        return self.raw.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32  # what indexing returns

    def to(self, device: str | torch.device, non_blocking: bool = False) -> Uint8Images:
        out = object.__new__(Uint8Images)
        out.raw = self.raw.to(device, non_blocking=non_blocking)
        out._mean, out._std = self._mean.to(device), self._std.to(device)
        return out

    def __repr__(self) -> str:
        return f"Uint8Images({tuple(self.shape)}, {self.device})"


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
    #: the source pixels: "uint8" when every image came from 0..255 levels (CIFAR), so the float32
    #: tensors convert back to them exactly (``to(storage="uint8")``); "float" otherwise (digits)
    pixels: str = "float"
    #: what the labels are (a :mod:`nasbench_lab.tasks` name): one class per image, or per pixel
    #: (``*_y`` then hold N x H x W label maps, 255 = ignore)
    task: str = "classification"

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

    def check_batch_size(self, name: str, value: int, split: str = "train") -> int:
        """``value`` when a minibatch of that many images fits in ``split``; a ValueError that says
        the split's size otherwise. A larger batch was silently cut to the whole split (for CIFAR
        25,000 images through a supernet in one step: tens of GB), so it is refused up front."""
        n = len(self.split(split)[1])
        if value > n:
            raise ValueError(f"{name}: {value:,} is larger than the {split} split of {self.name} ({n:,} images); "
                             f"expected at most {n:,} (e.g. {name}={min(64, n)})")
        return value

    @property
    def storage(self) -> str:
        """"uint8" when the images are :class:`Uint8Images`, else "float32"."""
        return "uint8" if isinstance(self.train_x, Uint8Images) else "float32"

    def to(self, device: str | torch.device, non_blocking: bool = False, storage: str | None = None) -> DataBundle:
        """A bundle with every tensor on ``device`` (self when already there, as asked).

        ``storage="uint8"`` keeps the images as uint8 on the device and normalises each batch
        there (:class:`Uint8Images`; only for ``pixels == "uint8"`` data such as CIFAR, where it is
        exact); ``"float32"`` holds normalised float32 tensors; None keeps the current storage.
        """
        device = torch.device(device)
        storage = self.storage if storage is None else storage
        if storage not in STORAGES:
            raise ValueError(f"DataBundle.to: storage must be one of {STORAGES}, got {storage!r} (e.g. 'uint8')")
        if storage == "uint8" and self.pixels != "uint8":
            raise ValueError(f"DataBundle.to: storage='uint8' needs images made of 0..255 levels; {self.name!r} "
                             f"has pixels={self.pixels!r} (use storage='float32')")
        if self.device == device and self.storage == storage:
            return self
        moved: dict[str, Any] = {}
        for s in SPLITS:
            x, y = getattr(self, f"{s}_x"), getattr(self, f"{s}_y")
            if storage == "uint8" and not isinstance(x, Uint8Images):
                x = Uint8Images(self._quantized(x), self.mean, self.std)
            elif storage == "float32" and isinstance(x, Uint8Images):
                x = x.float()
            moved[f"{s}_x"] = x.to(device, non_blocking=non_blocking)
            moved[f"{s}_y"] = y.to(device, non_blocking=non_blocking)
        return dataclasses.replace(self, **moved)

    def _quantized(self, x: torch.Tensor) -> torch.Tensor:
        """The uint8 levels the float32 images were normalised from (exact: float32 keeps ~7
        digits, a level is 1/255 of the range)."""
        m = torch.tensor(np.asarray(self.mean) * 255.0, dtype=torch.float64).view(1, -1, 1, 1).to(x.device)
        sd = torch.tensor(np.clip(np.asarray(self.std), 1e-8, None) * 255.0, dtype=torch.float64).view_as(m).to(x.device)
        out = torch.empty(x.shape, dtype=torch.uint8, device=x.device)
        for lo in range(0, x.shape[0], 4096):  # chunks: no float64 copy of the whole set
            out[lo:lo + 4096] = (x[lo:lo + 4096].double() * sd + m).round_().clamp_(0, 255)
        return out

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
            "seed": self.seed, "storage": self.storage, "task": self.task,
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
        pixels="uint8" if images.dtype == np.uint8 and test_images.dtype == np.uint8 else "float",
    )

