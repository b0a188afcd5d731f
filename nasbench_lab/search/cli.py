"""``nasbench-lab search``: compare black-box strategies on a benchmark over seeds.

Wired by the main CLI as a plug-in: ``add_arguments(parser)`` fills the sub-command's parser and
``main(args)`` runs it. Prints the regret table; with ``--json`` prints one JSON record per
(strategy, seed) with the best accuracy after each query instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nasbench_lab import validation as V
from nasbench_lab.sweep.spec import add_executor_arguments, executor_from_args
from nasbench_lab.validation import cli as T


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="search space (default nb201)")
    parser.add_argument("--dataset", default="cifar10", help="benchmark column (nb201: cifar10, cifar100, imagenet16-120)")
    parser.add_argument("--strategy", "--strategies", dest="strategy", action="extend", nargs="+", default=None,
                        help="strategies by spaces or commas, repeatable (random, rea, ls, reinforce, bo, boltzmann, "
                             "mcts, hyperband); default: random,rea,ls")
    parser.add_argument("--budget", type=T.positive_int("300"), default=300, help="queries per search (default 300)")
    parser.add_argument("--seeds", type=T.positive_int("10"), default=10, help="number of seeds 0..N-1 (default 10)")
    parser.add_argument("--evaluator", default="benchmark", help="benchmark (default), proxy, training")
    parser.add_argument("--data", default=None,
                        help="images for the proxy/training evaluators: digits, cifar10, cifar100 (default: --dataset "
                             "when --data-root is given, else digits)")
    parser.add_argument("--data-root", help="folder with the CIFAR python batches (for --data cifar10/cifar100)")
    parser.add_argument("--fidelities", help="comma list of simulated fidelities for the benchmark evaluator "
                                             "(e.g. 22,66,200; needed by hyperband on a table)")
    parser.add_argument("--options", help='strategy options as JSON, e.g. \'{"rea": {"population_size": 50}}\'')
    parser.add_argument("--json", action="store_true", help="print JSON records (strategy, seed, best after each query)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="a progress bar on stderr (--no-progress: none)")
    parser.add_argument("--csv", default=None,
                        help="also write every query (strategy, seed, query, best so far, regret, time) to this CSV")
    parser.add_argument("--objectives", help="multi-objective search, e.g. acc,flops (acc,params, acc,latency): "
                                             "hypervolume table instead of regret; default strategies random,nsga2")
    add_executor_arguments(parser)


def build_arena(args: argparse.Namespace) -> Any:
    from nasbench_lab.search.arena import Arena

    strategies = args.strategy or ["random,rea,ls"]
    ev_opts: dict[str, Any] = {}
    if args.fidelities:
        try:
            ev_opts["fidelities"] = [V.positive_number("--fidelities", float(f))
                                     for f in args.fidelities.split(",") if f.strip()]
        except ValueError:
            raise ValueError(f"--fidelities: expected a comma list of numbers such as 22,66,200, got {V.shorten(args.fidelities)}") from None
    data_name = getattr(args, "data", None)
    data_root = getattr(args, "data_root", None)
    if data_name or data_root:
        from nasbench_lab import data as data_mod

        if args.evaluator not in ("proxy", "training"):
            raise ValueError(f"--data/--data-root: only the proxy and training evaluators read images, not "
                             f"--evaluator {args.evaluator} (e.g. --evaluator proxy --data cifar10 --data-root DIR)")
        data_name = data_name or (args.dataset if args.dataset in data_mod.names() else "digits")
        if data_name not in data_mod.names():
            raise ValueError(f"--data: unknown {V.shorten(data_name)}; valid: {', '.join(data_mod.names())} (e.g. --data cifar10)")
        ev_opts["data"] = data_name
        if data_root:
            ev_opts["data_root"] = data_root
    opts = None
    if args.options is not None:
        opts = V.json_object("--options", args.options, '{"rea": {"population_size": 50}}')
        if not all(isinstance(v, dict) for v in opts.values()):
            raise ValueError("--options: expected a JSON object of strategy -> options, e.g. '{\"bo\": {\"n_init\": 20}}'")
    return Arena(args.space, args.dataset, strategies, seeds=args.seeds, budget=args.budget,
                 evaluator=args.evaluator, evaluator_options=ev_opts, strategy_options=opts)


def main_multiobjective(args: argparse.Namespace) -> int:
    import pandas as pd

    from nasbench_lab.search.multiobjective import ParetoArena

    if args.executor != "local" or args.workers != 1:
        raise ValueError("--executor/--workers: a multi-objective search (--objectives) runs in this process; "
                         "leave them out")
    opts = V.json_object("--options", args.options, '{"nsga2": {"population_size": 20}}') if args.options else None
    arena = ParetoArena(args.space, args.dataset, args.strategy or ["random,nsga2"], seeds=args.seeds,
                        budget=args.budget, objectives=args.objectives, strategy_options=opts)
    arena.run(progress=args.progress)
    if args.json:
        for (strategy, seed), (_, gaps) in arena.hv_series().items():
            print(json.dumps({"strategy": strategy, "seed": seed, "space": args.space, "dataset": args.dataset,
                              "objectives": args.objectives, "true_hv": arena.true_hv,
                              "hv_gap": [float(g) for g in gaps],
                              "front": arena.points(strategy, seed).query("on_front")["arch"].tolist()}))
        return 0
    print(f"{args.space}/{args.dataset} objectives {args.objectives}: {len(arena.seeds)} seeds x {arena.budget} "
          f"queries; true front {int(arena.table_front['on_front'].sum())} architectures, "
          f"hypervolume {arena.true_hv:.4f} (objectives scaled to [0, 1], reference (1, ..., 1))")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(arena.hv_table().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def main(args: argparse.Namespace) -> int:
    import pandas as pd

    if getattr(args, "objectives", None):
        if getattr(args, "csv", None):  # it would be ignored without a word
            raise ValueError("--csv: not written by a multi-objective search (--objectives): its hypervolume table is "
                             "printed (--json gives every front); leave --csv out")
        return main_multiobjective(args)
    if getattr(args, "csv", None):
        V.output_file("--csv", args.csv)  # before the work: a bad path must not lose the results
    arena = build_arena(args)
    arena.run(progress=args.progress, executor=executor_from_args(args))
    if args.json:
        df = arena.results()
        for (strategy, seed), sub in df.groupby(["strategy", "seed"], sort=False):
            rec = {"strategy": strategy, "seed": int(seed), "space": args.space, "dataset": args.dataset,
                   "optimum": arena.optimum, "best": [float(v) for v in sub["best_so_far"]],
                   "regret": [float(v) for v in sub["regret"]], "sim_time": [float(v) for v in sub["sim_time"]],
                   "best_arch": sub["incumbent"].iloc[-1]}
            print(json.dumps(rec))
        return 0 if V.write_table("--csv", df, getattr(args, "csv", None)) else 1
    table = arena.regret_table()
    ref = arena.reference()
    head = f"{args.space}/{args.dataset}: {len(arena.seeds)} seeds x {arena.budget} queries, optimum {arena.optimum:.2f}"
    if ref is not None:
        head += f"; random search expects regret {ref['regret'].iloc[-1]:.3f} (exact)"
    print(head)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    sys.stdout.flush()
    return 0 if V.write_table("--csv", arena.results(), getattr(args, "csv", None)) else 1
