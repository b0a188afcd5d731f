"""``nasbench-lab reproduce NAME``: one of the thesis' tables, beside the thesis' numbers.

    nasbench-lab reproduce --list
    nasbench-lab reproduce table-5.1-pooling --scale cpu --seeds 0 1 2 --data-root DIR --out DIR [--resume]
"""

from __future__ import annotations

import argparse

from nasbench_lab.reproduce.tables import METRIC_LABELS, TABLES

SCALES = ("full", "cpu", "tiny")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="the table (see --list), e.g. table-5.1-pooling")
    parser.add_argument("--list", action="store_true", help="list the tables, their methods and budgets")
    parser.add_argument("--scale", default="cpu", choices=SCALES,
                        help="full: the thesis' budget; cpu: a few hours on 2 cores (default); tiny: seconds (tests)")
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"], help="seeds, by spaces or commas (default: 0 1 2)")
    parser.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py/ (or cifar-100-python/)")
    parser.add_argument("--dataset", default=None,
                        help="train on another dataset than the table's (digits: a smoke test; the ranking is still "
                             "judged against the table's CIFAR ground truth)")
    parser.add_argument("--out", default=None, help="folder for the table (default: <workspace>/reproduce/NAME-SCALE)")
    parser.add_argument("--resume", action="store_true", help="continue a table in --out: finished runs are kept")
    parser.add_argument("--report", action="store_true",
                        help="write the table of the runs already finished in --out; train nothing")
    parser.add_argument("--store", default=None, help="run store (default: the workspace's)")
    parser.add_argument("--device", default="auto")
    from nasbench_lab.sweep.spec import add_executor_arguments

    add_executor_arguments(parser)


def _short_labels(metrics: tuple[str, ...]) -> list[str]:
    """Each metric's label without its parenthesis, unless that is what tells two apart
    (Table 4.3 has "Kendall τ (true top-10)" and "Kendall τ (all ranked)")."""
    full = [METRIC_LABELS.get(m, m) for m in metrics]
    short = [f.split(" (")[0] for f in full]
    return [s if short.count(s) == 1 else f for s, f in zip(short, full)]


def list_tables() -> str:
    lines = []
    for t in TABLES.values():
        lines.append(f"{t.name:26s} {t.thesis}: {t.title}")
        lines.append(f"{'':26s} methods: {', '.join(m.label for m in t.methods)}; "
                     f"metrics: {', '.join(_short_labels(t.metrics))}")
        for scale, p in t.scales.items():
            lines.append(f"{'':26s} {scale:4s}: {p.describe()}")
        lines.append("")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from nasbench_lab.cli import flat_list
    from nasbench_lab.reproduce import reproduce
    from nasbench_lab.sweep import executor_from_args

    if args.list:
        print(list_tables())
        return 0
    if not args.name:
        raise ValueError(f"reproduce: name a table (one of {', '.join(TABLES)}) or pass --list "
                         f"(e.g. nasbench-lab reproduce table-5.1-pooling --data-root ~/data)")
    seeds = flat_list(args.seeds, int, "--seeds")
    store = None
    if args.store is not None:
        from nasbench_lab.runs import RunStore

        store = RunStore(args.store)
    rep = reproduce(args.name, scale=args.scale, seeds=seeds, out=args.out, resume=args.resume,
                    data_root=args.data_root, dataset=args.dataset, device=args.device, store=store,
                    train=not args.report, executor=executor_from_args(args))
    if rep.files:
        print()
        print(rep.files["markdown"].read_text())
        args.csv = str(rep.files["csv"])  # cli.main writes its provenance sidecar (command, commit, versions)
    for spec, why in rep.failed:
        print(f"failed: {spec.label} seed {spec.seed} ({spec.key}): {why}")
    return 0 if not rep.failed else 1

