"""``nasbench-lab bench``: speed and memory as ratios against a plain PyTorch loop on this machine.

The Trainer section times the full product path (uniform sampler, a Run in its thread with
events on and the SQLite store on) against a hand-written loop that replays the *same*
architectures on the *same* batches (same augmentation, same validation-minibatch reward). Both
do identical arithmetic, so the ratio is the framework's overhead alone. Each side runs in
alternation, several rounds, and the best round counts (the usual way to time on a noisy box).

On a CPU with few cores a Run's thread is slower than the main thread for a reason outside this
package: once the main thread has run an OpenMP parallel region (any torch op, as in every
notebook), a second thread's regions get a second OpenMP team, and with more OpenMP threads alive
than cores libgomp cuts its spin-wait to 100 spins (GOMP_SPINCOUNT), so each region waits for a
futex wake-up (1.2-1.5x per step on 2 cores). The Run ends the main thread's idle team when it
starts and the dashboard after each refresh (``nasbench_lab.runs.openmp``); this bench's main
thread runs the plain loops, so every Run here starts after the main thread used torch.

The Trainer keeps its supernet and batches in channels_last (``TrainerConfig.channels_last``),
oneDNN's fastest layout on CPU too (training steps 1.4x pooling, 2.1x NB-201 on 2 cores), while
the plain loop is written as a user writes it (NCHW): ``*_trainer_ratio`` is the product against
that loop, ``*_trainer_vs_channels_last_loop`` against the same loop in the Trainer's layout (the
framework's own overhead, the thread's included). The ``ranking`` section times the per-row
work of ``rank_supernet``.
"""

from __future__ import annotations

import importlib
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from nasbench_lab import config


