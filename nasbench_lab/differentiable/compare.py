"""Differentiable methods side by side at equal budgets, over seeds (and the ``darts`` CLI command).

``compare(["darts", "gdas"], seeds=[0, 1, 2], steps=300, ...)`` runs each (method, seed) as a
recorded :class:`~nasbench_lab.runs.Run` and returns one row per run: the derived cell, its
benchmark accuracy, its skip count, the last dominant eigenvalue, the first alarm and the wall
time; ``attrs["snapshots"]`` keeps each run's final snapshot for the views.

CLI (the lead wires it as ``nasbench-lab darts``): :func:`add_arguments` and :func:`main`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from nasbench_lab import validation as V
from nasbench_lab.differentiable.trainer import METHODS, DifferentiableTrainer
from nasbench_lab.progress import write as progress_write
from nasbench_lab.runs import RunStore
from nasbench_lab.sweep.spec import add_executor_arguments
from nasbench_lab.validation import cli as T

__all__ = ["compare", "summarize", "add_arguments", "main"]


def compare(methods: Sequence[str], seeds: Sequence[int] = (0,), store: RunStore | bool | None = None,
            progress: bool = True, executor: Any = "local", **options: Any) -> pd.DataFrame:
    """Run every method with every seed on the same options (space, dataset, steps...), as a
    sweep (:mod:`nasbench_lab.sweep`) on ``executor`` (``"local"``: one after another in this
    process; or an :class:`~nasbench_lab.sweep.ExecutorConfig`: a process pool, Ray). Each run is
    recorded in ``store`` by the sweep's driver; a run finished there before is read back."""
    sweep = darts_sweep(methods, seeds, store=store, progress=progress, executor=executor, **options)
    sweep.run()
    return results_of(sweep)


def darts_sweep(methods: Sequence[str], seeds: Sequence[int] = (0,), store: RunStore | bool | None = None,
                progress: bool = True, executor: Any = "local", **options: Any) -> Any:
    """The :class:`~nasbench_lab.sweep.Sweep` of :func:`compare`, not started."""
    from nasbench_lab.sweep import Sweep, Task
    from nasbench_lab.sweep.spec import task_key

    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods: expected names from {', '.join(METHODS)}, got {list(methods)!r} "
                         "(e.g. ['darts', 'gdas'])")
    if not seeds:
        raise ValueError("seeds: expected at least one seed, e.g. [0, 1, 2]")
    tasks = []
    for method in methods:
        for seed in seeds:
            args = {"method": method, "seed": int(seed), **options}
            tasks.append(Task(task_key("darts", f"{method}-s{int(seed)}", args),
                              "nasbench_lab.differentiable.compare:sweep_task", args, name=f"{method}-s{seed}"))
    return Sweep(tasks, executor, store=store, name="darts", progress=progress,
                 log=progress_write if progress else None)


def sweep_task(ctx: Any, method: str, seed: int, **options: Any) -> Any:
    """One (method, seed) as a sweep task: trained with streamed metrics and checkpoints; its row."""
    from nasbench_lab.sweep import train_job

    t0 = time.perf_counter()
    job = DifferentiableTrainer(method=method, seed=int(seed), **options)
    summary = (yield from train_job(ctx, job)) or {}
    return {"method": method, "seed": int(seed), "arch": summary.get("arch"),
            "table_acc": summary.get("table_acc"), "skip_count": summary.get("skip_count"),
            "eigenvalue": summary.get("eigenvalue"), "first_alarm_step": summary.get("first_alarm_step"),
            "steps": summary.get("steps"), "wall_s": time.perf_counter() - t0, "_snapshot": job.snapshot()}


def results_of(sweep: Any) -> pd.DataFrame:
    """One row per finished run of a :func:`darts_sweep` (``attrs["snapshots"]``: each run's
    final snapshot; ``attrs["failed"]``: the runs that failed, with why)."""
    rows, snaps = [], {}
    for key, r in sweep.results.items():
        rows.append({**{k: v for k, v in r.items() if not k.startswith("_")}, "run_id": sweep.states[key].run_id})
        snaps[(r["method"], int(r["seed"]))] = r.get("_snapshot")
    df = pd.DataFrame(rows)
    df.attrs["snapshots"] = snaps
    df.attrs["failed"] = dict(sweep.failed)
    return df


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std per method of the numeric columns."""
    cols = [c for c in ("table_acc", "skip_count", "eigenvalue", "wall_s") if c in results]
    out = results.groupby("method", sort=False)[cols].agg(["mean", "std"])
    out.columns = [f"{c}_{s}" for c, s in out.columns]
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``nasbench-lab darts``: run differentiable methods over seeds and print the comparison."""
    parser.add_argument("--methods", nargs="+", default=["darts", "darts2", "gdas", "darts-minus"],
                        help=f"methods, by spaces or commas ({', '.join(METHODS)})")
    parser.add_argument("--space", default="nb201", help="nb201, darts or a pooling space")
    parser.add_argument("--dataset", default="digits", help="digits, cifar10 or cifar100")
    parser.add_argument("--data-root", default=None, help="folder with the CIFAR python batches (for cifar10/cifar100)")
    parser.add_argument("--steps", type=T.positive_int("300"), default=300, help="alternating (alpha, w) steps per run")
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"], help="seeds, by spaces or commas (default: 0 1 2)")
    parser.add_argument("--batch-size", type=T.positive_int("64"), default=None,
                        help="default: each method's published one (DARTS 64, PC-DARTS 256)")
    parser.add_argument("--channels", type=T.positive_int("16"), default=None, help="initial channels (default 16)")
    parser.add_argument("--cells", type=T.positive_int("5"), default=None,
                        help="nb201: cells per stage (5); darts: cells (8)")
    parser.add_argument("--arch-lr", type=T.positive_number("3e-4"), default=None,
                        help="alpha learning rate (default: each method's published one, DARTS 3e-4)")
    parser.add_argument("--hessian-every", type=T.nonnegative_int("30"), default=None,
                        help="steps between eigenvalues (0: never)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--csv", "--out", dest="csv", default=None, help="also write the per-run table to this CSV file")
    add_executor_arguments(parser)


def main(args: argparse.Namespace) -> int:
    options = {k: v for k, v in dict(space=args.space, dataset=args.dataset, data_root=args.data_root, steps=args.steps,
                                     batch_size=args.batch_size, channels=args.channels, cells=args.cells,
                                     arch_lr=args.arch_lr, hessian_every=args.hessian_every,
                                     device=args.device).items() if v is not None}
    from nasbench_lab.cli import flat_list
    from nasbench_lab.sweep import executor_from_args

    if args.csv:
        V.output_file("--csv", args.csv)  # before the work: a bad path must not lose the runs' results
    try:
        results = compare(flat_list(args.methods, str, "--methods"), flat_list(args.seeds, int, "--seeds"),
                          executor=executor_from_args(args), **options)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        if not results.empty:
            print(results.drop(columns=["run_id"]).to_string(index=False))
            print()
            print(summarize(results).round(3).to_string())
    for key, why in results.attrs["failed"].items():
        print(f"failed: {key}: {why.strip().splitlines()[-1] if why.strip() else why}")
    return 0 if V.write_table("--csv", results, args.csv) and not results.attrs["failed"] else 1
