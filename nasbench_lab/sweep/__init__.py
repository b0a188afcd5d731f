"""Sweeps: many independent runs (methods x seeds x budgets, ground-truth trainings, tables)
through one executor interface: ``local`` (in this process, or a pool of ``--workers N``
processes) or ``ray`` (a local Ray, or a cluster at ``--ray-address``).

    from nasbench_lab.sweep import Sweep, Task, ExecutorConfig
    sweep = Sweep([Task("uniform-s0", "nasbench_lab.training.samplers.compare:sweep_task",
                        {"method": "uniform", "seed": 0, "steps": 100})], ExecutorConfig("ray"))
    results = sweep.run()

``compare-samplers``, ``darts``, ``search``, ``groundtruth`` and ``reproduce`` are sweeps.
"""

from nasbench_lab.sweep.driver import STATES, Sweep, TaskState
from nasbench_lab.sweep.spec import (
    EXECUTORS,
    RAY_MISSING,
    ExecutorConfig,
    Task,
    add_executor_arguments,
    executor_from_args,
)
from nasbench_lab.sweep.worker import TaskContext, run_task, train_job

__all__ = ["EXECUTORS", "RAY_MISSING", "STATES", "ExecutorConfig", "Sweep", "Task", "TaskContext", "TaskState",
           "add_executor_arguments", "executor_from_args", "ray_available", "run_task", "train_job"]


def ray_available() -> bool:
    """Whether Ray can be imported (``pip install 'nasbench_lab[ray]'``)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None
