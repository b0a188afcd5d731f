"""``nasbench-lab proxies``: zero-cost proxies of N architectures on one real batch, against the table.

    nasbench-lab proxies --space nb201 --dataset cifar10 --data-root DIR --archs 1000 [--proxies ...]
                         [--network reference]

Scores ``--archs`` architectures drawn without replacement from the space's benchmark (seeded),
every proxy from one model build per architecture (:func:`nasbench_lab.proxies.score_all`), on the
first ``--batch-size`` training images of ``--dataset`` (Abdelfattah et al. 2021 use one random
training batch of 64). A progress bar shows the rate; the CSV (``arch``, ``truth``, one column per
proxy, ``seconds``) is rewritten atomically every few architectures, so ``--resume`` continues an
interrupted run. At the end it prints Spearman and Kendall per proxy against the table.

Draw the proxy-vs-truth view from the CSV in a notebook::

    import pandas as pd
    from nasbench_lab.viz.search import proxy_figure
    proxy_figure(pd.read_csv(path))
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_lab import validation as V
from nasbench_lab.validation import cli as T

DEFAULT_PROXIES = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacov", "naswot", "params", "flops")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nb201", help="a space with a benchmark table (nb201, nbmacro, pooling...)")
    parser.add_argument("--dataset", default="digits", help="images of the scoring batch: digits, cifar10, cifar100")
    parser.add_argument("--data-root", help="folder with the CIFAR python batches (cifar-10-batches-py/)")
    parser.add_argument("--benchmark-dataset", default=None,
                        help="the table's dataset column (default: --dataset when the space has it, else its first)")
    parser.add_argument("--archs", type=int, default=100, help="architectures to score (default 100)")
    parser.add_argument("--proxies", nargs="+", default=list(DEFAULT_PROXIES),
                        help="proxies, by spaces or commas (default: all seven plus params and flops)")
    parser.add_argument("--batch-size", type=int, default=64, help="images in the scoring batch (default 64)")
    parser.add_argument("--network", default="space",
                        help="space: the space's own network (default); reference: NB-201 as the zero-cost proxies' "
                             "reference code builds it (conv bias, BN without affine), on which the published table "
                             "was computed")
    parser.add_argument("--seed", type=T.seed(), default=0, help="architecture sample, model initialisation, data split")
    parser.add_argument("--csv", help="where to write the table (default: <workspace>/proxies/<space>_<dataset>_<N>.csv)")
    parser.add_argument("--resume", action="store_true", help="continue from the rows already in --csv")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    parser.add_argument("--save-every", type=int, default=10, help="rewrite the CSV every this many architectures")


def _check(args: argparse.Namespace) -> list[str]:
    from nasbench_lab import data, proxies
    from nasbench_lab.cli import flat_list

    names = flat_list(args.proxies, str, "--proxies")
    bad = [n for n in names if n not in proxies.names()]
    if bad or not names:
        raise ValueError(f"--proxies: unknown {bad or '(none given)'}; valid: {', '.join(proxies.names())} "
                         "(e.g. --proxies synflow naswot)")
    if args.archs < 2:
        raise ValueError(f"--archs: expected at least 2 architectures to correlate, got {args.archs} (e.g. --archs 1000)")
    if args.batch_size < 2:
        raise ValueError(f"--batch-size: expected at least 2 images, got {args.batch_size} (e.g. --batch-size 64)")
    if args.save_every < 1:
        raise ValueError(f"--save-every: expected a positive number of architectures, got {args.save_every}")
    if args.dataset not in data.names():
        raise ValueError(f"--dataset: unknown {args.dataset!r}; valid: {', '.join(data.names())} (e.g. --dataset cifar10)")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise FileNotFoundError(f"--data-root: {args.data_root} is not a folder; give the folder that holds "
                                "cifar-10-batches-py/ (e.g. --data-root ~/data)")
    if args.network not in proxies.NETWORKS:
        raise ValueError(f"--network: unknown {args.network!r}; valid: {', '.join(proxies.NETWORKS)} "
                         "(e.g. --network reference)")
    if args.resume and not args.csv:
        raise ValueError("--resume: needs --csv, the table to continue (e.g. --csv runs/nb201.csv --resume)")
    return list(dict.fromkeys(names))


def _benchmark(space: str, dataset: str, column: str | None) -> Any:
    from nasbench_lab import benchmarks
    from nasbench_lab.search.evaluators import get_benchmark

    have = benchmarks.datasets(space)
    if not have:
        raise ValueError(f"--space: {space!r} has no benchmark table to correlate with; spaces with one: "
                         f"{', '.join(sorted({s for s, _ in benchmarks.available()}))}")
    return get_benchmark(space, column or (dataset if dataset in have else have[0]))


def _save(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)  # readers never see a half-written table


def summary_table(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Spearman, Kendall and mean seconds per architecture of each proxy column of ``df``."""
    from nasbench_lab import proxies

    corr = proxies.correlations(df, names)
    return pd.DataFrame([{"proxy": n, "spearman": corr[n]["spearman"], "kendall": corr[n]["kendall"]} for n in names])


