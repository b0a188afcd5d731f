"""The worker side of a sweep: run one task and stream its messages back to the driver.

A worker never opens the run store (the driver is its only writer, DESIGN.md "Sweep"). What a
run produces travels back as messages, ``(kind, payload)`` tuples:

- ``start``: where the attempt runs (pid, host);
- ``record``: what the driver records for a job (its kind, config and total steps, as
  :class:`~nasbench_lab.runs.Run` would);
- ``progress``: ``{"step", "total", "rows": [(step, {metric: number})]}``;
- ``checkpoint``: ``{"step", "data": bytes}``, a whole checkpoint file (the
  :mod:`~nasbench_lab.runs.checkpoint` format, signed), which the driver writes where the user
  wants it and sends back with a retry, so it works across machines without a shared disk;
- ``result``: the task's plain-data result; ``error``: ``{"error", "traceback"}`` of a task that
  raised (recorded, not retried: it would raise again).

The same generator runs in this process (``local``), in a pool worker, and as a Ray generator
task (``num_returns="streaming"``), which is how Ray streams values from a running task.
"""

from __future__ import annotations

import inspect
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from nasbench_lab.sweep.spec import Task, resolve

Message = tuple[str, Any]


class TaskContext:
    """What a task function gets besides its arguments: the attempt, the checkpoint it resumes
    from, and the makers of the messages it yields."""

    def __init__(self, task: Task, attempt: int, resume: bytes | None, threads: int | None) -> None:
        self.task = task
        self.attempt = attempt
        self.threads = threads
        self._resume = resume

    @property
    def resumed(self) -> bool:
        return self._resume is not None

    def resume_state(self) -> dict[str, Any] | None:
        """The checkpoint this attempt continues from (read as data: weights_only, digest checked), or None."""
        if self._resume is None:
            return None
        from nasbench_lab.runs import checkpoint as ckpt

        with tempfile.TemporaryDirectory(prefix="nasbench-sweep-") as d:
            path = Path(d) / "resume.pt"
            path.write_bytes(self._resume)
            return ckpt.load(path)

    def record(self, kind: str, config: dict[str, Any], total_steps: int) -> Message:
        return ("record", {"kind": kind, "config": config, "total_steps": int(total_steps)})

    def progress(self, step: int, total: int, rows: list[tuple[int, dict[str, Any]]] | None = None) -> Message:
        return ("progress", {"step": int(step), "total": int(total), "rows": rows or []})

    def checkpoint(self, payload: dict[str, Any], step: int) -> Message:
        """A checkpoint message: ``payload`` saved in the checkpoint format (with the RNG states), as bytes."""
        from nasbench_lab.runs import checkpoint as ckpt

        with tempfile.TemporaryDirectory(prefix="nasbench-sweep-") as d:
            path = ckpt.save(Path(d) / "last.pt", payload)
            return ("checkpoint", {"step": int(step), "data": path.read_bytes()})


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of a step's metrics (NaN kept: a diverged loss must reach the driver)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def train_job(ctx: TaskContext, job: Any, checkpoint_every: int | None = None,
              flush_every_s: float = 0.5) -> Generator[Message, None, dict[str, Any] | None]:
    """Train a :class:`~nasbench_lab.runs.job.Job` to the end, streaming metrics and checkpoints;
    returns ``job.finish()``'s summary. Resumes from ``ctx``'s checkpoint (job state and RNG
    states, as ``Run.resume`` does), so a retried run continues the same trajectory.

    Checkpoints: every ``checkpoint_every`` steps (default as Run's: ``max(50, total // 5)``) and
    once the steps are done, before ``finish()`` (a kill during the final ranking does not retrain)."""
    from nasbench_lab.runs import checkpoint as ckpt
    from nasbench_lab.runs.job import job_class_path

    data = ctx.resume_state()
    if data is not None:
        if data.get("job_class") != job_class_path(job) or data.get("config") != job.config():
            raise ValueError(f"task {ctx.task.key}: the checkpoint to resume from was written by another job "
                             f"({data.get('job_class')}); refusing to continue it")
        job.load_state_dict(data["job"])
        ckpt.set_rng_state(data["rng"])
    total = max(1, int(job.total_steps))
    every = checkpoint_every if checkpoint_every is not None else max(50, total // 5)

    def payload() -> dict[str, Any]:
        return {"job_class": job_class_path(job), "config": job.config(), "meta": job.meta(),
                "job": job.state_dict(), "run_id": ctx.task.run_id or ctx.task.key, "step": job.step_count}

    yield ctx.record(job.kind, {"job_class": job_class_path(job), **job.config()}, job.total_steps)
    rows: list[tuple[int, dict[str, Any]]] = []
    last = time.monotonic()
    yield ctx.progress(job.step_count, job.total_steps)
    while not job.done:
        metrics = job.step()
        rows.append((job.step_count, _numbers(metrics or {})))
        at_checkpoint = bool(every) and job.step_count % every == 0
        if at_checkpoint or time.monotonic() - last >= flush_every_s:
            yield ctx.progress(job.step_count, job.total_steps, rows)
            rows, last = [], time.monotonic()
        if at_checkpoint and not job.done:
            yield ctx.checkpoint(payload(), job.step_count)
    if rows:
        yield ctx.progress(job.step_count, job.total_steps, rows)
    yield ctx.checkpoint(payload(), job.step_count)
    return job.finish()


def run_task(task: Task, attempt: int = 0, resume: bytes | None = None, threads: int | None = 1) -> Iterator[Message]:
    """Run ``task`` (attempt ``attempt``, from checkpoint bytes ``resume``), yielding its messages;
    the last is ``result`` or ``error``. Torch uses ``threads`` intra-op threads meanwhile (None:
    as they are)."""
    import torch

    yield ("start", {"pid": os.getpid(), "host": socket.gethostname(), "attempt": attempt})
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    try:
        ctx = TaskContext(task, attempt, resume, threads)
        out = resolve(task.fn)(ctx, **task.args)
        result = (yield from out) if inspect.isgenerator(out) else out
        yield ("result", result)
    except Exception as exc:  # a run that raises is recorded with its traceback; the sweep goes on
        yield ("error", {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    finally:
        torch.set_num_threads(before)
