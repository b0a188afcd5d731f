"""What a sweep is made of, as plain data: tasks (one run each) and the executor that runs them.

A :class:`Task` names its function by import path (``"package.module:function"``) and carries
plain keyword arguments, so any executor can ship it to another process or machine: the local
one calls it in this process, the pool in a worker process, Ray on any node of a cluster.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasbench_lab import validation as V

#: the executors (``--executor``)
EXECUTORS = ("local", "ray")
RAY_MISSING = "Ray is not installed: pip install 'nasbench_lab[ray]' (or pip install ray)"


@dataclass(frozen=True)
class Task:
    """One run of a sweep.

    ``key``: unique in the sweep (it becomes the run id, unless ``run_id`` is given).
    ``fn``: ``"module:function"`` called as ``fn(ctx, **args)`` in a worker; a generator function
    streams messages made by ``ctx`` (progress, checkpoints) and returns the result; a plain
    function just returns it. The result is plain data (dicts, lists, numbers, strings).
    ``name``: a label for the views. ``records``: the driver records the run in the run store
    (False only for an in-process function that keeps its own records, e.g. ``reproduce``'s local
    path through :class:`~nasbench_lab.runs.Run`).
    """

    key: str
    fn: str
    args: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    run_id: str | None = None
    records: bool = True

    def __post_init__(self) -> None:
        V.identifier("task key", self.key, "uniform-s0")
        if self.run_id is not None:
            V.run_id(self.run_id)
        if not isinstance(self.fn, str) or self.fn.count(":") != 1:
            raise ValueError(f"task {self.key}: fn must be 'module:function', got {V.shorten(self.fn)} "
                             "(e.g. 'nasbench_lab.training.samplers.compare:sweep_task')")

    @property
    def label(self) -> str:
        return self.name or self.key


def task_key(prefix: str, label: str, args: dict[str, Any]) -> str:
    """A task key that is readable and unique to its arguments (a hash of them), so running the
    same sweep again finds its runs in the store (``cmp-uniform-s0-1a2b3c4d``)."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode()).hexdigest()[:8]
    slug = "".join(c if c.isalnum() or c in "._-" else "-" for c in label)
    return f"{prefix}-{slug}-{digest}"[:128]


def resolve(path: str) -> Callable[..., Any]:
    """The function a task names (imported in the process that runs it)."""
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"task function {path!r} cannot be imported here ({type(exc).__name__}: {exc}); a task "
                         "function must be importable in every worker (e.g. 'nasbench_lab.sweep.tasks:train')") from None
    if not callable(fn):
        raise ValueError(f"task function {path!r} is not callable")
    return fn


@dataclass(frozen=True)
class ExecutorConfig:
    """How a sweep runs. ``local`` with ``workers=1`` (default): one run after another in this
    process, today's behaviour; ``workers=N``: a pool of N worker processes. ``ray``: a local Ray
    started on this machine, or the cluster at ``ray_address``; each run reserves
    ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (fractions allowed: 0.25 packs four runs on
    one GPU)."""

    kind: str = "local"
    workers: int = 1
    ray_address: str | None = None
    cpus_per_run: float | None = None  # None: 1 in workers; this process's threads as they are
    gpus_per_run: float = 0.0
    ray_init: dict[str, Any] = field(default_factory=dict)  # extra ray.init keywords (tests: hermetic)

    def __post_init__(self) -> None:
        V.choice("executor", self.kind, EXECUTORS)
        V.positive_int("workers", self.workers, example=2)
        V.positive_number("cpus_per_run", self.cpus_per_run, example=1, none=True)
        V.number("gpus_per_run", self.gpus_per_run, min=0, example=0.25)
        if self.kind != "ray" and (self.ray_address is not None or self.gpus_per_run):
            raise ValueError("--ray-address/--gpus-per-run: only with --executor ray "
                             "(e.g. --executor ray --ray-address 10.0.0.1:6379 --gpus-per-run 0.5)")
        if self.kind == "ray" and self.workers != 1:
            raise ValueError("--workers: the pool size of --executor local; Ray sizes itself from the cluster's "
                             "CPUs and --cpus-per-run (e.g. --executor ray --cpus-per-run 1)")

    @property
    def cpus(self) -> float:
        """CPUs one run reserves (Ray) and gets as torch threads (workers)."""
        return 1.0 if self.cpus_per_run is None else float(self.cpus_per_run)

    @property
    def threads(self) -> int | None:
        """Torch intra-op threads of one run: its whole CPUs (at least one); None in this
        process without ``cpus_per_run`` (the threads stay as the user set them)."""
        if self.cpus_per_run is None and self.kind == "local" and self.workers == 1:
            return None
        return max(1, int(self.cpus))

    def describe(self) -> str:
        if self.kind == "ray":
            where = self.ray_address or "a local Ray"
            return f"ray ({where}; {self.cpus:g} CPU, {self.gpus_per_run:g} GPU per run)"
        return "local (in this process)" if self.workers == 1 else f"local pool of {self.workers} processes"


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor``, ``--workers``, ``--ray-address``, ``--cpus-per-run``, ``--gpus-per-run``."""
    from nasbench_lab.validation import cli as T

    g = parser.add_argument_group("executor (where the runs of the sweep run)")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: this machine (one after another, or --workers N processes); ray: a local Ray, or "
                        "the cluster at --ray-address (needs pip install 'nasbench_lab[ray]')")
    g.add_argument("--workers", type=T.positive_int("2"), default=1,
                   help="local executor: runs at once in worker processes (default 1: in this process)")
    g.add_argument("--ray-address", default=None,
                   help="join an existing Ray cluster (e.g. 10.0.0.1:6379, or 'auto'); default: start one here")
    g.add_argument("--cpus-per-run", type=T.positive_number("1"), default=None,
                   help="CPUs each run reserves, its torch threads (default 1 in workers; in this process: as set)")
    g.add_argument("--gpus-per-run", type=T.nonnegative_number("0.25"), default=0.0,
                   help="GPUs each run reserves on Ray, fractions allowed (0.25: four runs share a GPU)")


def executor_from_args(args: argparse.Namespace) -> ExecutorConfig:
    """The :class:`ExecutorConfig` of a command's parsed arguments."""
    return ExecutorConfig(kind=args.executor, workers=args.workers, ray_address=args.ray_address,
                          cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run)
