"""Compare one-shot samplers against ground truth (the thesis' tables in miniature).

Each (method, seed) trains a supernet, ranks every architecture with it, and reports Kendall tau
(all and top-10) against the benchmark, the ground-truth rank of the architecture the supernet
picks (best estimate) and of the method's own final choice (``sampler.select()``: the tree's
lambda = 0 path, the mixture's best model, ...), and the time.

How many steps each method trains is a *budget rule* (:func:`budget_steps`, column
``budget_rule``): ``equal`` (the same steps for every method: equal compute) or ``per-model``
(the same steps per supernet: a mixture of M supernets trains M times as long, as the thesis
does, §2.4). Equal steps are not equal training for every method, and the table says where:
``supernet_steps`` counts the steps of the weights that rank (``mcts-learned`` starts a fresh
search supernet after its warm-up, Alg. 3.1 line 24, so at an equal budget it trains on the last
60 % only), ``weight_sets`` the supernets that share them (a mixture's M), ``paths_per_update``
the paths summed into one optimizer step (FairNAS's m); :func:`budget_notes` words it under the
table.

``nasbench-lab compare-samplers`` is :func:`main` (arguments in :func:`add_arguments`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nasbench_lab import benchmarks
from nasbench_lab import validation as V
from nasbench_lab.progress import progress as tqdm
from nasbench_lab.progress import write as progress_write
from nasbench_lab.sweep.spec import add_executor_arguments
from nasbench_lab.training import samplers
from nasbench_lab.training.ranking import find_benchmark, rank_supernet
from nasbench_lab.training.trainer import Trainer
from nasbench_lab.validation import cli as T

THESIS_METHODS = ("uniform", "fair", "boltzmann", "independent", "mcts", "mcts-reg", "mcts-learned", "mcts-iterative",
                  "mixture", "density")
#: the default comparison: the thesis' samplers and ENAS beside them
METHODS = (*THESIS_METHODS, "enas")
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {"mixture": {"models": 4}}
#: how the step budget is shared out (:func:`budget_steps`)
BUDGET_RULES = ("equal", "per-model")


def budget_steps(method: str, steps: int, rule: str = "equal", method_options: Mapping[str, Any] | None = None) -> int:
    """Training steps of one run of ``method`` under a budget rule, ``steps`` being the base budget.

    - ``"equal"``: ``steps`` for every method (equal compute; a mixture of M supernets then gives
      each about ``steps / M``).
    - ``"per-model"``: ``steps`` per weight set, ``M * steps`` for a mixture of ``M`` supernets and
      ``steps`` for the single-supernet methods. Thesis §2.4: "For our Balance Mixture of
      supernet, the number of training epochs is set proportional to number of models to ensure
      sufficient training."

    ``method_options``: the options the run will use (the mixture's ``models``; without it the
    comparison's default, :data:`DEFAULT_OPTIONS`, then the sampler's own). The number of weight
    sets is the sampler's (:meth:`Sampler.weight_sets`).
    """
    V.choice("budget_rule", rule, BUDGET_RULES)
    steps = V.positive_int("steps", steps, example=300)
    if rule == "equal":
        return steps
    options = {**DEFAULT_OPTIONS.get(method, {}), **(method_options or {})}
    return steps * samplers.sampler_class(method).weight_sets(options)


def run_one(method: str, seed: int = 0, space: str = "pooling", dataset: str = "digits", steps: int = 300,
            benchmark: Any = None, method_options: dict[str, Any] | None = None, rank_images: int | None = None,
            budget_rule: str = "equal", progress: bool = False, **trainer_options: Any) -> dict[str, Any]:
    """Train one supernet with ``method`` for :func:`budget_steps` steps (``steps`` is the base
    budget) and judge its ranking; a flat dict of results. ``progress``: bars for the steps and
    the ranking on stderr."""
    options = {**DEFAULT_OPTIONS.get(method, {}), **(method_options or {})}
    steps = budget_steps(method, steps, budget_rule, options)
    t0 = time.perf_counter()
    tr = Trainer(space=space, dataset=dataset, method=method, method_options=options, steps=steps, seed=seed,
                 rank_at_end=False, rank_images=rank_images, **trainer_options)  # checked before training
    for _ in tqdm(range(steps), desc=f"{method} seed {seed}", unit="step", leave=False, disable=not progress):
        tr.step()
    return _judged_row(tr, method, seed, steps, budget_rule, options, benchmark, rank_images, time.perf_counter() - t0)


def _judged_row(tr: Trainer, method: str, seed: int, steps: int, budget_rule: str, options: dict[str, Any],
                benchmark: Any, rank_images: int | None, train_s: float) -> dict[str, Any]:
    """Rank every architecture with the trained supernet ``tr``: the row of the comparison."""
    t1 = time.perf_counter()
    bench = benchmark if benchmark is not None else find_benchmark(tr.cfg.space, tr.cfg.dataset)
    df = rank_supernet(tr, benchmark=bench or False, max_images=rank_images)
    t2 = time.perf_counter()
    s = df.attrs.get("summary", {})
    pick = tr.sampler.select(None, 1)
    pick = str(pick[0]) if pick else None
    row = {"method": method, "seed": seed, "steps": steps, "budget_rule": budget_rule,
           # what the equal step count hides: the steps of the weights that rank (since the last
           # fresh start), the supernets that share the steps, the paths summed per update
           "supernet_steps": tr.step_count - tr.fresh_at,
           "weight_sets": type(tr.sampler).weight_sets(options),
           "paths_per_update": tr.sampler.paths_per_update,
           "kendall_tau": s.get("kendall_tau", np.nan), "kendall_tau_top10": s.get("kendall_tau_top10", np.nan),
           "spearman": s.get("spearman", np.nan), "selected": df.attrs.get("selected"),
           "selected_truth_rank": s.get("selected_truth_rank_in_space", np.nan),
           "method_pick": pick, "method_pick_truth_rank": bench.rank(pick) if (bench and pick and pick in bench) else np.nan,
           "train_s": train_s, "rank_s": t2 - t1}
    snap = tr.sampler.snapshot()
    row["_windows"] = snap.get("windows", [])
    row["_ranking"] = df
    return row


def sweep_task(ctx: Any, method: str, seed: int, space: str = "pooling", dataset: str = "digits", steps: int = 300,
               truth: tuple[str, str] | list[str] | None = None, method_options: dict[str, Any] | None = None,
               rank_images: int | None = None, budget_rule: str = "equal", **trainer_options: Any) -> Any:
    """One (method, seed) of :func:`compare` as a sweep task (:mod:`nasbench_lab.sweep`): trains
    with streamed metrics and checkpoints (a killed worker continues from the last one), then
    judges; the row as plain data (the ranking as records). ``truth``: (space, dataset) of the
    ground truth, else the one of ``space``/``dataset`` if any."""
    from nasbench_lab.sweep import train_job

    options = {**DEFAULT_OPTIONS.get(method, {}), **(method_options or {})}
    steps = budget_steps(method, steps, budget_rule, options)
    t0 = time.perf_counter()
    tr = Trainer(space=space, dataset=dataset, method=method, method_options=options, steps=steps, seed=seed,
                 rank_at_end=False, rank_images=rank_images, **trainer_options)
    yield from train_job(ctx, tr)
    bench = benchmarks.get(truth[0], dataset=truth[1]) if truth else None
    row = _judged_row(tr, method, seed, steps, budget_rule, options, bench, rank_images, time.perf_counter() - t0)
    df = row.pop("_ranking")
    row["_ranking"] = {"records": df.to_dict("records"), "attrs": dict(df.attrs)}
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


def _ranking_frame(data: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(data["records"])
    df.attrs.update(data.get("attrs", {}))
    return df


@dataclass
class Comparison:
    """``table``: one row per (method, seed); ``windows`` and ``rankings`` per ``(method, seed)``:
    the sampling counts per window of steps (top-5 frequency view) and the ranking table."""

    table: pd.DataFrame
    windows: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    rankings: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)
    #: runs that failed (task key -> error), left out of the table
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def notes(self) -> list[str]:
        """:func:`budget_notes` of the table: how to read its budgets."""
        return budget_notes(self.table)


def compare(methods: Sequence[str] = METHODS, seeds: Sequence[int] = (0, 1, 2), progress: bool = True,
            budget_rule: str = "equal", options_by_method: Mapping[str, Mapping[str, Any]] | None = None,
            executor: Any = "local", store: Any = False, **options: Any) -> Comparison:
    """Run every (method, seed) under one budget rule (:func:`budget_steps`; keyword options of
    :func:`run_one`). ``options_by_method``: sampler options per method, e.g.
    ``{"mcts-learned": {"warmup": 0.2}, "mixture": {"models": 8}}`` (over :data:`DEFAULT_OPTIONS`).

    The runs are a sweep (:mod:`nasbench_lab.sweep`): ``executor`` ``"local"`` (one after
    another in this process), an :class:`~nasbench_lab.sweep.ExecutorConfig` (a process pool, Ray),
    or a ready :class:`~nasbench_lab.sweep.Sweep` is returned by :func:`comparison_sweep` for a
    live view. ``store``: the run store the driver records the runs in (False: none; then
    nothing is read back either)."""
    sweep = comparison_sweep(methods, seeds, budget_rule=budget_rule, options_by_method=options_by_method,
                             executor=executor, store=store, progress=progress, **options)
    sweep.run()
    return comparison_of(sweep)


def comparison_sweep(methods: Sequence[str] = METHODS, seeds: Sequence[int] = (0, 1, 2), budget_rule: str = "equal",
                     options_by_method: Mapping[str, Mapping[str, Any]] | None = None, executor: Any = "local",
                     store: Any = False, progress: bool = True, benchmark: Any = None, **options: Any) -> Any:
    """The :class:`~nasbench_lab.sweep.Sweep` of :func:`compare`, not started (``.run()`` it, or
    ``.start()`` it under a :class:`~nasbench_lab.widgets.SweepView`); :func:`comparison_of`
    turns it into the :class:`Comparison`."""
    from nasbench_lab.sweep import Sweep, Task
    from nasbench_lab.sweep.spec import task_key

    unknown = [m for m in methods if m not in samplers.names()]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; valid: {', '.join(samplers.names())}")
    V.choice("budget_rule", budget_rule, BUDGET_RULES)
    by_method = dict(options_by_method or {})
    stray = sorted(set(by_method) - set(methods))
    if stray or not all(isinstance(v, Mapping) for v in by_method.values()):
        raise ValueError(f"options_by_method: expected {{method: {{option: value}}}} for methods being compared "
                         f"({', '.join(methods)}), got {by_method!r} (e.g. {{\"mcts-learned\": {{\"warmup\": 0.2}}}})")
    shared = options.pop("method_options", None) or {}
    for method in methods:  # every method's options checked before the first trains
        samplers.check_options(method, {**DEFAULT_OPTIONS.get(method, {}), **shared, **by_method.get(method, {})},
                               f"options of {method}")
    if methods and seeds:  # the trainer's own checks (data, rank_images, ...) before any run starts
        m0 = methods[0]
        Trainer(space=options.get("space", "pooling"), dataset=options.get("dataset", "digits"), method=m0,
                method_options={**DEFAULT_OPTIONS.get(m0, {}), **shared, **by_method.get(m0, {})}, steps=1,
                seed=int(seeds[0]), rank_at_end=False,
                **{k: v for k, v in options.items() if k not in ("space", "dataset", "steps")})
    truth = None
    if benchmark is not None:  # tasks carry plain data: the benchmark by name
        truth = (getattr(benchmark.space, "name", benchmark.space), benchmark.dataset)
    tasks = []
    for method in methods:
        method_options = {**shared, **by_method.get(method, {})}
        for seed in seeds:
            args = {"method": method, "seed": int(seed), "method_options": method_options,
                    "budget_rule": budget_rule, "truth": truth, **options}
            tasks.append(Task(task_key("cmp", f"{method}-s{int(seed)}", args),
                              "nasbench_lab.training.samplers.compare:sweep_task", args, name=f"{method} seed {seed}"))
    return Sweep(tasks, executor, store=store, name="compare-samplers", progress=progress,
                 log=progress_write if progress else None)


def comparison_of(sweep: Any) -> Comparison:
    """The :class:`Comparison` of a finished comparison sweep (failed runs are left out of the
    table; ``sweep.failed`` says why)."""
    rows = list(sweep.results.values())
    table = pd.DataFrame([{k: (np.nan if v is None and k in _NUMERIC else v) for k, v in r.items()
                           if not k.startswith("_")} for r in rows])
    return Comparison(table, {(r["method"], r["seed"]): r["_windows"] for r in rows},
                      {(r["method"], r["seed"]): _ranking_frame(r["_ranking"]) for r in rows}, dict(sweep.failed))


#: the table's number columns (a missing value travels as None, is NaN in the table)
_NUMERIC = ("kendall_tau", "kendall_tau_top10", "spearman", "selected_truth_rank", "method_pick_truth_rank")


def budget_notes(df: pd.DataFrame | Comparison) -> list[str]:
    """How to read a table's budgets, one sentence per finding: the rule, and each method whose
    ranked supernet trained on fewer steps than the run had, shared them among several
    supernets, or summed several paths per update. Tables written before these columns get none."""
    df = df.table if isinstance(df, Comparison) else df
    if df is None or df.empty or "budget_rule" not in df:
        return []
    notes = []
    for rule in df["budget_rule"].dropna().unique():
        if rule == "per-model":
            notes.append("budget rule per-model: each supernet trains the base steps (a mixture of M supernets "
                         "M times as many; thesis §2.4: epochs proportional to the number of models)")
        else:
            notes.append(f"budget rule {rule}: every method trains the same number of steps (equal compute)")
    first = df.groupby("method", sort=False).first()
    for method, r in first.iterrows():
        steps, own = int(r["steps"]), int(r.get("supernet_steps", r["steps"]))
        if own < steps:
            notes.append(f"{method}: its ranked supernet trained from fresh weights on the last {own} of {steps} steps "
                         f"({own / steps:.0%}; the method restarts its supernet after its warm-up, e.g. Alg. 3.1 line "
                         f"24); set the warm-up share with --options '{{\"{method}\": {{\"warmup\": 0.2}}}}'")
        sets = int(r.get("weight_sets", 1))
        if sets > 1:
            notes.append(f"{method}: {sets} supernets share {steps} steps (about {steps // sets} each)"
                         + ("; --budget-rule per-model gives each the base steps (thesis §2.4)"
                            if r.get("budget_rule") == "equal" else ""))
        m = int(r.get("paths_per_update", 1))
        if m > 1:
            notes.append(f"{method}: sums {m} paths into each optimizer step ({-(-own // m)} updates in {own} steps)")
    return notes


def summarize(df: pd.DataFrame | Comparison) -> pd.DataFrame:
    """Mean and standard deviation over seeds, one row per method (in the order of ``df``)."""
    df = df.table if isinstance(df, Comparison) else df
    cols = ["kendall_tau", "kendall_tau_top10", "selected_truth_rank", "method_pick_truth_rank", "train_s", "rank_s"]
    g = df.groupby("method", sort=False)[cols]
    out = g.mean().round(3).add_suffix("_mean").join(g.std().round(3).add_suffix("_std"))
    out["seeds"] = df.groupby("method", sort=False).size()
    # the budget each method had (constant over seeds), where the table records it
    budget = [c for c in ("budget_rule", "steps", "supernet_steps") if c in df]
    first = df.groupby("method", sort=False)[budget].first()
    stats = [c for pair in zip([f"{c}_mean" for c in cols], [f"{c}_std" for c in cols]) for c in pair]
    return first.join(out[stats + ["seeds"]])[budget + stats + ["seeds"]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="pooling", help="search space (default: pooling)")
    parser.add_argument("--dataset", default="digits", help="training data (default: digits)")
    parser.add_argument("--data-root", default=None, help="folder with the CIFAR python batches (for cifar10/cifar100)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help="samplers, by spaces or commas (default: the thesis' set and enas)")
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"], help="seeds, by spaces or commas (default: 0 1 2)")
    parser.add_argument("--steps", type=T.positive_int("300"), default=300,
                        help="training steps per run (the base budget of --budget-rule)")
    parser.add_argument("--budget-rule", choices=BUDGET_RULES, default="equal",
                        help="equal: every method trains --steps (equal compute); per-model: --steps per supernet, "
                             "so a mixture of M trains M x --steps (thesis §2.4)")
    parser.add_argument("--options", default=None,
                        help="sampler options per method as JSON, e.g. '{\"mcts-learned\": {\"warmup\": 0.2}, "
                             "\"mixture\": {\"models\": 8, \"ipf_max_iter\": 20000}}'")
    parser.add_argument("--batch-size", type=T.positive_int("64"), default=64)
    parser.add_argument("--val-batch-size", type=T.positive_int("128"), default=128)
    parser.add_argument("--rank-images", type=T.positive_int("256"), default=None,
                        help="validation images per architecture when ranking")
    parser.add_argument("--truth-dataset", default=None,
                        help="ground truth from another dataset's benchmark (e.g. cifar10) when none exists for --dataset")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--csv", "--out", dest="csv", default=None, help="also write the per-run table to this CSV file")
    parser.add_argument("--store", default=None,
                        help="run store the runs are recorded in (default: the workspace's); a run finished there "
                             "before is read back, not trained again")
    add_executor_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from nasbench_lab.cli import flat_list
    from nasbench_lab.runs import RunStore
    from nasbench_lab.sweep import executor_from_args

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
    by_method = V.json_object("--options", args.options, '{"mcts-learned": {"warmup": 0.2}}') if args.options else {}
    res = compare(methods, seeds, space=args.space, dataset=args.dataset, steps=args.steps, benchmark=bench,
                 rank_images=args.rank_images, batch_size=args.batch_size, val_batch_size=args.val_batch_size,
                 device=args.device, budget_rule=args.budget_rule, options_by_method=by_method,
                 executor=executor_from_args(args), store=RunStore(args.store),
                 **({"data_root": args.data_root} if args.data_root else {}))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summarize(res).to_string())
    for note in res.notes:
        print(f"note: {note}")
    for key, why in res.failed.items():
        print(f"failed: {key}: {why.strip().splitlines()[-1] if why.strip() else why}")
    return 0 if V.write_table("--csv", res.table, args.csv) and not res.failed else 1
