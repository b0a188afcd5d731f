"""Reproduce the thesis' tables: ``nasbench-lab reproduce NAME`` (and :func:`reproduce` in Python).

A table (:mod:`~nasbench_lab.reproduce.tables`) is a list of independent runs (method × seed) at a
scale (``full``: the thesis' budget; ``cpu``: a few hours on 2 cores; ``tiny``: tests). Each run
trains a supernet in a :class:`~nasbench_lab.runs.Run` (the run store holds it, checkpoints make
it resumable), then ranks the table's architectures and scores the ranking against the shipped
ground truth (:mod:`~nasbench_lab.reproduce.runner`). The table is written beside the thesis'
numbers (:mod:`~nasbench_lab.reproduce.report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasbench_lab.reproduce.runner import Diverged, RunSpec, execute, finished_seeds, plan, read_result
from nasbench_lab.reproduce.tables import TABLES, Method, Protocol, Table, get

__all__ = ["TABLES", "Diverged", "Method", "execute", "Protocol", "Reproduction", "RunSpec", "Table", "default_out", "get",
           "plan", "reproduce"]


def default_out(name: str, scale: str) -> Path:
    from nasbench_lab import config

    return config.workspace() / "reproduce" / f"{name}-{scale}"


@dataclass
class Reproduction:
    """What :func:`reproduce` did: the results it has, the runs that failed, the files it wrote."""

    table: Table
    scale: str
    results: list[dict[str, Any]]
    failed: list[tuple[RunSpec, str]] = field(default_factory=list)
    planned: int = 0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed and len(self.results) == self.planned


def reproduce(name: str, scale: str = "cpu", seeds: Sequence[int] = (0, 1, 2), out: str | Path | None = None,
              resume: bool = False, data_root: str | None = None, dataset: str | None = None, device: str = "auto",
              store: Any = None, progress: bool = True, log: Callable[[str], None] = print,
              train: bool = True, executor: Any = "local") -> Reproduction:
    """Run table ``name`` at ``scale`` over ``seeds`` (resuming what ``out`` already holds when
    ``resume``) and write it into ``out``. A failing run (diverged, raised) is reported and the
    others go on; Ctrl-C stops after writing the table of what finished. ``train=False`` writes
    the table of the runs already finished in ``out`` and runs nothing (a table still running
    elsewhere can be looked at).

    The runs are a sweep (:mod:`nasbench_lab.sweep`): ``executor`` ``"local"`` trains them one
    after another in this process (:func:`~nasbench_lab.reproduce.runner.execute`); a process
    pool or Ray (an :class:`~nasbench_lab.sweep.ExecutorConfig`) trains them in workers
    (:func:`~nasbench_lab.reproduce.runner.remote_task`) under the same run ids, checkpoints and
    result files, so a table started one way continues the other way with ``--resume``."""
    from nasbench_lab import data as data_mod
    from nasbench_lab.reproduce import report

    table = get(name)
    proto = table.protocol(scale)
    if not seeds:
        raise ValueError("--seeds: expected at least one seed (e.g. --seeds 0 1 2)")
    out = Path(out).expanduser() if out is not None else default_out(name, scale)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {str(out)!r} is a file; expected a folder for the table")
    specs = plan(table, scale, seeds, dataset=dataset, data_root=data_root, device=device)
    have = [s for s in specs if read_result(out, s) is not None]
    if not train:
        if not have:
            raise ValueError(f"--out: {str(out)!r} holds no finished run of {name} at scale {scale}; nothing to report")
        done = [r for s in specs if (r := read_result(out, s)) is not None]
        files = report.write(table, out, done, proto.describe(), scale,
                             note=_table_note(table, proto, done, len(specs), seeds))
        log(f"{len(done)}/{len(specs)} runs finished; table in {out}")
        return Reproduction(table, scale, done, [], planned=len(specs), files=files)
    if have and not resume:
        raise ValueError(f"--out: {str(out)!r} already holds {len(have)} of this table's {len(specs)} runs; pass "
                         f"--resume to continue it (finished runs are kept), or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    # the data first: a missing or damaged folder is an error now, not after the first hour
    data_mod.get(specs[0].trainer["dataset"], root=data_root, seed=0)
    log(f"{table.thesis} ({name}), scale {scale}: {len(specs)} runs ({len(have)} done); {proto.describe()}")
    results: list[dict[str, Any]] = []
    failed: list[tuple[RunSpec, str]] = []

    t0 = time.perf_counter()
    sweep = _sweep(specs, out, store, progress, log, executor)
    by_key = {s.key: s for s in specs}
    try:
        if sweep is not None:
            sweep.run()
    except KeyboardInterrupt:
        log(f"stopped; {len(sweep.results)} runs finished are kept in {out}; continue with --resume")
        raise
    finally:
        if sweep is not None:
            results.extend(sweep.results.values())
            failed.extend((by_key[key], _why(why)) for key, why in sweep.failed.items()
                          if sweep.states[key].status == "failed")
        keys = {r["key"] for r in results}
        # the table is every finished run in --out: this call's seeds and those earlier calls added
        # (``--seeds 2 --resume`` on a table of seeds 0, 1 writes a table of n=3, not of seed 2 alone)
        every = plan(table, scale, sorted({*seeds, *finished_seeds(out, scale)}), dataset=dataset)
        done = results + [r for s in every if s.key not in keys and (r := read_result(out, s)) is not None]
        if done:
            files = report.write(table, out, done, proto.describe(), scale,
                                 note=_table_note(table, proto, done, len(every), sorted({r["seed"] for r in done})))
        else:
            files = {}
    rep = Reproduction(table, scale, done, failed, planned=len(specs), files=files)
    log(f"{len(done)}/{len(specs)} runs in {time.perf_counter() - t0:.0f} s; table in {out}")
    return rep


def _table_note(table: Table, proto: Protocol, done: list[dict[str, Any]], planned: int, seeds: Sequence[int]) -> str:
    """The paragraph under a table: how many runs it holds, the budget rule and the protocol. One
    text for ``--report`` and for a training call, so re-reporting a table never drops a line."""
    rest = "" if len(done) == planned else " (the rest not finished yet)"
    per = "per weight set" if table.budget_rule == "per-model" else "per run"
    return (f"n = seeds finished per method; {len(done)} of the {planned} runs of seeds {', '.join(map(str, seeds))}"
            f"{rest}. Budget rule: {table.budget_rule} (steps {per}). Protocol: {proto.describe()}. "
            + (f"Where the thesis is silent: {proto.chosen}. " if proto.chosen else "")
            + (f"Budget: {proto.note}." if proto.note else "")).strip()


def _why(text: str) -> str:
    """The error line of a failed run's traceback (what the table's log prints)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else text
    name, sep, msg = last.partition(": ")
    return msg if sep and name.replace(".", "").replace("_", "").isalnum() else last