def _peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _trainer_vs_plain(space: str, steps: int, rounds: int, device: str) -> dict[str, float]:
    from nasbench_lab.runs import Run, RunStore
    from nasbench_lab.training.trainer import Trainer

    dev = config.device(device)
    kw = {"space": space, "dataset": "digits", "method": "uniform", "steps": steps, "seed": 0,
          "device": str(dev), "rank_at_end": False}
    best_trainer, best_plain, best_attached = float("inf"), float("inf"), float("inf")
    best_plain_cl = float("inf")
    archs: list[str] = []
    mem: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(f"{tmp}/bench.sqlite")
        for _ in range(rounds):
            # --- the product path
            job = Trainer(**kw)
            warm = job.step()["arch"]  # warm-up step (allocations, kernel selection), not timed
            job.total_steps = steps + 1
            run = Run(job, store=store, checkpoint_every=10**9, checkpoint_dir=tmp)
            if dev.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            run.start().result()
            if dev.type == "cuda":
                torch.cuda.synchronize()
                mem["trainer_peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
            best_trainer = min(best_trainer, time.perf_counter() - t0)
            archs = [warm] + [e.data["arch"] for e in run.events.since(0, kinds="step")]

            # --- the plain loop: same supernet init, same batches, same architectures, written the
            # way a user would (NCHW), and the same loop in the Trainer's channels_last layout
            best_plain = min(best_plain, _plain_loop(Trainer(**kw), archs, mem))
            best_plain_cl = min(best_plain_cl, _plain_loop(Trainer(**kw), archs, {}, channels_last=True))

            # --- the product path with a dashboard attached (a refresher polling in this thread)
            job = Trainer(**kw)
            job.step()
            job.total_steps = steps + 1
            run = Run(job, store=store, checkpoint_every=10**9, checkpoint_dir=tmp)
            best_attached = min(best_attached, _dashboard_attached(run))
        store.close()
    n = max(1, len(archs) - 1)
    out = {
        f"{space}_trainer_steps_per_s": n / best_trainer,
        f"{space}_plain_steps_per_s": n / best_plain,
        f"{space}_trainer_ratio": best_plain / best_trainer,
        # the framework's overhead alone: the same arithmetic in the same layout
        f"{space}_trainer_vs_channels_last_loop": best_plain_cl / best_trainer,
        f"{space}_dashboard_attached_ratio": best_plain / best_attached,
        **{f"{space}_{k}": v for k, v in mem.items()},
    }
    if "trainer_peak_mem_mb" in mem and mem.get("plain_peak_mem_mb"):
        out[f"{space}_memory_ratio"] = mem["trainer_peak_mem_mb"] / mem["plain_peak_mem_mb"]
    return out


def _dashboard_attached(run: Any, interval_s: float = 1 / 3) -> float:
    """Seconds for a run's steps while this thread refreshes a view of it the way
    ``widgets._common.FollowsRun`` does: every ``interval_s`` the events after its cursor and the
    latest snapshot, no torch (the engine cannot import the widgets, so the loop is spelt out)."""
    from nasbench_lab.runs.openmp import release_idle_team

    seq, snapshots = 0, 0
    t0 = time.time()  # the events' clock
    run.start()
    while True:
        events = run.events.since(seq)
        if events:
            seq = events[-1].seq
            snapshots += sum(1 for e in events if e.kind == "snapshot")
        release_idle_team()  # as FollowsRun does after each refresh
        if run.status in ("finished", "failed", "stopped") and seq >= run.events.last_seq:
            break
        time.sleep(interval_s)
    run.result()
    # up to the run's final status event: the refresher's last sleep is not the run's time
    done = [e.time for e in run.events.since(0, kinds="status") if e.data.get("status") == "finished"]
    return done[-1] - t0


def _plain_loop(fresh: Any, archs: list[str], mem: dict[str, float], channels_last: bool = False) -> float:
    """A hand-written loop over the tensors of a fresh Trainer; returns seconds for archs[1:].

    As a user writes it, the supernet and batches are NCHW (PyTorch's default); with
    ``channels_last`` both are in the layout the Trainer uses."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net, opt, sched, sp = fresh.net.to(memory_format=fmt), fresh.optimizer, fresh.scheduler, fresh.space
    data, gen, dev = fresh.data, fresh.gen, fresh.device
    bs, vbs = fresh.cfg.batch_size, fresh.cfg.val_batch_size
    ntr, nva = data.train_x.shape[0], data.val_x.shape[0]
    perm = vperm = None
    pos, vpos = ntr, nva
    seq = [sp.parse(a) for a in archs]
    t0 = 0.0
    for i, arch in enumerate(seq):
        if i == 1:  # step 0 is the same untimed warm-up the Trainer had
            if dev.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
        # the same order of generator draws as Trainer._next_batch: permutation, augment, val
        if pos + bs > ntr:
            perm, pos = torch.randperm(ntr, generator=gen, device=dev), 0
        idx = perm[pos:pos + bs]
        pos += bs
        x = data.augment(data.train_x[idx], generator=gen).contiguous(memory_format=fmt)
        loss = F.cross_entropy(net(x, arch), data.train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if vpos + vbs > nva:
            vperm, vpos = torch.randperm(nva, generator=gen, device=dev), 0
        vidx = vperm[vpos:vpos + vbs]
        vpos += vbs
        with torch.no_grad():
            acc = (net(data.val_x[vidx].contiguous(memory_format=fmt), arch).argmax(1) == data.val_y[vidx]).float().mean()
        _ = (float(loss.detach()), float(acc))  # the same host syncs the Trainer makes
    if dev.type == "cuda":
        torch.cuda.synchronize()
        mem["plain_peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return time.perf_counter() - t0


def bench_trainer(quick: bool = False, device: str = "auto") -> dict[str, float]:
    steps, rounds = (8, 1) if quick else (30, 3)  # quick: a smoke check of the path, not a measurement
    out: dict[str, float] = {}
    for space in ("pooling", "nb201"):
        out.update(_trainer_vs_plain(space, steps, rounds, device))
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def bench_ranking(quick: bool = False, device: str = "auto") -> dict[str, float]:
    """Seconds per ranked architecture (BN recalibration + evaluation on every validation image,
    what ``rank_supernet`` does per row), the Trainer as it is against the layout and chunking it
    had before (NCHW, 512 images per forward pass): the wait at the end of a run and at each
    ``rank_every``."""
    from nasbench_lab.training.ranking import rank_supernet
    from nasbench_lab.training.trainer import Trainer

    out: dict[str, float] = {}
    for space, n in ((("pooling", 6),) if quick else (("pooling", 36), ("nb201", 12))):
        for label, channels_last, chunk in (("", True, None), ("_nchw_512", False, 512)):
            tr = Trainer(space=space, dataset="digits", method="uniform", steps=2, seed=0, device=device,
                         channels_last=channels_last, rank_at_end=False)
            tr.step()
            if chunk:
                tr.eval_chunk = chunk
            archs = tr.sample_archs(n, seed=0)
            rank_supernet(tr, archs[:1], benchmark=False)  # warm-up (allocations, kernel selection)
            t0 = time.perf_counter()
            rank_supernet(tr, archs, benchmark=False)
            out[f"{space}_ranking_s_per_arch{label}"] = (time.perf_counter() - t0) / len(archs)
        out[f"{space}_ranking_speedup"] = out[f"{space}_ranking_s_per_arch_nchw_512"] / out[f"{space}_ranking_s_per_arch"]
    return out


# name -> callable(quick, device) or "module:function" of a plug-in section (imported lazily).
SECTIONS: dict[str, Callable[..., dict[str, Any]] | str] = {
    "trainer": bench_trainer,
    "ranking": bench_ranking,
    "search": "nasbench_lab.search.bench:bench",
    "dashboard": "nasbench_lab.widgets.bench:bench",
    "proxies": "nasbench_lab.proxies.bench:bench",
    "darts-monitor": "nasbench_lab.differentiable.bench:bench",
    "memory": "nasbench_lab.differentiable.memory_bench:bench",
    "budget": "nasbench_lab.training.samplers.budget_bench:bench",
    "interference": "nasbench_lab.training.interference_bench:bench",
    "sweep": "nasbench_lab.sweep.bench:bench",
}


def run_bench(quick: bool = False, device: str = "auto", sections: list[str] | None = None,
              echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the sections and print one line per figure; return all figures in one dict."""
    unknown = set(sections or []) - set(SECTIONS)
    if unknown:
        raise ValueError(f"--section: unknown {sorted(unknown)}; valid: {', '.join(SECTIONS)}")
    dev = config.device(device)
    result: dict[str, Any] = {"device": str(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
                              "quick": quick}
    echo(f"nasbench-lab bench on {dev} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    for name, fn in SECTIONS.items():
        if sections and name not in sections:
            continue
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            try:
                fn = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                echo(f"[{name}] skipped: {exc}")
                continue
        t0 = time.perf_counter()
        if name in ("trainer", "ranking"):
            figures = fn(quick=quick, device=device)
        else:
            figures = fn(quick=quick)
        echo(f"[{name}] ({time.perf_counter() - t0:.0f} s)")
        for k, v in figures.items():
            echo(f"  {k:<40} {v:,.3f}" if isinstance(v, float) else f"  {k:<40} {v}")
        result.update(figures)
    return result
