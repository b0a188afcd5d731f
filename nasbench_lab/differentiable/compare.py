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
from nasbench_lab.progress import progress as tqdm
from nasbench_lab.runs import Run, RunStore
from nasbench_lab.validation import cli as T

__all__ = ["compare", "summarize", "add_arguments", "main"]


def compare(methods: Sequence[str], seeds: Sequence[int] = (0,), store: RunStore | bool | None = None,
            progress: bool = True, **options: Any) -> pd.DataFrame:
    """Run every method with every seed on the same options (space, dataset, steps...)."""
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods: expected names from {', '.join(METHODS)}, got {list(methods)!r} "
                         "(e.g. ['darts', 'gdas'])")
    if not seeds:
        raise ValueError("seeds: expected at least one seed, e.g. [0, 1, 2]")
    rows, snaps = [], {}
    pairs = [(m, s) for m in methods for s in seeds]
    for method, seed in tqdm(pairs, desc="runs", disable=not progress):
        t0 = time.perf_counter()
        job = DifferentiableTrainer(method=method, seed=int(seed), **options)
        run = Run(job, store=store, name=f"{method}-s{seed}")
        run.start()
        if progress:  # the steps of this run under the bar of runs: a run can take minutes
            from nasbench_lab.runs.progress import follow

            follow(run, job.total_steps, f"{method} seed {seed}", leave=False)
        summary = run.result() or {}
        rows.append({"method": method, "seed": int(seed), "arch": summary.get("arch"),
                     "table_acc": summary.get("table_acc"), "skip_count": summary.get("skip_count"),
                     "eigenvalue": summary.get("eigenvalue"), "first_alarm_step": summary.get("first_alarm_step"),
                     "steps": summary.get("steps"), "wall_s": time.perf_counter() - t0, "run_id": run.run_id})
        snaps[(method, int(seed))] = job.snapshot()
    df = pd.DataFrame(rows)
    df.attrs["snapshots"] = snaps
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


def main(args: argparse.Namespace) -> int:
    options = {k: v for k, v in dict(space=args.space, dataset=args.dataset, data_root=args.data_root, steps=args.steps,
                                     batch_size=args.batch_size, channels=args.channels, cells=args.cells,
                                     arch_lr=args.arch_lr, hessian_every=args.hessian_every,
                                     device=args.device).items() if v is not None}
    from nasbench_lab.cli import flat_list

    if args.csv:
        V.output_file("--csv", args.csv)  # before the work: a bad path must not lose the runs' results
    try:
        results = compare(flat_list(args.methods, str, "--methods"), flat_list(args.seeds, int, "--seeds"), **options)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    with pd.option_context("display.max_colwidth", 120, "display.width", 200):
        print(results.drop(columns=["run_id"]).to_string(index=False))
        print()
        print(summarize(results).round(3).to_string())
    return 0 if V.write_table("--csv", results, args.csv) else 1
