"""Differentiable NAS: DARTS and its fixes on relaxed networks (seed 002 §3-4, thesis 003 eq 2.4-2.5).

``build(method, space="nb201", dataset="digits", steps=..., seed=..., **options)`` returns a
:class:`DifferentiableTrainer` (a Job: run it with :class:`nasbench_lab.runs.Run`). Methods:
``darts`` (first order), ``darts2`` (second order), ``gdas``, ``fairdarts``, ``pcdarts``,
``darts-minus``, ``gaea``. Spaces: ``nb201`` (relaxed NB-201 supernet), ``darts`` (DARTS search
network) and the pooling spaces (multi-resolution relaxation; not pcdarts / darts-minus).
"""

from __future__ import annotations

from typing import Any

from nasbench_lab.differentiable.trainer import METHODS, DifferentiableConfig, DifferentiableTrainer

__all__ = ["METHODS", "DifferentiableConfig", "DifferentiableTrainer", "build"]


def build(method: str, space: str = "nb201", dataset: str = "digits", steps: int = 200, seed: int = 0,
          **options: Any) -> DifferentiableTrainer:
    """A differentiable search job; ``steps`` = alternating (alpha, w) steps.

    ``options`` are :class:`DifferentiableConfig` fields (``arch_lr``, ``batch_size``,
    ``channels``, ``cells``, ``hessian_every``, ``stop_on_alarm``...) or a ``method_options`` dict
    of them; unknown names raise ValueError listing the valid ones.
    """
    if method not in METHODS:
        raise ValueError(f"method: unknown differentiable method {method!r}; valid: {', '.join(METHODS)}")
    return DifferentiableTrainer(method=method, space=space, dataset=dataset, steps=steps, seed=seed, **options)
