"""Compare one-shot samplers at equal budgets against ground truth (the thesis' tables in miniature).

Each (method, seed) trains a supernet for the same number of steps, ranks every architecture with
it, and reports Kendall tau (all and top-10) against the benchmark, the ground-truth rank of the
architecture the supernet picks (best estimate) and of the method's own final choice
(``sampler.select()``: the tree's lambda = 0 path, the mixture's best model, ...), and the time.

``nasbench-lab compare-samplers`` is :func:`main` (arguments in :func:`add_arguments`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from nasbench_lab import benchmarks
from nasbench_lab import validation as V
from nasbench_lab.training import samplers
from nasbench_lab.training.ranking import find_benchmark, rank_supernet
from nasbench_lab.training.trainer import Trainer
from nasbench_lab.validation import cli as T

THESIS_METHODS = ("uniform", "fair", "boltzmann", "independent", "mcts", "mcts-reg", "mcts-learned", "mcts-iterative",
                  "mixture", "density")
#: the default comparison: the thesis' samplers and ENAS beside them
METHODS = (*THESIS_METHODS, "enas")
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {"mixture": {"models": 4}}


def run_one(method: str, seed: int = 0, space: str = "pooling", dataset: str = "digits", steps: int = 300,
            benchmark: Any = None, method_options: dict[str, Any] | None = None, rank_images: int | None = None,
            **trainer_options: Any) -> dict[str, Any]:
    """Train one supernet with ``method`` and judge its ranking; a flat dict of results."""
    options = {**DEFAULT_OPTIONS.get(method, {}), **(method_options or {})}
    t0 = time.perf_counter()
    tr = Trainer(space=space, dataset=dataset, method=method, method_options=options, steps=steps, seed=seed,
                 rank_at_end=False, rank_images=rank_images, **trainer_options)  # checked before training
    for _ in range(steps):
        tr.step()
    t1 = time.perf_counter()
    bench = benchmark if benchmark is not None else find_benchmark(space, dataset)
    df = rank_supernet(tr, benchmark=bench or False, max_images=rank_images)
    t2 = time.perf_counter()
    s = df.attrs.get("summary", {})
    pick = tr.sampler.select(None, 1)
    pick = str(pick[0]) if pick else None
    row = {"method": method, "seed": seed, "steps": steps,
           "kendall_tau": s.get("kendall_tau", np.nan), "kendall_tau_top10": s.get("kendall_tau_top10", np.nan),
           "spearman": s.get("spearman", np.nan), "selected": df.attrs.get("selected"),
           "selected_truth_rank": s.get("selected_truth_rank_in_space", np.nan),
           "method_pick": pick, "method_pick_truth_rank": bench.rank(pick) if (bench and pick) else np.nan,
           "train_s": t1 - t0, "rank_s": t2 - t1}
    snap = tr.sampler.snapshot()
    row["_windows"] = snap.get("windows", [])
    row["_ranking"] = df
    return row


@dataclass
class Comparison:
    """``table``: one row per (method, seed); ``windows`` and ``rankings`` per ``(method, seed)``:
    the sampling counts per window of steps (top-5 frequency view) and the ranking table."""

    table: pd.DataFrame
    windows: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    rankings: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)


def compare(methods: Sequence[str] = METHODS, seeds: Sequence[int] = (0, 1, 2), progress: bool = True,
            **options: Any) -> Comparison:
    """Run every (method, seed) with the same budget (keyword options of :func:`run_one`)."""
    unknown = [m for m in methods if m not in samplers.names()]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; valid: {', '.join(samplers.names())}")
    rows = []
    for method in tqdm(list(methods), desc="methods", disable=not progress):
        for seed in seeds:
            rows.append(run_one(method, int(seed), **options))
    table = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    return Comparison(table, {(r["method"], r["seed"]): r["_windows"] for r in rows},
                      {(r["method"], r["seed"]): r["_ranking"] for r in rows})


def summarize(df: pd.DataFrame | Comparison) -> pd.DataFrame:
    """Mean and standard deviation over seeds, one row per method (in the order of ``df``)."""
    df = df.table if isinstance(df, Comparison) else df
    cols = ["kendall_tau", "kendall_tau_top10", "selected_truth_rank", "method_pick_truth_rank", "train_s", "rank_s"]
    g = df.groupby("method", sort=False)[cols]
    out = g.mean().round(3).add_suffix("_mean").join(g.std().round(3).add_suffix("_std"))
    out["seeds"] = df.groupby("method", sort=False).size()
    return out[[c for pair in zip([f"{c}_mean" for c in cols], [f"{c}_std" for c in cols]) for c in pair] + ["seeds"]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="pooling", help="search space (default: pooling)")
    parser.add_argument("--dataset", default="digits", help="training data (default: digits)")
    parser.add_argument("--data-root", default=None, help="folder with the CIFAR python batches (for cifar10/cifar100)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help="samplers, by spaces or commas (default: the thesis' set and enas)")
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"], help="seeds, by spaces or commas (default: 0 1 2)")
    parser.add_argument("--steps", type=T.positive_int("300"), default=300, help="training steps per run (equal budgets)")
    parser.add_argument("--batch-size", type=T.positive_int("64"), default=64)
    parser.add_argument("--val-batch-size", type=T.positive_int("128"), default=128)
    parser.add_argument("--rank-images", type=T.positive_int("256"), default=None,
                        help="validation images per architecture when ranking")
    parser.add_argument("--truth-dataset", default=None,
                        help="ground truth from another dataset's benchmark (e.g. cifar10) when none exists for --dataset")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--csv", "--out", dest="csv", default=None, help="also write the per-run table to this CSV file")


def main(args: argparse.Namespace) -> int:
    from nasbench_lab.cli import flat_list

    methods = flat_list(args.methods, str, "--methods")
    seeds = flat_list(args.seeds, int, "--seeds")
    if args.csv:
        V.output_file("--csv", args.csv)  # before the work: a bad path must not lose minutes of results
    bench = None
    if args.truth_dataset:
        bench = benchmarks.get(args.space, dataset=args.truth_dataset)
    elif find_benchmark(args.space, args.dataset) is None:
        print(f"note: no ground truth for {args.space}/{args.dataset}; Kendall tau will be missing "
              f"(build it with `nasbench-lab groundtruth` or pass --truth-dataset)")
    res = compare(methods, seeds, space=args.space, dataset=args.dataset, steps=args.steps, benchmark=bench,
                 rank_images=args.rank_images, batch_size=args.batch_size, val_batch_size=args.val_batch_size,
                 device=args.device, **({"data_root": args.data_root} if args.data_root else {}))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summarize(res).to_string())
    return 0 if V.write_table("--csv", res.table, args.csv) else 1
