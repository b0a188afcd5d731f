"""The ``nasbench-lab`` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd


def _print_table(df: pd.DataFrame, floatfmt: str = "{:.2f}") -> None:
    with pd.option_context("display.max_rows", 200, "display.width", 160, "display.max_colwidth", 90):
        print(df.to_string(index=False, float_format=lambda v: floatfmt.format(v)))


def flat_list(values: Any, kind: type = str, flag: str = "--methods") -> list[Any]:
    """``--seeds 0 1 2`` and ``--seeds 0,1,2`` alike (every list flag of every sub-command)."""
    items = [v.strip() for value in ([values] if isinstance(values, str | int) else values)
             for v in str(value).split(",") if v.strip()]
    try:
        return [kind(v) for v in items]
    except ValueError:
        raise ValueError(f"{flag}: expected {kind.__name__} values separated by spaces or commas, got "
                         f"{' '.join(map(str, values)) if not isinstance(values, str) else values!r} "
                         f"(e.g. {flag} 0 1 2)") from None


# ---------------------------------------------------------------------------- spaces / show
def cmd_spaces(args: argparse.Namespace) -> int:
    from nasbench_lab import benchmarks, spaces

    avail = benchmarks.available()
    rows = []
    for name in spaces.names():
        sp = spaces.get(name)
        rows.append({"space": name, "architectures": f"{sp.size:,}" if sp.size < 1e9 else f"{sp.size:.2e}",
                     "decisions": sp.num_levels, "ground truth": ", ".join(d for s, d in avail if s == name) or "-",
                     "example": sp.example if len(sp.example) < 70 else sp.example[:67] + "..."})
    _print_table(pd.DataFrame(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nasbench_lab import benchmarks, spaces

    sp = spaces.get(args.space)
    arch = sp.parse(args.arch)
    print(f"space        {sp.name}  ({sp.size:,} architectures)")
    print(f"architecture {arch}")
    if sp.canonical(arch) != arch:
        print(f"canonical    {sp.canonical(arch)}")
    print(f"params       {sp.params(arch):,}")
    print(f"FLOPs (MACs) {sp.flops(arch):,}")
    datasets = [d for s, d in benchmarks.available() if s == sp.name]
    if args.dataset:
        datasets = [args.dataset]
    bench = None
    for ds in datasets:
        b = benchmarks.get(sp.name, dataset=ds)
        bench = bench or b
        print(f"{ds:<14} accuracy {b.query(arch):.2f} %   rank {b.rank(arch)} of {len(b.table)}"
              f"   (best {b.optimum[1]:.2f})")
    nbrs = sp.neighbours(arch)
    rows = [{"neighbour": str(a), **({"accuracy": bench.query(a), "rank": bench.rank(a)} if bench else {})}
            for a in nbrs]
    print(f"\n{len(nbrs)} neighbours (one decision changed):")
    df = pd.DataFrame(rows)
    if bench:
        df = df.sort_values("accuracy", ascending=False)
    _print_table(df.head(args.neighbours))
    return 0


# ---------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    """Train a few pooling architectures for real on the embedded digits and compare."""
    from tqdm.auto import tqdm

    from nasbench_lab import benchmarks, data, spaces
    from nasbench_lab.training.standalone import train_standalone

    sp = spaces.get("pooling")
    bundle = data.get("digits")
    archs = [sp.parse(a) for a in args.archs]
    print(f"nasbench-lab demo: training {len(archs)} pooling architectures of ResNet20 on digits "
          f"({bundle.train_x.shape[0] + bundle.val_x.shape[0]} training images, {args.epochs} epoch(s) each)")
    cifar = benchmarks.get("pooling", dataset="cifar10")
    rows = []
    for a in tqdm(archs, desc="training", unit="arch"):
        r = train_standalone(sp, a, bundle, epochs=args.epochs, seed=0, device=args.device)
        rows.append({"architecture": str(a), "params": sp.params(a), "MFLOPs": sp.flops(a) / 1e6,
                     "digits test acc": r.test_acc, "seconds": r.seconds, "CIFAR-10 (table)": cifar.query(a)})
    print()
    _print_table(pd.DataFrame(rows))
    print("\nNext: `nasbench-lab lab` opens the workbench; `nasbench-lab run --space pooling --method uniform` "
          "trains a supernet.")
    return 0


# ---------------------------------------------------------------------------- run / groundtruth / runs
def _follow(run: Any, total: int, desc: str) -> None:
    """A progress bar fed from the run's event log (the training thread never waits for it)."""
    from tqdm.auto import tqdm

    seq = 0
    with tqdm(total=total, desc=desc, unit="step") as bar:
        while True:
            evs = run.events.since(seq)
            if evs:
                seq = evs[-1].seq
                steps = [e for e in evs if e.kind == "step"]
                if steps:
                    last = steps[-1]
                    bar.n = last.step
                    post = {k: f"{v:.3f}" for k, v in last.data.items() if isinstance(v, float)}
                    bar.set_postfix(post, refresh=False)
                    bar.refresh()
            if run.status in ("finished", "failed", "stopped"):
                break
            time.sleep(0.2)


