"""``nasbench-lab bench`` section ``memory``: peak memory per method family, each in its own process.

Peak RSS only grows within a process, so every figure comes from a fresh child interpreter that
builds one job (digits, batch 64, NB-201 at its defaults C=16, N=5; ``quick``: C=8, N=1 and only
DARTS and PC-DARTS), takes a few steps and reports its peak RSS and the RSS right after building
(the data, the model, the imports); the difference is what the steps themselves need (activations and gradients of the
graph, optimiser state). The families: the single-path one-shot Trainer (one path per step), and
the relaxed supernet of DARTS (every op of every edge), DARTS second order (the unrolled
virtual step), GDAS (one sampled op per edge in the forward) and PC-DARTS (1/K of the channels
through the mixed op). The eigenvalue monitor is off and PC-DARTS skips its weight-only warm-up,
so every step is a full (alpha, w) step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

FAMILIES = ("one-shot", "darts", "darts2", "gdas", "pcdarts")


def _child(family: str, steps: int, quick: bool) -> dict[str, float]:
    """Runs in the child: build, step, report (MB)."""
    import resource

    from nasbench_lab import data

    def rss_now() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    bundle = data.get("digits")
    if family == "one-shot":
        from nasbench_lab.training import Trainer

        job: Any = Trainer(data=bundle, space="nb201", method="uniform", steps=steps, batch_size=64, device="cpu",
                           rank_at_end=False)
    else:
        from nasbench_lab.differentiable import DifferentiableTrainer

        shape = dict(channels=8, cells=1) if quick else {}
        job = DifferentiableTrainer(data=bundle, space="nb201", method=family, steps=steps, batch_size=64,
                                    device="cpu", hessian_every=0, warmup_steps=0, **shape)
    built = rss_now()
    for _ in range(steps):
        job.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"built_mb": built, "peak_mb": peak}


def bench(quick: bool = False) -> dict[str, Any]:
    if not sys.platform.startswith("linux"):
        return {"memory_skipped": "peak RSS per process is read from /proc (Linux)"}
    steps = 2 if quick else 4
    out: dict[str, Any] = {}
    for family in ("darts", "pcdarts") if quick else FAMILIES:  # quick: the PC-DARTS claim only
        code = ("import json; from nasbench_lab.differentiable.memory_bench import _child; "
                f"print(json.dumps(_child({family!r}, {steps}, {quick!r})))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory bench, {family}: the child failed:\n{proc.stderr[-2000:]}")
        fig = json.loads(proc.stdout.strip().splitlines()[-1])
        key = family.replace("-", "_")
        out[f"{key}_peak_rss_mb"] = fig["peak_mb"]
        out[f"{key}_step_mb"] = fig["peak_mb"] - fig["built_mb"]
    out["pcdarts_vs_darts_step_mb"] = out["pcdarts_step_mb"] / out["darts_step_mb"]
    return out