def _sweep(specs: list[RunSpec], out: Path, store: Any, progress: bool, log: Callable[[str], None], executor: Any) -> Any:
    from nasbench_lab.reproduce import runner
    from nasbench_lab.sweep import ExecutorConfig, Sweep, Task

    cfg = ExecutorConfig(kind=executor) if isinstance(executor, str) else executor
    todo = [s for s in specs if read_result(out, s) is None]  # finished ones are read back by the caller
    if cfg.kind == "local" and cfg.workers == 1:
        # in this process, as before: execute() trains through a Run (which records itself)
        tasks = [Task(s.key, "nasbench_lab.reproduce.runner:execute_task", {"spec": s, "out": out, "store": store,
                                                                             "progress": progress, "log": log},
                      name=f"{s.label} seed {s.seed}", records=False) for s in todo]
        rstore: Any = False
        on_result = None
    else:
        tasks = [Task(s.key, "nasbench_lab.reproduce.runner:remote_task", {"spec": s.to_dict()}, run_id=s.key,
                      name=f"{s.table}/{s.label}/seed{s.seed}") for s in todo]
        rstore = store
        by_key = {s.key: s for s in todo}

        def on_result(task: Task, res: dict[str, Any]) -> None:
            runner.keep_result(by_key[task.key], out, res)
    if not tasks:
        return None
    return Sweep(tasks, cfg, store=rstore, name=specs[0].table, on_result=on_result, log=log, progress=progress)
