"""``nasbench-lab bench --section budget``: acceptance rate and samples/s of the samplers under the
thesis' budget on MobileNetV2 (§3.5.4: only architectures within [0.99, 1] x B FLOPs are sampled),
with ``B`` the median FLOPs of uniform samples."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nasbench_lab import spaces
from nasbench_lab.spaces.budget import Budget
from nasbench_lab.spaces.cost import cost_model
from nasbench_lab.training import samplers


def bench(quick: bool = False) -> dict[str, Any]:
    sp = spaces.get("mobilenet")
    c = cost_model(sp, "flops").many(np.array([sp.sample(i).genes for i in range(500)]))
    budget = Budget.band("flops", float(np.median(c)))
    out: dict[str, Any] = {"budget_B_mflops": float(np.median(c)) / 1e6}
    n = 50 if quick else 200
    for name in ("uniform", "fair", "independent", "mcts"):
        opts = {} if name in ("uniform", "fair") else {"total_steps": n}
        if name == "mcts":
            opts.update(warmup=0.0, uct_warmup=0.0)
        s = samplers.get(name, sp, seed=0, budget=budget, **opts)
        t0 = time.perf_counter()
        for _ in range(n):
            s.observe(s.sample(), 0.5)
        dt = time.perf_counter() - t0
        out[f"budget_{name}_samples_per_s"] = n / dt
        if name == "uniform":  # the only one that proposes and rejects (from a near-exact superset)
            out["budget_uniform_acceptance"] = s.band.accepted / max(1, s.band.draws)
    return out
