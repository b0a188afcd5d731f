"""Every ``nasbench-lab`` command line in the README and in the notebooks parses with the real
argument parser and runs (issue 14, item 11).

Cheap by changing budgets only: after the real parser has accepted the documented line, the
parsed arguments that set *how much* work is done (steps, epochs, queries, seeds, batch and
ranking sizes, DARTS network width, how many architectures ``groundtruth`` trains) are shrunk in
the Namespace, and the command's own function runs on the rest exactly as documented (space,
method, dataset, options, flags). ``lab`` (it opens JupyterLab) and ``bench`` (run with its budget
flags by ``test_cli.py::test_bench_json_smoke``) are only parsed here.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import nbformat
import pytest

from nasbench_lab.cli import _repeated_flags, build_parser

ROOT = Path(__file__).resolve().parent.parent


def _readme_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip().startswith("nasbench-lab")]
    return lines + re.findall(r"`(nasbench-lab [^`]+)`", text)


def _notebook_lines() -> list[str]:
    out = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            out += re.findall(r"`(nasbench-lab[^`]*)`", cell.source)
            out += [m.strip() for m in re.findall(r"^\s*!\s*(nasbench-lab.*)$", cell.source, re.M)]
    return out


def _argvs(line: str) -> list[list[str]]:
    """``nasbench-lab bench [--json]``: an optional part gives the line with and without it."""
    argv = shlex.split(line, comments=True)[1:]
    optional = [a for a in argv if a.startswith("[-") and a.endswith("]")]
    plain = [a for a in argv if a not in optional]
    return [plain] + ([plain + [a[1:-1] for a in optional]] if optional else [])


COMMANDS = sorted({" ".join(shlex.quote(a) for a in argv) for line in _readme_lines() + _notebook_lines()
                   for argv in _argvs(line)})


def test_the_docs_have_the_commands():
    names = {shlex.split(c)[0] for c in COMMANDS}
    assert {"spaces", "show", "demo", "groundtruth", "run", "compare-samplers", "darts", "search", "runs", "bench"} <= names
    assert any(c.startswith("search ") and "--strategies" in c for c in COMMANDS)


def _cheap(args: argparse.Namespace, tmp: Path) -> None:
    """Shrink only the budget of a parsed command (see the module docstring); files a command
    writes go to ``tmp``."""
    cmd = args.command
    first_seed = lambda v: [str(v[0]).split(",")[0]] if isinstance(v, list) else v  # noqa: E731
    if cmd == "run":
        from nasbench_lab import methods

        args.steps, args.batch_size = 3, 8
        args.seed = first_seed(args.seed)
        if args.method in methods.differentiable_names():
            opts = json.loads(args.options) if args.options else {}
            args.options = json.dumps({**opts, "channels": 2, "cells": 1, "hessian_every": 0})
        else:
            args.rank_images = 16
            if args.rank_every:
                args.rank_every = 2
    elif cmd == "compare-samplers":
        args.steps, args.batch_size, args.val_batch_size, args.rank_images = 2, 8, 8, 8
        args.seeds = first_seed(args.seeds)
        if args.methods == build_parser().parse_args([cmd]).methods:  # the default: every thesis sampler
            args.methods = ["uniform", "mcts"]
    elif cmd == "darts":
        args.steps, args.batch_size, args.channels, args.cells, args.hessian_every = 2, 4, 2, 1, 0
        args.seeds = first_seed(args.seeds)
    elif cmd == "search":
        args.budget, args.seeds = 12, 2
        if getattr(args, "data_root", None) == "DIR":  # the docs' placeholder: the embedded digits instead
            args.data, args.data_root = "digits", None
    elif cmd == "report":  # a stored run record (no training): the page is built from the store alone
        from nasbench_lab.runs import RunStore

        store = RunStore(tmp / "runs.sqlite")
        args.store, args.html = str(store.path), str(tmp / Path(args.html).name)
        args.run_id = store.create_run({"space": "pooling", "method": "uniform"}, kind="supernet")
        store.log_metrics(args.run_id, [(1, {"loss": 2.3, "reward": 0.1}), (2, {"loss": 2.1, "reward": 0.2})])
    if cmd in ("compare-samplers", "darts", "search") and getattr(args, "csv", None):
        args.csv = str(tmp / Path(args.csv).name)  # the docs' result files: never into the repository
    elif cmd == "groundtruth":  # 2 of the 36 architectures: the table is printed, not saved (item 7)
        args.epochs, args.seeds, args.batch_size, args.top, args.limit = 0.05, 1, 64, 3, 2  # one step per network
    elif cmd == "demo":
        args.epochs = 0.05  # one training step on the digits (less is an error)
        args.archs = args.archs[:2]
    elif cmd == "latency":  # one timed call per op, no whole-model check
        args.repeat, args.check = 1, 0
    elif cmd == "proxies":
        args.archs, args.batch_size = 3, 8
        if args.data_root == "DIR":  # the docs' placeholder: digits images, the table's cifar10 column kept
            args.benchmark_dataset = args.benchmark_dataset or args.dataset
            args.dataset, args.data_root = "digits", None
        if args.csv:
            args.csv = str(tmp / Path(args.csv).name)
    elif cmd == "bench":
        args.quick, args.section = True, ["trainer"]
    elif cmd == "export":  # the docs' RUN_ID: a real finished run of a few steps; files into tmp
        if args.run_id == "RUN_ID":
            from nasbench_lab.runs import Run, RunStore
            from nasbench_lab.training import Trainer

            store = RunStore(tmp / "runs.sqlite")
            job = Trainer(space="pooling", dataset="digits", steps=2, batch_size=8, rank_images=16)
            run = Run(job, store=store)
            run.start().result(timeout=600)
            args.run_id, args.store = run.run_id, str(store.path)
        args.out = str(tmp / "net")
        if args.retrain:
            args.epochs = 0.05
    elif cmd == "reproduce" and args.name:  # seconds: the tiny scale, one seed, digits for the docs' folder
        args.scale, args.seeds = "tiny", first_seed(args.seeds)
        if args.data_root in ("DIR", "~/data"):
            args.dataset, args.data_root = "digits", None
        args.out, args.store = str(tmp / "reproduce"), str(tmp / "runs.sqlite")


#: ``lab`` opens JupyterLab; ``bench --json`` with its budget flags (--quick --section trainer) runs
#: in test_cli.py::test_bench_json_smoke, so here both bench lines are only parsed
PARSE_ONLY = {"lab", "bench"}


@pytest.mark.parametrize("line", COMMANDS)
def test_documented_command_parses_and_runs(line, capsys, tmp_path):
    parser = build_parser()
    args = parser.parse_args(shlex.split(line))  # the real parser: an unknown flag fails here
    _repeated_flags(parser, args.command, shlex.split(line))  # as main() checks: no flag given twice
    if args.command in PARSE_ONLY:
        return  # parsing is the check here (see PARSE_ONLY)
    _cheap(args, tmp_path)
    code = args.func(args)
    out = capsys.readouterr().out
    assert code in (0, None), out
    assert out.strip(), f"{line!r} printed nothing"
