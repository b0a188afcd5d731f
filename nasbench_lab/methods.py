"""Every method name that ``nasbench-lab run --method`` and the dashboards accept.

One-shot samplers run in the single-path Trainer; differentiable methods (DARTS family) in the
differentiable trainer. Both are Jobs, so a Run, the store and the dashboards treat them alike.
"""

from __future__ import annotations

import importlib
from typing import Any

from nasbench_lab.runs.job import Job
from nasbench_lab.training import samplers


def differentiable_names() -> list[str]:
    try:
        return list(importlib.import_module("nasbench_lab.differentiable").METHODS)
    except (ImportError, AttributeError):
        return []


def names() -> list[str]:
    return samplers.names() + differentiable_names()


def build_job(method: str, **kwargs: Any) -> Job:
    """A Job for ``method`` with Trainer-style keyword arguments (space, dataset, steps, seed...)."""
    if method in samplers.names():
        from nasbench_lab.training.trainer import Trainer

        return Trainer(method=method, **kwargs)
    if method in differentiable_names():
        return importlib.import_module("nasbench_lab.differentiable").build(method, **kwargs)
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(names())}")


def option_names(method: str) -> list[str]:
    """The ``method_options`` that ``method`` accepts (for forms and error messages)."""
    if method in samplers.names():
        valid = samplers.options_of(samplers.sampler_class(method))
        return [n for n in (valid or []) if n != "total_steps"]  # the trainer sets it from the budget
    if method in differentiable_names():
        import dataclasses

        from nasbench_lab.differentiable.trainer import DifferentiableConfig

        main = {"space", "dataset", "data_root", "method", "steps", "seed", "device", "method_options"}
        return [f.name for f in dataclasses.fields(DifferentiableConfig) if f.name not in main]
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(names())}")
