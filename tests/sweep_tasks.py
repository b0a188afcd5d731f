"""Sweep task functions for tests/test_sweep.py: real (tiny) supernet trainings, with faults.

They live in a plain module of tests/ so worker processes (the pool, Ray) import them by name;
the tests put tests/ on the workers' PYTHONPATH.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from nasbench_lab.sweep import train_job


def trainer(seed: int, steps: int) -> Any:
    from nasbench_lab.training import Trainer

    return Trainer(space="pooling", dataset="digits", method="uniform", steps=steps, batch_size=16,
                   val_batch_size=32, seed=seed, rank_at_end=False, device="cpu")


def fingerprint(tr: Any, last: dict[str, Any]) -> dict[str, Any]:
    """What a trained supernet is, in numbers: the sum of its weights and the last step's loss."""
    total = sum(float(p.detach().double().sum()) for p in tr.net.parameters())
    return {"param_sum": total, "loss": float(last.get("loss", float("nan"))), "steps": tr.step_count}


def train(ctx: Any, seed: int, steps: int, every: int = 2, crash_after: str | None = None,
          wait_for: str | None = None, fail_at: int | None = None, starts: str | None = None) -> Any:
    """Train ``steps`` steps with a checkpoint every ``every``.

    ``crash_after``: a marker file; on the first attempt (no marker yet) the worker process is
    killed with ``os._exit(1)`` right after its first checkpoint reached the driver (the driver's
    checkpoint file ``wait_for`` exists). ``fail_at``: raise at that step. ``starts``: a folder
    where every attempt leaves a file (how many times the task ran)."""
    if starts:
        Path(starts).mkdir(parents=True, exist_ok=True)
        (Path(starts) / f"{ctx.task.key}-{ctx.attempt}-{os.getpid()}-{time.time_ns()}").touch()
    tr = trainer(seed, steps)
    last: dict[str, Any] = {}
    orig_step = tr.step

    def step() -> dict[str, Any]:
        if fail_at is not None and tr.step_count + 1 == fail_at:
            raise ValueError(f"a deliberate failure at step {fail_at}")
        out = orig_step()
        last.update(out)
        return out

    tr.step = step
    gen = train_job(ctx, tr, checkpoint_every=every)
    try:
        msg = next(gen)
        while True:
            yield msg
            if crash_after and msg[0] == "checkpoint" and not Path(crash_after).exists():
                Path(crash_after).touch()
                deadline = time.monotonic() + 120
                while wait_for and not Path(wait_for).exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                os._exit(1)  # a killed worker: no cleanup, no message
            msg = gen.send(None)
    except StopIteration:
        pass
    return fingerprint(tr, last)


def train_plain(seed: int, steps: int) -> dict[str, Any]:
    """The same training without a sweep: the reference numbers."""
    tr = trainer(seed, steps)
    last: dict[str, Any] = {}
    for _ in range(steps):
        last = tr.step()
    return fingerprint(tr, last)
