"""``nasbench-lab interference``: train a uniform supernet (or load a run) and measure how its
children's gradients agree (see :mod:`nasbench_lab.training.interference`)."""

from __future__ import annotations

import argparse
import time

import pandas as pd

from nasbench_lab import validation as V
from nasbench_lab.validation import cli as T


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--space", default="pooling")
    s.add_argument("--dataset", default="digits")
    s.add_argument("--data-root", help="folder with CIFAR python batches")
    s.add_argument("--steps", type=T.positive_int("500"), default=500, help="uniform supernet training steps")
    s.add_argument("--run", dest="run_id", help="measure a stored run's supernet instead of training one")
    s.add_argument("--store", help="SQLite run store for --run (default: <workspace>/runs.sqlite)")
    s.add_argument("--archs", type=T.positive_int("24"), default=24, help="architectures measured (K)")
    s.add_argument("--arch", nargs="+", help="measure these architectures instead (canonical strings)")
    s.add_argument("--images", type=T.positive_int("64"), default=64, help="training images in the measured batch")
    s.add_argument("--scope", default="auto", choices=("auto", "all", "searched"),
                   help="groups compared: searched candidate ops, all shared groups, or auto (searched where any)")
    s.add_argument("--method", default="uniform", help="the sampler that trains the supernet (e.g. mixture)")
    s.add_argument("--options", help="sampler options as JSON, e.g. '{\"models\": 4}'")
    s.add_argument("--batch-size", type=T.positive_int("64"), default=64)
    s.add_argument("--lr", type=T.positive_number("0.05"))
    s.add_argument("--seed", type=T.seed(), default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--csv", help="write one row per pair to this CSV")


def main(args: argparse.Namespace) -> int:
    from nasbench_lab.training import interference as I

    if args.csv:
        V.output_file("--csv", args.csv)  # a bad path fails now, not after the training
    if args.run_id is not None:
        from nasbench_lab.exporter import _load_run
        from nasbench_lab.runs.store import RunStore

        V.run_id(args.run_id)
        trainer, _ = _load_run(args.run_id, RunStore(args.store) if args.store else None)
        print(f"run {args.run_id}: {trainer!r}")
    else:
        from nasbench_lab.training import Trainer

        opts = V.json_object("--options", args.options, '{"models": 4}') if args.options else {}
        kw = {"lr": args.lr} if args.lr is not None else {}
        trainer = Trainer(space=args.space, dataset=args.dataset, data_root=args.data_root, method=args.method,
                          method_options=opts, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                          device=args.device, rank_at_end=False, **kw)
        from nasbench_lab.progress import progress as tqdm

        t0 = time.perf_counter()
        for _ in tqdm(range(args.steps), desc=f"{args.method} supernet", unit="step", mininterval=5):
            trainer.step()
        print(f"trained {args.steps} steps of a {args.method} supernet on {args.space}/{args.dataset} "
              f"in {time.perf_counter() - t0:.0f} s")
    archs = args.arch if args.arch else I.spread_archs(trainer.space, args.archs, seed=args.seed)
    res = I.measure_trainer(trainer, archs, images=args.images, scope=args.scope)
    s = res.summary()
    print(f"\n{res.k} architectures, {s['pairs']} pairs ({s['sharing_pairs']} share a group in scope "
          f"'{res.scope}'), {res.k} forward/backward passes in {res.seconds:.1f} s")
    print("\ncosine vs distance (" + ("Hamming: differing decisions" if trainer.space._is_product
                                      else "the space's distance") + "):")
    _table(res.by_distance(), "{:+.3f}")
    print("\nper layer (cosine on its shared groups; negative: fraction of pairs pulling apart):")
    _table(res.by_layer(), "{:+.3f}")
    print(f"\nmean cosine {s['mean_cosine']:+.3f}, negative in {s['negative_fraction']:.0%} of the pairs, "
          f"conflict {s['conflict']:.4f}")
    pairs = res.pairs()
    if hasattr(trainer.space, "levels"):
        print("\nlayers run at the same vs different resolutions by the two children (thesis Fig. 2.3):")
        _table(I.resolution_split(pairs, trainer.space), "{:+.3f}")
    if args.csv:
        V.write_table("--csv", pairs, args.csv)
        print(f"\nwrote {len(pairs)} pairs to {args.csv}")
    return 0


def _table(df: pd.DataFrame, fmt: str) -> None:
    with pd.option_context("display.max_rows", 200, "display.width", 160):
        print(df.to_string(index=False, float_format=lambda v: fmt.format(v)))