def cmd_run(args: argparse.Namespace) -> int:
    from nasbench_lab import methods
    from nasbench_lab.runs import Run, RunStore

    opts = json.loads(args.options) if args.options else {}
    if not isinstance(opts, dict):
        raise ValueError(f"--options: expected a JSON object, got {args.options!r} (e.g. '{{\"warmup\": 100}}')")
    summaries = []
    store = RunStore(args.store) if args.store else RunStore()
    for seed in flat_list(args.seed, int, "--seed"):
        kwargs: dict[str, Any] = {"space": args.space, "dataset": args.dataset, "steps": args.steps, "seed": seed,
                                  "device": args.device}
        if args.batch_size:
            kwargs["batch_size"] = args.batch_size
        if args.lr:
            kwargs["lr"] = args.lr
        if opts:
            kwargs["method_options"] = opts
        if args.data_root:
            kwargs["data_root"] = args.data_root
        if args.rank_images:
            kwargs["rank_images"] = args.rank_images
        if args.rank_every:
            kwargs["rank_every"] = args.rank_every
        job = methods.build_job(args.method, **kwargs)
        run = Run(job, store=store, name=f"{args.space}/{args.method}/seed{seed}")
        t0 = time.perf_counter()
        try:
            run.start()
            _follow(run, job.total_steps, f"{args.method} seed {seed}")
            summary = run.result()
        except KeyboardInterrupt:
            run.stop()
            print(f"\nstopped at step {job.step_count}; resume with Run.resume({str(run.checkpoint_path)!r})")
            return 130
        dt = time.perf_counter() - t0
        print(f"run {run.run_id} {run.status} in {dt:.1f} s; checkpoint {run.checkpoint_path}")
        periodic = getattr(job, "rankings", None)
        if periodic:
            print("\nKendall tau vs step (--rank-every):")
            cols = [c for c in ("step", "kendall_tau", "kendall_tau_top10", "selected_true_rank")
                    if c in periodic[0]]
            _print_table(pd.DataFrame(periodic)[cols], "{:+.3f}")
        ranking = getattr(job, "ranking", None)
        if ranking is not None and len(ranking):
            cols = [c for c in ("arch", "estimate", "est_rank", "truth", "truth_rank") if c in ranking]
            print(f"\nranking of {len(ranking)} architectures by the supernet (top {args.top}):")
            _print_table(ranking[cols].head(args.top))
        if summary:
            shown = {k: v for k, v in summary.items() if not isinstance(v, list | dict)}
            print("summary: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in shown.items()))
            summaries.append({"seed": seed, "seconds": dt, **shown})
    if len(summaries) > 1:
        df = pd.DataFrame(summaries)
        print("\nper seed:")
        _print_table(df, "{:.4f}")
        num = df.select_dtypes("number").drop(columns=["seed"])
        print("mean ± std: " + ", ".join(f"{c}={num[c].mean():.4f}±{num[c].std():.4f}" for c in num))
    return 0


def cmd_groundtruth(args: argparse.Namespace) -> int:
    from nasbench_lab.training.groundtruth import build_groundtruth

    t0 = time.perf_counter()
    bench = build_groundtruth(args.space, args.dataset, epochs=args.epochs, seeds=list(range(args.seeds)),
                              batch_size=args.batch_size, device=args.device, data_root=args.data_root,
                              limit=args.limit)
    df = bench.frame().sort_values("acc", ascending=False)
    _print_table(df.head(args.top))
    best, acc = bench.optimum
    print(f"\n{len(df)} architectures x {args.seeds} seed(s) x {args.epochs} epoch(s) in "
          f"{time.perf_counter() - t0:.0f} s; best {best} {acc:.2f} %; saved to {bench.path}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from nasbench_lab.runs import RunStore

    store = RunStore(args.store) if args.store else RunStore()
    df = store.runs()
    if df.empty:
        print(f"no runs yet in {store.path}")
        return 0
    df["progress"] = df["step"].astype(str) + "/" + df["total_steps"].astype(str)
    _print_table(df[["id", "name", "kind", "status", "progress", "created"]].head(args.limit))
    return 0


# ---------------------------------------------------------------------------- bench / lab / plug-ins
def cmd_bench(args: argparse.Namespace) -> int:
    from nasbench_lab.bench import run_bench

    result = run_bench(quick=args.quick, device=args.device, sections=args.section)
    if args.json:
        print(json.dumps(result, indent=None, default=str))
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    """Open JupyterLab on the start notebook (see :mod:`nasbench_lab.labapp`)."""
    from nasbench_lab import labapp

    return labapp.main(args.root, args.port, args.no_browser, args.jupyter_args)


# Feature modules that bring their own sub-command: name -> (module, help).
_PLUGINS = {
    "search": ("nasbench_lab.search.cli", "black-box search strategies on a benchmark (regret table)"),
    "compare-samplers": ("nasbench_lab.training.samplers.compare",
                         "one-shot samplers at equal budgets over seeds (Kendall tau, selected rank)"),
    "darts": ("nasbench_lab.differentiable.compare", "compare differentiable methods over seeds (derived cells, skips, eigenvalues)"),
}


def build_parser(plugins: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; ``plugins``: the plug-in commands whose modules to import for their arguments
    (default all; :func:`main` imports only the one asked for, so ``nasbench-lab lab`` starts in a
    second instead of importing torch and scipy for commands it does not run)."""
    p = argparse.ArgumentParser(prog="nasbench-lab", description="Interactive NAS workbench (headless commands).")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("spaces", help="list the search spaces with their sizes")
    s.set_defaults(func=cmd_spaces)

    s = sub.add_parser("show", help="params, FLOPs, ground truth and neighbours of one architecture")
    s.add_argument("space")
    s.add_argument("arch", help="canonical string, e.g. '[4,3,3]' for pooling")
    s.add_argument("--dataset", help="benchmark column (nb201: cifar10, cifar100, imagenet16-120)")
    s.add_argument("--neighbours", type=int, default=10, help="how many neighbours to list")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("demo", help="train a few pooling architectures on the embedded digits")
    s.add_argument("--archs", nargs="+", default=["[4,3,3]", "[7,1,2]", "[1,1,8]", "[2,4,4]"])
    s.add_argument("--epochs", type=float, default=1.0)
    s.add_argument("--device", default="auto")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("run", help="train a supernet with a one-shot sampler (or a differentiable method)")
    s.add_argument("--space", default="pooling")
    s.add_argument("--method", default="uniform")
    s.add_argument("--dataset", default="digits")
    s.add_argument("--data-root", help="folder with CIFAR python batches")
    s.add_argument("--steps", type=int, default=1000)
    s.add_argument("--seed", "--seeds", dest="seed", nargs="+", default=["0"],
                   help="one or more seeds, by spaces or commas (one run each)")
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--device", default="auto")
    s.add_argument("--options", help="method options as JSON, e.g. '{\"temperature\": 0.1}'")
    s.add_argument("--store", help="SQLite run store (default: <workspace>/runs.sqlite)")
    s.add_argument("--top", type=int, default=15, help="rows of the ranking table to print")
    s.add_argument("--rank-images", type=int, help="validation images per architecture in the final ranking")
    s.add_argument("--rank-every", type=int, help="also rank the supernet every k steps (Kendall tau vs step)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("groundtruth", help="train every architecture standalone and save a benchmark")
    s.add_argument("--space", default="pooling")
    s.add_argument("--dataset", default="digits")
    s.add_argument("--data-root")
    s.add_argument("--epochs", type=float, default=3.0)
    s.add_argument("--seeds", type=int, default=2, help="how many seeds to train each network with (0..N-1)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--limit", type=int, help="only the first N architectures (for a quick look)")
    s.add_argument("--device", default="auto")
    s.add_argument("--top", type=int, default=10)
    s.set_defaults(func=cmd_groundtruth)

    s = sub.add_parser("runs", help="list the runs in the run store")
    s.add_argument("--store")
    s.add_argument("--limit", type=int, default=30)
    s.set_defaults(func=cmd_runs)

    s = sub.add_parser("bench", help="speed and memory against a plain PyTorch loop")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--quick", action="store_true", help="fewer steps (for CI smoke runs)")
    s.add_argument("--device", default="auto")
    s.add_argument("--section", action="append", help="only these sections (repeatable)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("lab", help="open JupyterLab on the start notebook (127.0.0.1, with a token)",
                       description="Open JupyterLab on notebooks/00_start_here.ipynb from any folder; "
                                   "arguments after -- go to JupyterLab, e.g. nasbench-lab lab -- --port 9999")
    s.add_argument("--port", type=int, help="port (default: the first free one from 8888)")
    s.add_argument("--root", help="notebook folder (default: the repo's notebooks/)")
    s.add_argument("--no-browser", action="store_true", help="do not open a browser (implied without a display)")
    s.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="after --: passed to JupyterLab as they are")
    s.set_defaults(func=cmd_lab)

    for name, (module, help_) in _PLUGINS.items():
        if plugins is not None and name not in plugins:
            sub.add_parser(name, help=help_)  # listed in --help; its module is imported when it runs
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        s = sub.add_parser(name, help=help_)
        mod.add_arguments(s)
        s.set_defaults(func=mod.main)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(plugins=[wanted] if wanted in _PLUGINS else [])
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"nasbench-lab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
