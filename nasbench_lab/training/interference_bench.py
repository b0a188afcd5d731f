"""``nasbench-lab bench --section interference``: the instrument's time per measured child against
a plain PyTorch loop doing only the children's forward/backward passes (what no implementation can
avoid), on the same supernet, batch and children."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F


def bench(quick: bool = False) -> dict[str, Any]:
    from nasbench_lab.training import Trainer
    from nasbench_lab.training.interference import measure_trainer, spread_archs

    out: dict[str, Any] = {}
    k, images = (4, 16) if quick else (12, 64)
    for space in ("pooling", "nb201"):
        tr = Trainer(space=space, dataset="digits", steps=2, seed=0, rank_at_end=False, batch_size=images)
        tr.step()
        archs = spread_archs(tr.space, k, seed=0)
        measure_trainer(tr, archs[:2], images=images)  # warm-up (allocations, kernel selection)
        t0 = time.perf_counter()
        res = measure_trainer(tr, archs, images=images)
        t_inst = time.perf_counter() - t0
        x, y = tr._layout(tr.data.train_x[:images]), tr.data.train_y[:images]
        t0 = time.perf_counter()
        with tr._batch_stats_only():
            for a in archs:  # the plain loop: forward, backward into .grad, nothing kept
                tr.net.zero_grad(set_to_none=True)
                F.cross_entropy(tr.net(x, a), y).backward()
        tr.net.zero_grad(set_to_none=True)
        t_plain = time.perf_counter() - t0
        out[f"interference_{space}_s_per_child"] = t_inst / len(archs)
        out[f"interference_{space}_vs_plain_backward"] = t_inst / max(t_plain, 1e-9)
        out[f"interference_{space}_pairs"] = int(res.summary()["pairs"])
    out["interference_threads"] = torch.get_num_threads()
    return out
