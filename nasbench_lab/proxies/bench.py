"""``nasbench-lab bench`` section ``proxies``: seconds per NB-201 cell per zero-cost proxy.

Two ways to score the same cells on the same batch of 64 images (3x32x32, the CIFAR shape):

* ``alone``: one :func:`~nasbench_lab.proxies.score` call per proxy, each building its own model
  and running its own passes: how the landed code computed every proxy;
* ``shared``: one :func:`~nasbench_lab.proxies.score_all` call per cell, one model build and
  shared forward/backward passes for all seven.

Both sides alternate cell by cell (a noisy box slows both alike); the mean per cell counts.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def bench(quick: bool = False) -> dict[str, Any]:
    from nasbench_lab import data, proxies, spaces
    from nasbench_lab.proxies.measures import NAMES

    sp = spaces.get("nb201")
    bundle = data.get("digits")
    batch = (bundle.train_x[:64], bundle.train_y[:64])
    rng = np.random.default_rng(0)
    cells = [sp.sample(rng) for _ in range(2 if quick else 6)]
    alone = {n: 0.0 for n in NAMES}
    shared = 0.0
    for arch in cells:
        for n in NAMES:
            t0 = time.perf_counter()
            proxies.score(n, sp, arch, batch, num_classes=10)
            alone[n] += time.perf_counter() - t0
        t0 = time.perf_counter()
        proxies.score_all(NAMES, sp, arch, batch, num_classes=10)
        shared += time.perf_counter() - t0
    k = len(cells)
    out: dict[str, Any] = {"proxy_cells": k}
    out.update({f"proxy_{n}_alone_s_per_cell": v / k for n, v in alone.items()})
    out["proxy_all_alone_s_per_cell"] = sum(alone.values()) / k
    out["proxy_all_shared_s_per_cell"] = shared / k
    out["proxy_shared_speedup"] = sum(alone.values()) / max(shared, 1e-12)
    return out
