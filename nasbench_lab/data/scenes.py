"""Segmentation data: the embedded digit scenes, and a reader for a folder of PNG label maps.

``scenes`` (no download; made from the scikit-learn digits the package already uses):

- canvas ``SIZE x SIZE`` (32) pixels, 3 channels; background: a random dark grey level per scene
  (uniform in [0, 0.25]) plus Gaussian pixel noise (sd 0.05);
- 2 to 3 digits per scene (uniform); each an 8x8 digit image (values/16) resized by bilinear
  interpolation to a side drawn log-uniformly in [10, 28] pixels (so that both fine detail and a
  large receptive field matter: the resolution path changes the score), tinted with a random
  colour (each channel uniform in [0.5, 1]) and placed uniformly inside the canvas; a later digit
  covers an earlier one where its own body is (image and label);
- the object and its label: the digit's *body* is its 8x8 ink (intensity above 0.25 of 1) dilated
  by one source pixel (3x3 maximum) and resized to the digit's side (nearest); it is painted at
  0.35 of the colour, the strokes (resized intensity above 0.35) at full colour on it; the label
  map is class ``digit + 1`` on the body, else 0 (background); 11 classes. Bodies, not strokes:
  a DeepLab network predicts at 1/4 resolution, and 1-2 pixel strokes cannot be drawn there
  (with stroke labels no path learned the digits in the ground truth's budget, and its two seeds
  did not agree: Kendall tau -0.5 over the first 8 paths);
- fixed scenes: ``TRAIN_SCENES`` (1,200) from the digits' fixed training images (the same stratified
  80/20 split as the ``digits`` dataset), ``TEST_SCENES`` (2,000) from its test images, both drawn
  from the constant ``SCENE_SEED``; the training scenes are split 50/50 into train/val by the run's seed
  (as every dataset here); channels normalised with the train split's mean/std;
- augmentation on the device: the same random shift (up to 4 pixels) of image and mask; the
  pixels shifted in are ignored (label 255); no mirror (digits are not mirror-symmetric).

``segfolder`` reads a user's folder in the common layout: ``images/NAME.png`` (RGB or grey) and
``masks/NAME.png`` (one 8-bit label id per pixel, 255 = ignore, Cityscapes-style train ids), with
an optional ``classes.txt`` (one class name per line: ids must be below their count; without
it, the largest id seen + 1 classes). All images have one size. A fixed 80/20 train/test split
(seed 0), then train/val 50/50 by the run's seed.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nasbench_lab.data.augment import Augment
from nasbench_lab.data.bundle import DataBundle, _normalised, channel_stats, half_split

SIZE = 32
TRAIN_SCENES = 1200
# 2,000, not 400: one network's mIoU on 400 scenes moved by 1.2 points (sd) between test sets, as much
# as its seed-to-seed spread; 2,000 take that to about 0.5 for a second of evaluation
TEST_SCENES = 2000
SCENE_SEED = 0
DIGITS_PER_SCENE = (2, 3)
DIGIT_SIDE = (10, 28)
THRESHOLD = 0.35  # strokes: the resized digit's intensity above this
BODY_INK = 0.25  # a source pixel with more ink than this belongs to the digit's body
BODY_SHADE = 0.35  # the body's brightness (a fraction of the digit's colour)
IGNORE = 255
CLASSES = ["background", *[str(d) for d in range(10)]]


class SegAugment(Augment):
    """:class:`Augment`'s random shift applied to the image and its label map alike.

    ``pair(x, y, generator)``: the image is shifted as :class:`Augment` does (zeros, the mean
    colour, shifted in) and the mask by the same offsets, with ``ignore`` shifted in.
    """

    def __init__(self, pad: int = 4, ignore_index: int = IGNORE) -> None:
        super().__init__(pad=pad, flip=False)
        self.ignore_index = int(ignore_index)

    def pair(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        p = self.pad
        if n == 0 or p == 0:
            return x.clone(), y.clone()
        gdev = generator.device if generator is not None else x.device
        oy = torch.randint(0, 2 * p + 1, (n, 1), generator=generator, device=gdev).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (n, 1), generator=generator, device=gdev).to(x.device)
        rows = (oy + torch.arange(h, device=x.device)).view(n, h, 1)
        cols = (ox + torch.arange(w, device=x.device)).view(n, 1, w)
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        xi = F.pad(x, (p, p, p, p))[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()
        yi = F.pad(y, (p, p, p, p), value=self.ignore_index)[batch, rows, cols]
        return xi, yi


def compose(digit_images: np.ndarray, digit_labels: np.ndarray, n: int, seed: int, size: int = SIZE,
            ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scenes (float32 N,3,size,size in [0, 1]; uint8 N,size,size labels) from 8x8 digits."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    lo, hi = np.log(DIGIT_SIDE[0]), np.log(DIGIT_SIDE[1])
    for i in range(n):
        img = np.full((3, size, size), rng.uniform(0.0, 0.25), dtype=np.float32)
        img += rng.normal(0.0, 0.05, size=img.shape).astype(np.float32)
        mask = masks[i]
        for _ in range(int(rng.integers(DIGITS_PER_SCENE[0], DIGITS_PER_SCENE[1] + 1))):
            k = int(rng.integers(len(digit_labels)))
            side = int(round(float(np.exp(rng.uniform(lo, hi)))))
            patch = F.interpolate(torch.from_numpy(digit_images[k][None, None]), size=(side, side), mode="bilinear",
                                  align_corners=False)[0, 0].numpy()
            top, left = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
            colour = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
            # the object: the digit's body (its 8x8 ink dilated by one source pixel, scaled up), drawn as
            # a dim patch of the colour, with the bright strokes on it; the label covers the body
            src = torch.from_numpy((digit_images[k] > BODY_INK).astype(np.float32))[None, None]
            body = F.interpolate(F.max_pool2d(src, 3, 1, 1), size=(side, side), mode="nearest")[0, 0].numpy() > 0
            on = patch > THRESHOLD
            region = img[:, top:top + side, left:left + side]
            region[:, body] = BODY_SHADE * colour[:, None]
            region[:, on] = colour[:, None] * np.maximum(patch[on], BODY_SHADE)[None, :]
            mask[top:top + side, left:left + side][body] = digit_labels[k] + 1
        images[i] = np.clip(img, 0.0, 1.0)
    return images, masks


@cache
def _scenes() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    img = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)  # as ``digits``
    tr, te = np.sort(tr), np.sort(te)
    x, m = compose(img[tr], y[tr], TRAIN_SCENES, SCENE_SEED)
    tx, tm = compose(img[te], y[te], TEST_SCENES, SCENE_SEED + 1)
    out = (x, m, tx, tm)
    for a in out:
        a.setflags(write=False)
    return out


def seg_bundle(name: str, images: np.ndarray, masks: np.ndarray, test_images: np.ndarray, test_masks: np.ndarray,
               classes: list[str], seed: int, augment: SegAugment | None = None) -> DataBundle:
    """A segmentation :class:`DataBundle`: train/val 50/50 by ``seed``, train-split statistics."""
    # stratify the halves by each scene's most frequent foreground class (a proxy for its content)
    counts = np.stack([np.bincount(m[m != IGNORE].ravel(), minlength=len(classes))[1:] for m in masks])
    tr, va = half_split(counts.argmax(1), seed)
    mean, std = channel_stats(images, tr)
    def labels(m: np.ndarray, idx: np.ndarray | None = None) -> torch.Tensor:
        return torch.from_numpy((m if idx is None else m[idx]).astype(np.int64))
    return DataBundle(
        name=name, num_classes=len(classes),
        train_x=_normalised(images, tr, mean, std), train_y=labels(masks, tr),
        val_x=_normalised(images, va, mean, std), val_y=labels(masks, va),
        test_x=_normalised(test_images, None, mean, std), test_y=labels(test_masks),
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in np.clip(std, 1e-8, None)),
        classes=list(classes), augment=augment or SegAugment(), seed=seed, train_index=tr, val_index=va,
        task="segmentation",
    )


def scenes(seed: int = 0) -> DataBundle:
    """The embedded digit scenes (see the module docstring)."""
    x, m, tx, tm = _scenes()
    return seg_bundle("scenes", x, m, tx, tm, CLASSES, seed)


# --------------------------------------------------------------------------- a user's folder
def read_folder(root: str | os.PathLike, seed: int = 0) -> DataBundle:
    """A folder ``images/*.png`` + ``masks/*.png`` (+ optional ``classes.txt``) as a bundle.

    Every problem is a ValueError naming the file: a mask missing for an image, an image and mask
    of different sizes, images of different sizes, a label id out of range, an unreadable PNG.
    """
    from PIL import Image

    root = Path(root).expanduser()
    img_dir, mask_dir = root / "images", root / "masks"
    for d in (img_dir, mask_dir):
        if not d.is_dir():
            raise ValueError(f"segfolder: {d} is not a folder; expected {root}/images/*.png and "
                             f"{root}/masks/*.png (one label map per image, same file name)")
    files = sorted(img_dir.glob("*.png"))
    if len(files) < 4:
        raise ValueError(f"segfolder: {img_dir} holds {len(files)} PNG images; at least 4 are needed "
                         "(train, val and test splits)")
    classes_file = root / "classes.txt"
    classes = [c.strip() for c in classes_file.read_text().splitlines() if c.strip()] if classes_file.exists() else None
    imgs, masks, shape = [], [], None
    for f in files:
        mf = mask_dir / f.name
        if not mf.exists():
            raise ValueError(f"segfolder: no mask for image {f}: expected {mf}")
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert("RGB"), dtype=np.uint8)
            with Image.open(mf) as im:
                if im.mode not in ("L", "P", "I", "I;16"):
                    raise ValueError(f"mode {im.mode}, expected a single-channel label map (8-bit 'L' or 'P')")
                m = np.asarray(im).astype(np.int64)
        except ValueError as exc:
            raise ValueError(f"segfolder: {mf}: {exc}") from None
        except OSError as exc:
            raise ValueError(f"segfolder: cannot read {f.name} ({exc})") from None
        if a.shape[:2] != m.shape:
            raise ValueError(f"segfolder: image {f} is {a.shape[1]}x{a.shape[0]} but its mask {mf} is "
                             f"{m.shape[1]}x{m.shape[0]}; a mask has the image's size")
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise ValueError(f"segfolder: image {f} is {m.shape[1]}x{m.shape[0]}, the others {shape[1]}x{shape[0]}; "
                             "resize them to one size first")
        ids = np.unique(m)
        limit = len(classes) if classes else 255
        bad = [int(i) for i in ids if i != IGNORE and not 0 <= i < limit]
        if bad:
            raise ValueError(f"segfolder: mask {mf} has label id {bad[0]}, out of range: ids are 0.."
                             f"{limit - 1}{' (classes.txt lists ' + str(limit) + ' classes)' if classes else ''} "
                             f"or {IGNORE} (ignore)")
        imgs.append(a.transpose(2, 0, 1))
        masks.append(m.astype(np.uint8))
    x, m = np.stack(imgs), np.stack(masks)
    if classes is None:
        top = int(m[m != IGNORE].max()) if (m != IGNORE).any() else 0
        classes = [str(i) for i in range(top + 1)]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    n_test = max(1, len(x) // 5)
    te, tr = np.sort(order[:n_test]), np.sort(order[n_test:])
    return seg_bundle(root.name or "segfolder", x[tr], m[tr], x[te], m[te], classes, seed)
