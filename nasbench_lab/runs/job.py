"""The unit of work a :class:`~nasbench_lab.runs.Run` executes.

A Job is anything that advances by discrete steps and can save and restore its full state: the
single-path Trainer, the differentiable trainer, a black-box search experiment. The Run owns the
thread, the event log, the store and the checkpoints; the Job owns only the work.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class Job:
    """Base class with no-op defaults; subclasses implement ``step`` and the state methods."""

    #: short label stored with the run ("supernet", "differentiable", "search", ...)
    kind: str = "job"
    #: number of steps the job wants in total
    total_steps: int = 0
    #: steps done so far
    step_count: int = 0

    _emit: Callable[..., Any] | None = None

    def bind(self, emit: Callable[..., Any] | None) -> None:
        """Receive the Run's ``emit(kind, step=None, **data)``."""
        self._emit = emit

    def emit(self, kind: str, **data: Any) -> None:
        if self._emit is not None:
            self._emit(kind, step=self.step_count, **data)

    def step(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """Do one unit of work; return its metrics (numbers go to the store)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Plain-data configuration, enough for ``from_config`` to rebuild the job."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Job:  # pragma: no cover - abstract
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        """Identity checked when a checkpoint is loaded (e.g. the space name)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])

    def snapshot(self) -> dict[str, Any] | None:
        """Plain data for the method's live view, or None."""
        return None

    def finish(self) -> dict[str, Any] | None:
        """Called once when all steps are done; the returned summary goes to the store."""
        return None

    @property
    def done(self) -> bool:
        return self.step_count >= self.total_steps


    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A class whose code this process already runs may be rebuilt from a checkpoint: the
        # allow-list of load_job_class (nothing is imported for it).
        super().__init_subclass__(**kwargs)
        _DEFINED[job_class_path(cls)] = cls


#: the package's jobs, imported on demand when a checkpoint names them (and only these are imported)
BUILTIN_JOBS: tuple[str, ...] = (
    "nasbench_lab.training.trainer:Trainer",
    "nasbench_lab.differentiable.trainer:DifferentiableTrainer",
    "nasbench_lab.search.arena:Arena",
)
_DEFINED: dict[str, type[Job]] = {}


def job_class_path(job: Job | type[Job]) -> str:
    cls = job if isinstance(job, type) else type(job)
    return f"{cls.__module__}:{cls.__qualname__}"


def register_job_class(cls: type[Job]) -> type[Job]:
    """Allow checkpoints to name ``cls`` (subclasses of Job are registered when defined; this is
    for a class made some other way). Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Job)):
        raise ValueError(f"register_job_class: expected a Job subclass, got {cls!r}")
    _DEFINED[job_class_path(cls)] = cls
    return cls


def known_job_classes() -> list[str]:
    return list(dict.fromkeys([*BUILTIN_JOBS, *_DEFINED]))


def load_job_class(path: str) -> type[Job]:
    """The Job class a checkpoint names, from the allow-list only.

    A checkpoint is data from outside: its ``job_class`` string never makes us import a module.
    Allowed are the package's jobs (:data:`BUILTIN_JOBS`) and Job subclasses already defined in
    this process; anything else is a ValueError listing the known ones.
    """
    if not isinstance(path, str):
        raise ValueError(f"job_class: expected 'module:Class' text, got {type(path).__name__} {path!r}")
    if path in _DEFINED:
        return _DEFINED[path]
    if path in BUILTIN_JOBS:
        module, _, name = path.partition(":")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    raise ValueError(f"job_class: {path[:200]!r} is not a known job class, so it is not loaded (a checkpoint "
                     f"names its job class as data and nothing else is imported); known: "
                     f"{', '.join(known_job_classes())}")
