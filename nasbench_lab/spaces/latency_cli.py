"""``nasbench-lab latency``: build (or read) a space's per-op latency table on a device and check it
against end-to-end timings of whole models (a plug-in of the main CLI)."""

from __future__ import annotations

import argparse

from nasbench_lab.validation import cli as T


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="mobilenet-cifar", help="space (mobilenet, mobilenet-cifar, nbmacro, nb201)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:0")
    parser.add_argument("--batch", type=T.positive_int("1"), default=1, help="batch size of the timed forward passes (default 1)")
    parser.add_argument("--repeat", type=T.positive_int("10"), default=10, help="timed calls per unit; the fastest counts (default 10)")
    parser.add_argument("--check", type=T.nonnegative_int("20"), default=20, help="whole models timed to check the table (0: none)")
    parser.add_argument("--threads", type=T.positive_int("1"), help="torch CPU threads while timing (default: torch's)")
    parser.add_argument("--rebuild", action="store_true", help="time the units again even if a table is cached")
    parser.add_argument("--seed", type=T.seed(), default=0)


def main(args: argparse.Namespace) -> int:
    import time

    import torch

    from nasbench_lab.spaces.latency import latency_table

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads: expected a positive number of threads, got {args.threads} (e.g. --threads 1)")
        torch.set_num_threads(args.threads)
    if args.repeat < 1 or args.check < 0:
        raise ValueError(f"--repeat must be >= 1 and --check >= 0, got {args.repeat} and {args.check}")
    device = None if args.device == "auto" else args.device
    t0 = time.perf_counter()
    table = latency_table(args.space, device=device, batch=args.batch, rebuild=args.rebuild, repeat=args.repeat,
                          progress=True)
    model = table.cost_model()
    print(f"{args.space} on {table.device}, batch {table.batch}: {len(table.units)} units in "
          f"{time.perf_counter() - t0:.1f} s; table {table.path()}")
    print(f"predicted latency ranges over [{model.lower:.3f}, {model.upper:.3f}] ms (fixed part {model.base:.3f} ms)")
    if args.check:
        res = table.check(n=args.check, seed=args.seed, repeat=args.repeat, device=device, progress=True)
        print(f"end-to-end check on {res['n']} random architectures: Pearson r = {res['pearson']:.3f}, "
              f"Spearman rho = {res['spearman']:.3f}, mean |error| = {100 * res['mape']:.1f} %, "
              f"measured / predicted = {res['ratio_mean']:.2f}")
    return 0
