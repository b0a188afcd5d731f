"""Single-path one-shot training: the Trainer, samplers, ranking and the ground-truth builder."""

from nasbench_lab.training.trainer import Trainer, TrainerConfig

__all__ = ["Trainer", "TrainerConfig"]
