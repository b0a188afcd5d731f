"""Tasks: what a network predicts and how it is judged (DESIGN.md, "Task").

The Trainer, the standalone loop (ground truth), ranking and the views ask the task for the loss,
the reward and the metric; none of them tests for segmentation.

- ``classification``: one label per image; cross-entropy; accuracy.
- ``segmentation``: one label per pixel; per-pixel cross-entropy that skips ``ignore_index``
  pixels (255, Cityscapes' convention); mean intersection-over-union (mIoU) from a confusion
  matrix, as Auto-DeepLab and the thesis (Table 4.5) report it.

A task's ``stats(logits, y)`` is a tensor that adds up over minibatches (classification: correct
and total; segmentation: the confusion matrix), so a split is scored chunk by chunk without
keeping the predictions; ``score(stats)`` is the metric in [0, 1] (a 0-d tensor, no host sync).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Task", "Classification", "Segmentation", "for_data", "names", "IGNORE_INDEX", "miou_from_confusion"]

#: the label of pixels no loss or metric counts (padding, unlabelled regions)
IGNORE_INDEX = 255


class Task:
    """Base of the tasks (see the module docstring)."""

    name = ""
    metric = ""  # the score's name in tables and views

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss_sum(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Summed loss and how many terms it sums (for a mean over a whole split)."""
        raise NotImplementedError

    def stats(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, stats: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self, stats: torch.Tensor) -> dict[str, Any]:
        """Plain data of a score for the views (the metric and, for segmentation, per-class IoU)."""
        return {self.metric: float(self.score(stats))}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.num_classes} classes>"


class Classification(Task):
    name = "classification"
    metric = "accuracy"

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def loss_sum(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        return F.cross_entropy(logits.float(), y, reduction="sum"), int(y.shape[0])

    def stats(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        correct = (logits.argmax(1) == y).sum()
        return torch.stack([correct, torch.tensor(y.shape[0], device=y.device)]).to(torch.float64)

    def score(self, stats: torch.Tensor) -> torch.Tensor:
        return stats[0] / stats[1].clamp_min(1)


def miou_from_confusion(confusion: np.ndarray | torch.Tensor) -> tuple[float, np.ndarray]:
    """mIoU and per-class IoU of a confusion matrix (rows: true class, columns: predicted).

    IoU_c = TP_c / (TP_c + FP_c + FN_c); a class absent from both truth and prediction has no IoU
    (NaN) and is left out of the mean.
    """
    cm = torch.as_tensor(confusion, dtype=torch.float64)
    iou = _iou(cm)
    valid = ~torch.isnan(iou)
    miou = float(iou[valid].mean()) if bool(valid.any()) else float("nan")
    return miou, iou.cpu().numpy()


def _iou(cm: torch.Tensor) -> torch.Tensor:
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp  # TP + FP + FN
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


class Segmentation(Task):
    name = "segmentation"
    metric = "mIoU"

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(num_classes)
        self.ignore_index = int(ignore_index)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, ignore_index=self.ignore_index)

    def loss_sum(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        n = int((y != self.ignore_index).sum())
        return F.cross_entropy(logits.float(), y, ignore_index=self.ignore_index, reduction="sum"), n

    def stats(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Confusion matrix (true x predicted) of the pixels that are not ``ignore_index``."""
        return self.confusion(logits.argmax(1), y)

    def confusion(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k = self.num_classes
        keep = y != self.ignore_index
        t, p = y[keep], pred[keep]
        return torch.bincount(t * k + p, minlength=k * k).reshape(k, k).to(torch.float64)

    def score(self, stats: torch.Tensor) -> torch.Tensor:
        iou = _iou(stats)
        valid = ~torch.isnan(iou)
        return torch.where(valid, iou, torch.zeros_like(iou)).sum() / valid.sum().clamp_min(1)

    def describe(self, stats: torch.Tensor) -> dict[str, Any]:
        miou, iou = miou_from_confusion(stats)
        return {self.metric: miou, "iou": [None if np.isnan(v) else float(v) for v in iou]}


_TASKS = {"classification": Classification, "segmentation": Segmentation}


def names() -> list[str]:
    return list(_TASKS)


def for_data(bundle: Any) -> Task:
    """The task of a :class:`~nasbench_lab.data.DataBundle` (its ``task`` field)."""
    name = getattr(bundle, "task", "classification")
    if name not in _TASKS:
        raise ValueError(f"task: unknown {name!r}; valid: {', '.join(_TASKS)}")
    return _TASKS[name](bundle.num_classes)
