"""The ``nasbench-lab`` command line."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_lab import validation as V
from nasbench_lab.sweep.spec import add_executor_arguments
from nasbench_lab.validation import cli as T  # argparse ``type=`` checks: the flag is named in the error


def _print_table(df: pd.DataFrame, floatfmt: str = "{:.2f}") -> None:
    with pd.option_context("display.max_rows", 200, "display.width", 160, "display.max_colwidth", 90):
        print(df.to_string(index=False, float_format=lambda v: floatfmt.format(v)))


def flat_list(values: Any, kind: type = str, flag: str = "--methods") -> list[Any]:
    """``--seeds 0 1 2`` and ``--seeds 0,1,2`` alike (every list flag of every sub-command).

    An empty list (``--seeds ''``) is an error naming the flag; for ``--seed``/``--seeds`` each
    value must be a seed (an integer >= 0).
    """
    items = [v.strip() for value in ([values] if isinstance(values, str | int) else values)
             for v in str(value).split(",") if v.strip()]
    shown = ' '.join(map(str, values)) if not isinstance(values, str) else values
    example = f"{flag} 0 1 2" if kind is int else f"{flag} uniform fair"
    if not items:
        raise ValueError(f"{flag}: expected at least one value, got {shown!r} (e.g. {example})")
    try:
        out = [kind(v) for v in items]
    except ValueError:
        raise ValueError(f"{flag}: expected {kind.__name__} values separated by spaces or commas, got "
                         f"{shown!r} (e.g. {example})") from None
    if kind is int and flag in ("--seed", "--seeds"):
        for v in out:
            V.seed(flag, v)
    return out


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
    df = pd.DataFrame(rows)
    if bench:
        df = df.sort_values("accuracy", ascending=False)
    shown = min(args.neighbours, len(nbrs))
    if shown == len(nbrs):
        listed = f"all {shown} listed"
    else:
        which = "none" if not shown else (f"the {shown} most accurate" if bench else f"the first {shown}")
        listed = f"{which} listed (--neighbours {len(nbrs)} lists all)"
    print(f"\n{len(nbrs)} neighbours (one decision changed), {listed}" + (":" if shown else ""))
    if shown:
        _print_table(df.head(shown))
    return 0


# ---------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    """Train a few pooling architectures for real on the embedded digits and compare."""
    from nasbench_lab import benchmarks, data, spaces
    from nasbench_lab.progress import progress as tqdm
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
def _store(path: str | None) -> Any:
    """The run store ``--store`` names (``<workspace>/runs.sqlite`` without the flag); an empty
    ``--store ''`` is an error, not the default."""
    from nasbench_lab.runs import RunStore

    if path is None:
        return RunStore()
    if not path.strip():
        raise ValueError(f"--store: expected an SQLite file path, got {path!r} (e.g. --store runs.sqlite); leave "
                         "the flag out for <workspace>/runs.sqlite")
    return RunStore(path)


def _summary_line(summary: dict[str, Any]) -> str:
    """A run's summary in the words of the README's glossary (``Kendall τ (all ranked) 0.296``)."""
    from nasbench_lab.metrics import summary_label

    def fmt(k: str, v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) and k.startswith(("kendall", "spearman")) else (
            f"{v:.4g}" if isinstance(v, float) else str(v))
    same = summary.get("selected_true_rank") == summary.get("selected_truth_rank_in_space")
    return "; ".join(f"{summary_label(k)} {fmt(k, v)}" for k, v in summary.items()
                     if not (k == "selected_true_rank" and same))  # the whole space ranked: one true rank


def cmd_run(args: argparse.Namespace) -> int:
    from nasbench_lab import methods
    from nasbench_lab.runs import Run
    from nasbench_lab.runs.progress import follow

    opts = V.json_object("--options", args.options, '{"warmup": 0.2}') if args.options is not None else {}
    seeds = flat_list(args.seed, int, "--seed")
    summaries = []
    store = _store(args.store)
    for seed in seeds:
        kwargs: dict[str, Any] = {"space": args.space, "steps": args.steps, "seed": seed, "device": args.device}
        # a flag the user gave is passed on as given (0 included: the config says what is wrong); no
        # --dataset: the method's trainer takes the space's own dataset
        for flag in ("dataset", "batch_size", "lr", "data_root", "rank_images", "rank_every", "budget"):
            if getattr(args, flag) is not None:
                kwargs[flag] = getattr(args, flag)
        if opts:
            kwargs["method_options"] = opts
        job = methods.build_job(args.method, **kwargs)
        run = Run(job, store=store, name=f"{args.space}/{args.method}/seed{seed}")
        t0 = time.perf_counter()
        try:
            with _sigterm_as_interrupt():
                run.start()
                follow(run, job.total_steps, f"{args.method} seed {seed}")
                summary = run.result()
        except KeyboardInterrupt:
            run.stop()
            print(f"\nstopped at step {job.step_count}; resume with Run.resume({str(run.checkpoint_path)!r})")
            return 130
        dt = time.perf_counter() - t0
        print(f"run {run.run_id} {run.status} in {dt:.1f} s; checkpoint {run.checkpoint_path}")
        periodic = getattr(job, "rankings", None)
        if periodic:
            print("\nKendall τ vs step (--rank-every):")
            cols = [c for c in ("step", "kendall_tau", "kendall_tau_top10", "selected_true_rank")
                    if c in periodic[0]]
            from nasbench_lab.metrics import summary_label

            table = pd.DataFrame(periodic)[cols]
            _print_table(table.rename(columns={c: summary_label(c) for c in cols if c != "step"}), "{:+.3f}")
        ranking = getattr(job, "ranking", None)
        if ranking is not None and len(ranking):
            cols = [c for c in ("arch", "estimate", "est_rank", "truth", "truth_rank") if c in ranking]
            print(f"\nranking of {len(ranking)} architectures by the supernet (top {args.top}):")
            _print_table(ranking[cols].head(args.top))
        if summary:
            shown = {k: v for k, v in summary.items() if not isinstance(v, list | dict)}
            print("summary: " + _summary_line(shown))
            summaries.append({"seed": seed, "seconds": dt, **shown})
    if len(summaries) > 1:
        df = pd.DataFrame(summaries)
        print("\nper seed:")
        _print_table(df, "{:.4f}")
        num = df.select_dtypes("number").drop(columns=["seed"])
        print("mean ± std: " + ", ".join(f"{c}={num[c].mean():.4f}±{num[c].std():.4f}" for c in num))
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: stop after the current step, write a checkpoint, say how to resume."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_groundtruth(args: argparse.Namespace) -> int:
    from nasbench_lab.sweep import executor_from_args
    from nasbench_lab.training.groundtruth import build_groundtruth

    t0 = time.perf_counter()
    bench = build_groundtruth(args.space, args.dataset, epochs=args.epochs, seeds=list(range(args.seeds)),
                              batch_size=args.batch_size, device=args.device, data_root=args.data_root,
                              limit=args.limit, overwrite=args.overwrite, lr=args.lr, optimizer=args.optimizer,
                              executor=executor_from_args(args))
    df = bench.frame().sort_values("acc", ascending=False)
    _print_table(df.head(args.top))
    best, acc = bench.optimum
    print(f"\n{len(df)} architectures x {args.seeds} seed(s) x {args.epochs:g} epoch(s) in "
          f"{time.perf_counter() - t0:.0f} s; best {best} {acc:.2f} %")
    agreement = bench.attrs.get("seed_agreement")
    if agreement:
        print(f"seed agreement (the ceiling of any ranking against this table): Kendall tau "
              f"{agreement['kendall_tau']:.3f}, Spearman {agreement['spearman']:.3f} over {agreement['n']} architectures")
    if bench.attrs.get("saved"):
        print(f"saved to {bench.path}")
        if bench.attrs.get("replaced"):
            print(f"WARNING: {bench.attrs['replaced']}", file=sys.stderr)
    else:
        print(f"not saved as the {args.space}/{args.dataset} benchmark: {bench.attrs['not_saved']}")
    return 0


def _run_row(config: Any, summary: Any) -> dict[str, str]:
    """method, space/dataset and Kendall τ (all ranked) of one stored run, from its JSON records
    (a damaged or foreign record shows blanks, never stops the listing)."""
    def load(text: Any) -> dict[str, Any]:
        try:
            value = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    cfg, summ = load(config), load(summary)
    method = cfg.get("method") or cfg.get("strategies") or cfg.get("methods") or ""
    if isinstance(method, list):
        method = ",".join(map(str, method))
    method = str(method)
    space = "/".join(str(cfg[k]) for k in ("space", "dataset") if cfg.get(k))
    tau = summ.get("kendall_tau")
    return {"method": method if len(method) <= 18 else method[:17] + "…", "space": space,
            "τ (all ranked)": f"{tau:+.3f}" if isinstance(tau, int | float) and tau == tau else ""}


def cmd_runs(args: argparse.Namespace) -> int:
    store = _store(args.store)
    df = store.runs()
    if df.empty:
        print(f"no runs yet in {store.path}")
        return 0
    df = df.head(args.limit).copy()
    extra = pd.DataFrame([_run_row(c, s) for c, s in zip(df["config"], df["summary"])], index=df.index)
    df = pd.concat([df, extra], axis=1)
    df["progress"] = df["step"].astype(str) + "/" + df["total_steps"].astype(str)
    df["started (UTC)"] = df["created"].dt.strftime("%Y-%m-%d %H:%M").fillna("")
    ended = df["status"].isin(["interrupted", "stopped", "failed"])
    cols = ["id", "method", "space", "status", "progress", "τ (all ranked)", "started (UTC)"]
    with pd.option_context("display.max_rows", 500, "display.width", 200):
        print(df[cols].to_string(index=False))
    print("τ (all ranked): Kendall τ of the supernet order against the ground truth")
    print("(README, \"Words used throughout\"); one run in full: nasbench-lab report ID")
    if ended.any():  # the checkpoint paths are long: one line each, under the table
        print("\nresume from (stopped, failed or interrupted runs):")
        for rid, path in zip(df.loc[ended, "id"], df.loc[ended, "resume_from"]):
            print(f"  {rid}  {path if isinstance(path, str) else 'none (no checkpoint)'}")
    if (df["status"] == "interrupted").any():
        print("\ninterrupted: the process died without recording an end (killed, or its machine went down); "
              "continue one with Run.resume('<id>')")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML handout of a stored run (see :mod:`nasbench_lab.viz.export`)."""
    from nasbench_lab.viz.export import run_report_html

    out = V.output_file("--html", args.html, example="report.html")
    store = _store(args.store)
    out.write_text(run_report_html(store, args.run_id), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opens offline)")
    return 0


