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


def job_class_path(job: Job) -> str:
    cls = type(job)
    return f"{cls.__module__}:{cls.__qualname__}"


def load_job_class(path: str) -> type[Job]:
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj
