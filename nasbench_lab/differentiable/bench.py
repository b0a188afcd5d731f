"""``nasbench-lab bench`` section ``darts-monitor``: what the Hessian-eigenvalue monitor costs.

On the NB-201 supernet (C=16, N=5; ``quick``: C=8, N=1), digits, batch 64, first-order DARTS:

* ``darts_step_s``: one alternating (alpha, w) step with the monitor off;
* ``eig_s`` / ``eig_hvps``: one warm-started measurement at the defaults (largest algebraic
  eigenvalue, Lanczos products on ``hessian_batch`` images until the residual criterion
  ``hessian_tol``, at most ``hessian_iters``; the cadence plans ``HVP_PLANNED``), and the first,
  cold one (``eig_cold_s``, ``eig_cold_hvps``);
* ``eig_every_200`` and ``eig_fraction_200``: the default cadence of a 200-step run and the share
  of that run's time the monitor then takes (monitor time / (monitor + training time)); the same
  for a 20-step run (``eig_fraction_20``);
* ``eig_legacy_s`` and ``eig_legacy_fraction_20``: the landed monitor for comparison, 10 power
  iterations of the full-batch (64) Hessian every ``steps // 10`` steps, on a 20-step run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
import torch.nn.functional as F


def bench(quick: bool = False) -> dict[str, Any]:
    from nasbench_lab import data
    from nasbench_lab.differentiable import DifferentiableTrainer
    from nasbench_lab.differentiable.monitors import _grads, power_iteration
    from nasbench_lab.differentiable.trainer import frozen_bn

    shape = dict(channels=8, cells=1) if quick else {}
    job = DifferentiableTrainer(data=data.get("digits"), method="darts", space="nb201", steps=200, hessian_every=0,
                                device="cpu", batch_size=64, arch_lr=3e-3, **shape)
    job.step()  # allocations and first-call overheads, not timed
    steps = 2 if quick else 3
    t0 = time.perf_counter()
    for _ in range(steps):
        job.step()
    step_s = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    job.eigenvalue()
    cold_s, cold_hvps = time.perf_counter() - t0, job._eig_matvecs
    warm = []
    for _ in range(2):
        job.step()
        t0 = time.perf_counter()
        job.eigenvalue()
        warm.append((time.perf_counter() - t0, job._eig_matvecs))
    eig_s = sum(w[0] for w in warm) / len(warm)
    hvps = sum(w[1] for w in warm) / len(warm)
    every = DifferentiableTrainer.default_hessian_every(job.cfg)
    n_meas = job.cfg.steps // every + (job.cfg.steps % every != 0)
    run_monitor = cold_s + (n_meas - 1) * eig_s
    out: dict[str, Any] = {
        "darts_step_s": step_s, "eig_s": eig_s, "eig_hvps": hvps, "eig_cold_s": cold_s, "eig_cold_hvps": cold_hvps,
        "eig_cost_steps": eig_s / step_s, "eig_every_200": every, "eig_measurements_200": n_meas,
        "eig_fraction_200": run_monitor / (run_monitor + job.cfg.steps * step_s),
    }
    short = dataclasses.replace(job.cfg, steps=20)
    short_every = DifferentiableTrainer.default_hessian_every(short)
    short_meas = 20 // short_every + (20 % short_every != 0)
    short_monitor = cold_s + (short_meas - 1) * eig_s
    out["eig_measurements_20"] = short_meas
    out["eig_fraction_20"] = short_monitor / (short_monitor + 20 * step_s)
    # the landed monitor: 10 power iterations of the Hessian on 64 validation images
    n = min(64, job.data.val_x.shape[0])
    xv, yv = job.data.val_x[:n], job.data.val_y[:n]
    alphas = list(job.alphas.values())
    job.net.train()
    t0 = time.perf_counter()
    with frozen_bn(job.net):
        w = {g: F.softmax(a, dim=-1) for g, a in job.alphas.items()}
        loss = F.cross_entropy(job._forward(xv, w), yv)
        flat = torch.cat([g.reshape(-1) for g in _grads(loss, alphas, create_graph=True)])

        def hvp(v: torch.Tensor) -> torch.Tensor:
            return torch.cat([h.reshape(-1) for h in _grads(torch.dot(flat, v), alphas, retain_graph=True)])

        power_iteration(hvp, flat.numel(), iters=10, tol=0.0, generator=torch.Generator().manual_seed(0))
    legacy_s = time.perf_counter() - t0
    legacy_every = max(1, 20 // 10)
    legacy_meas = math.ceil(20 / legacy_every)
    out["eig_legacy_s"] = legacy_s
    out["eig_legacy_fraction_20"] = legacy_meas * legacy_s / (legacy_meas * legacy_s + 20 * step_s)
    return out