# ---------------------------------------------------------------------------- bench / lab / plug-ins
def cmd_bench(args: argparse.Namespace) -> int:
    from nasbench_lab.bench import run_bench

    # with --json, stdout is the JSON object alone (json.load works on it); the table goes to stderr
    echo = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    result = run_bench(quick=args.quick, device=args.device, sections=args.section, echo=echo)
    if args.json:
        print(json.dumps(result, indent=None, default=str))
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    """Open JupyterLab on the start notebook (see :mod:`nasbench_lab.labapp`)."""
    from nasbench_lab import labapp

    return labapp.main(args.root, args.port, args.no_browser, args.jupyter_args, verbose=args.verbose)


# Feature modules that bring their own sub-command: name -> (module, help).
_PLUGINS = {
    "search": ("nasbench_lab.search.cli", "black-box search strategies on a benchmark (regret table)"),
    "compare-samplers": ("nasbench_lab.training.samplers.compare",
                         "one-shot samplers at equal budgets over seeds (Kendall tau, selected rank)"),
    "darts": ("nasbench_lab.differentiable.compare", "compare differentiable methods over seeds (derived cells, skips, eigenvalues)"),
    "latency": ("nasbench_lab.spaces.latency_cli", "per-op latency lookup table on a device, checked end to end"),
    "proxies": ("nasbench_lab.proxies.cli", "zero-cost proxies of N architectures on one batch: Spearman/Kendall vs the table"),
    "reproduce": ("nasbench_lab.reproduce.cli", "a thesis table on real data, beside the thesis' numbers (--list)"),
    "interference": ("nasbench_lab.training.interference_cli",
                     "gradient interference between a supernet's children: cosine vs distance, per layer"),
    "export": ("nasbench_lab.exporter.cli", "write a found network as arch.json + model.safetensors + plain model.py"),
}


