"""``nasbench-lab bench --section sweep``: one sweep (2 samplers x 3 seeds of compare-samplers)
run one after another in this process, on a local process pool, and on a local Ray.

Figures: the wall-clock of each, the pool's and Ray's speed-up over the sequential run (>1:
faster), and Ray's start-up (``ray.init`` of a local Ray: its processes, before the first run)
apart from its sweep time. The pool's and Ray's first runs include their workers' start (an
interpreter importing torch): on a sweep this short that cost is part of the figure.
``sweep_same_numbers`` is 1 when the three gave identical results (each run owns its seed).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from nasbench_lab.sweep import ExecutorConfig, ray_available


def _timed(executor: Any, steps: int, rank_images: int) -> tuple[float, dict[str, Any]]:
    from nasbench_lab.training.samplers.compare import comparison_sweep

    sweep = comparison_sweep(["uniform", "fair"], seeds=[0, 1, 2], steps=steps, rank_images=rank_images,
                             batch_size=32, executor=executor, store=False, progress=False)
    t0 = time.perf_counter()
    res = sweep.run()
    if sweep.failed:
        raise RuntimeError(f"sweep bench: runs failed: {sweep.failed}")
    return time.perf_counter() - t0, {k: {c: v for c, v in r.items() if c not in ("train_s", "rank_s")}
                                      for k, r in res.items()}


def bench(quick: bool = False) -> dict[str, Any]:
    steps, rank_images = (4, 16) if quick else (30, 32)
    out: dict[str, Any] = {"sweep_runs": 6, "sweep_steps_per_run": steps}
    seq_s, seq = _timed("local", steps, rank_images)
    pool_s, pool = _timed(ExecutorConfig(workers=2), steps, rank_images)
    out.update(sweep_sequential_s=seq_s, sweep_pool2_s=pool_s, sweep_pool2_speedup=seq_s / pool_s)
    same = pool == seq
    if ray_available():
        import os

        import ray

        with tempfile.TemporaryDirectory(prefix="nbl-ray-") as tmp:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            t0 = time.perf_counter()
            try:
                ray.init(num_cpus=2, include_dashboard=False, _temp_dir=tmp, configure_logging=False,
                         log_to_driver=False)
            except Exception as exc:  # noqa: BLE001 - reported as a figure, the other sections go on
                ray.shutdown()
                out["sweep_ray"] = f"did not start: {str(exc)[:160]}"
                out["sweep_same_numbers"] = int(same)
                return out
            out["sweep_ray_startup_s"] = time.perf_counter() - t0
            try:
                ray_s, on_ray = _timed(ExecutorConfig("ray"), steps, rank_images)
            finally:
                ray.shutdown()
        out.update(sweep_ray_s=ray_s, sweep_ray_speedup=seq_s / ray_s,
                   sweep_ray_speedup_with_startup=seq_s / (ray_s + out["sweep_ray_startup_s"]))
        same = same and on_ray == seq
    else:
        out["sweep_ray"] = "not installed: pip install 'nasbench_lab[ray]'"
    out["sweep_same_numbers"] = int(same)
    return out
