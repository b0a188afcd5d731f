"""Datasets as on-device tensors: ``nasbench_lab.data.get("digits")``.

- ``digits``: scikit-learn's handwritten digits (1797 images, ships with scikit-learn, no
  network). The 8x8 grey images (values 0..16) are scaled to [0, 1], upsampled to 32x32 by
  bilinear interpolation and replicated to 3 channels, so every image space (built for 3x32x32
  CIFAR inputs) runs on them unchanged. Digits has no official split: a fixed stratified 80/20
  train/test split (seed 0, independent of ``seed``) keeps the test set the same for every run.
  Augmentation: 2-pixel shifts, no mirror (digits are not mirror-symmetric).
- ``cifar10`` / ``cifar100``: the standard python-pickle folders under ``root`` (default
  ``<workspace>/data``), downloaded with an MD5 check when ``download=True``. Augmentation:
  4-pixel shifts and horizontal flips.
- ``scenes``: segmentation scenes composed from the digits (32x32, 11 classes, per-pixel labels;
  see :mod:`nasbench_lab.data.scenes` for exactly how they are made); ``segfolder``: a user's
  folder of images and PNG label maps under ``root`` (same module).

In every case the official (or fixed) training set is split 50/50 into train/val, stratified,
by ``seed``; the test set is kept apart. Images are normalised per channel with the mean/std of
the train split.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nasbench_lab.data import cifar
from nasbench_lab.data.augment import Augment
from nasbench_lab.data.bundle import STORAGES, DataBundle, Uint8Images, half_split, make_bundle

__all__ = ["STORAGES", "Augment", "DataBundle", "Uint8Images", "get", "names", "half_split"]

_NAMES = ("digits", "cifar10", "cifar100", "scenes", "segfolder")


def names() -> list[str]:
    """Dataset names accepted by :func:`get`."""
    return list(_NAMES)


@cache
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    img = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)  # N,1,8,8 in [0,1]
    img = F.interpolate(img, size=(32, 32), mode="bilinear", align_corners=False)
    img = img.expand(-1, 3, -1, -1).numpy()
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    out = img[np.sort(tr)], y[np.sort(tr)], img[np.sort(te)], y[np.sort(te)]
    for a in out:
        a.setflags(write=False)  # shared by the cache
    return (*out, [str(c) for c in d.target_names])


def get(name: str = "digits", root: str | os.PathLike | None = None, download: bool = False,
        seed: int = 0, device: str | torch.device | None = None) -> DataBundle:
    """Load a dataset as a :class:`DataBundle` (on CPU unless ``device`` is given).

    ``root``: folder holding (or receiving) the CIFAR folders; default ``<workspace>/data``.
    ``seed`` fixes the 50/50 train/val split of the training set.
    """
    key = str(name).lower().replace("-", "")
    if key in ("digits", "scenes") and root is not None:  # a folder that would be ignored without a word
        raise ValueError(f"data_root (--data-root): the digits ship inside the package and read no folder, got "
                         f"{str(root)!r}; leave it out, or pick a dataset that reads it (e.g. --dataset cifar10 "
                         f"--data-root {str(root)!r})")
    if key == "digits":
        x, y, tx, ty, classes = _digits()
        bundle = make_bundle("digits", x, y, tx, ty, classes, Augment(pad=2, flip=False), seed)
    elif key == "scenes":
        from nasbench_lab.data.scenes import scenes

        bundle = scenes(seed)
    elif key == "segfolder":
        from nasbench_lab.data.scenes import read_folder

        if root is None:
            raise ValueError("data_root (--data-root): segfolder reads a folder with images/ and masks/; name it "
                             "(e.g. --dataset segfolder --data-root ~/data/mycity)")
        bundle = read_folder(root, seed=seed)
    elif key in cifar.SPECS:
        if root is None:
            from nasbench_lab.config import workspace

            root = workspace() / "data"
        x, y, tx, ty, classes = cifar.read(key, Path(root), download=download)
        bundle = make_bundle(key, x, y, tx, ty, classes, Augment(pad=4, flip=True), seed)
    else:
        raise ValueError(f"data.get: unknown dataset {name!r}; valid names: {', '.join(_NAMES)}")
    return bundle.to(device) if device is not None else bundle