def _port(text: str) -> int:
    try:
        return V.integer("--port", int(text), min=1, max=65535, example=8888)  # type: ignore[return-value]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port in 1..65535, got {text!r} (e.g. 8888)") from None


def build_parser(plugins: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; ``plugins``: the plug-in commands whose modules to import for their arguments
    (default all; :func:`main` imports only the one asked for, so ``nasbench-lab lab`` starts in a
    second instead of importing torch and scipy for commands it does not run)."""
    p = argparse.ArgumentParser(prog="nasbench-lab", description="Interactive NAS workbench (headless commands).")
    p.add_argument("--debug", action="store_true",
                   help="on an error, show the traceback too (anywhere before --; or NASBENCH_LAB_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("spaces", help="list the search spaces with their sizes")
    s.set_defaults(func=cmd_spaces)

    s = sub.add_parser("show", help="params, FLOPs, ground truth and neighbours of one architecture")
    s.add_argument("space")
    s.add_argument("arch", help="canonical string, e.g. '[4,3,3]' for pooling")
    s.add_argument("--dataset", help="benchmark column (nb201: cifar10, cifar100, imagenet16-120)")
    s.add_argument("--neighbours", type=T.nonnegative_int("10"), default=10, help="how many neighbours to list")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("demo", help="train a few pooling architectures on the embedded digits")
    s.add_argument("--archs", nargs="+", default=["[4,3,3]", "[7,1,2]", "[1,1,8]", "[2,4,4]"])
    s.add_argument("--epochs", type=T.positive_number("1"), default=1.0)
    s.add_argument("--device", default="auto")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("run", help="train a supernet with a one-shot sampler (or a differentiable method)")
    s.add_argument("--space", default="pooling")
    s.add_argument("--method", default="uniform")
    s.add_argument("--dataset", help="default: the space's dataset (digits; scenes for autodeeplab)")
    s.add_argument("--data-root", help="folder with CIFAR python batches")
    s.add_argument("--steps", type=T.positive_int("1000"), default=1000)
    s.add_argument("--seed", "--seeds", dest="seed", nargs="+", default=["0"],
                   help="one or more seeds, by spaces or commas (one run each)")
    s.add_argument("--batch-size", type=T.positive_int("64"))
    s.add_argument("--lr", type=T.positive_number("0.05"))
    s.add_argument("--device", default="auto")
    s.add_argument("--options", help="method options as JSON, e.g. '{\"temperature\": 0.1}'")
    s.add_argument("--store", help="SQLite run store (default: <workspace>/runs.sqlite)")
    s.add_argument("--top", type=T.nonnegative_int("15"), default=15, help="rows of the ranking table to print")
    s.add_argument("--rank-images", type=T.positive_int("256"),
                   help="validation images per architecture in the final ranking")
    s.add_argument("--rank-every", type=T.nonnegative_int("250"),
                   help="also rank the supernet every k steps (Kendall tau vs step; 0: never)")
    s.add_argument("--budget", help="sample only inside this band (thesis §3.5.4), e.g. 'flops:[0.99,1]*30M', "
                                    "'flops:[20M,30M]' or 'params<=1M'")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("report", help="one self-contained HTML page of a stored run's figures and summary")
    s.add_argument("run_id", help="a run id (`nasbench-lab runs` lists them)")
    s.add_argument("--html", required=True, help="the page to write, e.g. report.html")
    s.add_argument("--store", help="SQLite run store (default: <workspace>/runs.sqlite)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("groundtruth", help="train every architecture standalone and save a benchmark")
    s.add_argument("--space", default="pooling")
    s.add_argument("--dataset", default="digits")
    s.add_argument("--data-root")
    s.add_argument("--epochs", type=T.positive_number("3"), default=3.0)
    s.add_argument("--seeds", type=T.positive_int("2"), default=2, help="how many seeds to train each network with (0..N-1)")
    s.add_argument("--batch-size", type=T.positive_int("64"), default=64)
    s.add_argument("--lr", type=T.positive_number("0.05"), default=0.05)
    s.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    s.add_argument("--limit", type=T.positive_int("3"),
                   help="only the first N architectures (a quick look: printed, not saved as the benchmark)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace an existing table even when this build is smaller (fewer architectures, epochs or seeds)")
    s.add_argument("--device", default="auto")
    s.add_argument("--top", type=T.nonnegative_int("10"), default=10)
    add_executor_arguments(s)
    s.set_defaults(func=cmd_groundtruth)

    s = sub.add_parser("runs", help="list the runs in the run store")
    s.add_argument("--store")
    s.add_argument("--limit", type=T.positive_int("30"), default=30)
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
    s.add_argument("--port", type=_port, help="port (default: the first free one from 8888)")
    s.add_argument("--root", help="notebook folder (default: the repo's notebooks/)")
    s.add_argument("--no-browser", action="store_true", help="do not open a browser (implied without a display)")
    s.add_argument("--verbose", action="store_true",
                   help="show JupyterLab's info and warning lines too (by default only its errors)")
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


def _debug_flag(argv: list[str]) -> tuple[list[str], bool]:
    """``--debug`` anywhere before ``--`` (the arguments after it belong to JupyterLab), or
    ``NASBENCH_LAB_DEBUG=1``: errors show their traceback too."""
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end] or os.environ.get("NASBENCH_LAB_DEBUG", "") not in ("", "0")
    return [a for a in argv[:end] if a != "--debug"] + argv[end:], debug


def _repeated_flags(parser: argparse.ArgumentParser, command: str, argv: list[str]) -> None:
    """A flag that takes a value, given twice (``--steps 10 --steps 20``): argparse keeps the last
    one without a word; here it is an error naming the flag. Repeatable flags (``action="append"``
    or ``"extend"``, e.g. ``search --strategy``) and switches are not checked."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    options = sub._option_string_actions
    seen: dict[argparse.Action, list[str]] = {}
    end = argv.index("--") if "--" in argv else len(argv)
    for i, token in enumerate(argv[:end]):
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        given = token if "=" in token else " ".join(argv[i:i + 2])
        action = options.get(name)
        if action is None and sub.allow_abbrev:  # argparse takes a unique prefix: --step for --steps
            hits = {options[o] for o in options if o.startswith(name)}
            action = hits.pop() if len(hits) == 1 else None
        if action is None or action.nargs == 0 or isinstance(action, argparse._AppendAction):
            continue
        seen.setdefault(action, []).append(given)
    for action, names in seen.items():
        if len(names) > 1:
            flag = action.option_strings[0]
            how = " with all its values after it (e.g. --seeds 0 1 2)" if action.nargs in ("+", "*") else ""
            raise ValueError(f"{flag}: given {len(names)} times ({', '.join(names)}), and only the last one would "
                             f"count; give it once{how}")


def main(argv: Sequence[str] | None = None) -> int:
    """``nasbench-lab``: parse, run the command, and turn any error into one message and an exit
    code (:func:`nasbench_lab.errors.describe`: 2 bad input, 1 the work failed, 130 Ctrl-C;
    ``--debug`` adds the traceback)."""
    argv, debug = _debug_flag(list(sys.argv[1:] if argv is None else argv))
    wanted = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(plugins=[wanted] if wanted in _PLUGINS else [])
    args = parser.parse_args(argv)  # argparse's own errors: usage, message, exit 2
    try:
        _repeated_flags(parser, args.command, argv)
        t0 = time.perf_counter()
        rc = int(args.func(args) or 0)
        out = getattr(args, "csv", None)
        if rc == 0 and isinstance(out, str) and Path(out).is_file():
            from nasbench_lab import provenance  # the table says how it was made (notebooks/results/)

            provenance.write(out, argv, seconds=time.perf_counter() - t0)
        return rc
    except (Exception, KeyboardInterrupt) as exc:  # the boundary: every error becomes a message and a code
        from nasbench_lab.errors import describe

        message, code = describe(exc)
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"nasbench-lab {args.command}: {message if code == 130 else 'error: ' + message}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
