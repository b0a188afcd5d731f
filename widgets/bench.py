"""``nasbench-lab bench --section dashboard``: what watching a run costs its training speed.

The same pooling/uniform Trainer runs in a Run's thread twice per round: once headless (the main
thread just waits) and once with a RunDashboard attached whose ``refresh()`` the main thread
calls about three times a second, as the kernel's event loop would. Speed is taken from the step
events' timestamps (first to last step), so start-up and the final ranking are not counted.
Rounds alternate and the best of each side counts (the usual way to time on a noisy machine).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from nasbench_lab.runs import Run, RunStore

from .dashboard import TERMINAL, RunDashboard


def _steps_per_s(run: Run) -> float:
    steps = run.events.since(0, kinds="step")
    if len(steps) < 2 or steps[-1].time <= steps[0].time:
        return float("nan")
    return (steps[-1].step - steps[0].step) / (steps[-1].time - steps[0].time)


def _one(attached: bool, steps: int, tmp: str, store: RunStore, device: str) -> tuple[float, list[float]]:
    from nasbench_lab.training.trainer import Trainer

    job = Trainer(space="pooling", dataset="digits", method="uniform", steps=steps, seed=0,
                  rank_at_end=False, device=device)
    run = Run(job, store=store, checkpoint_every=10**9, checkpoint_dir=tmp)
    dash = RunDashboard(run, auto_refresh=False) if attached else None
    refresh_ms: list[float] = []
    run.start()
    while run.status not in TERMINAL:
        if dash is not None:
            t0 = time.perf_counter()
            dash.refresh()
            refresh_ms.append(1000 * (time.perf_counter() - t0))
        run.wait(timeout=RunDashboard.interval_s)
    if run.error is not None:
        raise RuntimeError(f"bench run failed:\n{run.traceback}")
    if dash is not None:
        dash.close()
    return _steps_per_s(run), refresh_ms


def bench(quick: bool = False, device: str = "auto") -> dict[str, Any]:
    """Steps/s with a refreshing dashboard vs headless; ``dashboard_ratio`` = attached / headless."""
    steps, rounds = (30, 1) if quick else (150, 3)
    best = {True: 0.0, False: 0.0}
    refresh_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(f"{tmp}/bench.sqlite")
        for _ in range(rounds):
            for attached in (False, True):
                rate, ms = _one(attached, steps, tmp, store, device)
                best[attached] = max(best[attached], rate)
                refresh_ms += ms
        store.close()
    refresh_ms.sort()
    out: dict[str, Any] = {
        "dashboard_attached_steps_per_s": best[True],
        "headless_steps_per_s": best[False],
        "dashboard_ratio": best[True] / best[False] if best[False] else float("nan"),
    }
    if refresh_ms:
        out["dashboard_refresh_ms_median"] = refresh_ms[len(refresh_ms) // 2]
        out["dashboard_refresh_ms_p95"] = refresh_ms[int(0.95 * (len(refresh_ms) - 1))]
    return out