def main(args: argparse.Namespace) -> int:
    from nasbench_lab import config, data, proxies, spaces
    from nasbench_lab.progress import progress as tqdm

    names = _check(args)
    sp = spaces.get(args.space)
    proxies._check_network(args.network, sp)  # before the data loads: reference is NB-201's only
    bench = _benchmark(sp.name, args.dataset, args.benchmark_dataset)
    # every input and the output path before the work: a bad --csv must not cost the scores
    path = V.output_file("--csv", args.csv) if args.csv else \
        config.workspace() / "proxies" / f"{sp.name}_{args.dataset}_{args.archs}.csv"
    chosen = proxies._archs(sp, bench, args.archs, args.seed)
    dev = config.device(args.device)
    t_load = time.perf_counter()
    bundle = data.get(args.dataset, root=args.data_root, seed=args.seed)
    (x, y), ncls = proxies.as_batch(bundle, args.batch_size)
    batch = (x.to(dev), y.to(dev))
    t_load = time.perf_counter() - t_load
    rows: list[dict[str, Any]] = []
    if args.resume and path.is_file():
        old = pd.read_csv(path)
        missing = [c for c in ("arch", "truth", *names) if c not in old.columns]
        if missing:
            raise ValueError(f"--resume: {path} lacks the columns {missing}; start a new --csv")
        rows = old.to_dict("records")
    done = {r["arch"] for r in rows}
    todo = [a for a in chosen if str(a) not in done]
    note = f"; {len(done)} already in {path}" if done else ""
    print(f"nasbench-lab proxies: {len(chosen)} {sp.name} architectures (seed {args.seed}) x {len(names)} proxies "
          f"on {len(y)} {args.dataset} training images ({ncls} classes, loaded in {t_load:.1f} s), truth: "
          f"{bench.space}/{bench.dataset}{note}", file=sys.stderr)
    t0 = time.perf_counter()
    columns = ["arch", "truth", *names, "seconds"]
    for i, a in enumerate(tqdm(todo, desc="scoring", unit="arch")):
        t1 = time.perf_counter()
        vals = proxies.score_all(names, sp, a, batch, seed=args.seed, num_classes=ncls, network=args.network)
        rows.append({"arch": str(a), "truth": float(bench.query(a)), **vals, "seconds": time.perf_counter() - t1})
        if (i + 1) % args.save_every == 0:
            _save(pd.DataFrame(rows, columns=columns), path)
    df = pd.DataFrame(rows, columns=columns)
    _save(df, path)
    wall = time.perf_counter() - t0
    table = summary_table(df, names)
    with pd.option_context("display.width", 120):
        print(table.to_string(index=False, float_format=lambda v: f"{v:+.3f}"))
    secs = df["seconds"].to_numpy(float)
    print(f"\n{len(df)} architectures, batch {len(y)}, seed {args.seed}: {wall:.0f} s this run, "
          f"{np.mean(secs):.2f} s per architecture for all {len(names)} proxies; table in {path}")
    return 0
