"""Ground-truth builder: train every architecture of a numerable space standalone, several seeds,
and save a Benchmark that the rest of the package uses like the shipped tables.

This is what makes the one-shot story (supernet ranking vs truth) work on a laptop with no
dataset download. Each finished (architecture, seed) is appended to a ``.partial.csv`` next to the
benchmark file at once, so an interrupted build loses nothing and a re-run skips what is done.
The architectures train in a seeded random order (each one's seeds side by side), so a build
stopped early holds a uniform sample of the space, every network with all its seeds.

A quick look never replaces a fuller table: a build of only some architectures (``limit``), or
with fewer epochs or seeds than the table :func:`nasbench_lab.benchmarks.get` serves now (a user
table or the packaged digits build), is returned and printed but not saved as the benchmark
unless ``overwrite=True``; why is in ``bench.attrs["not_saved"]``. Its per-network rows stay in
the ``.partial.csv`` file, so the full build later reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_lab import benchmarks, spaces
from nasbench_lab import data as data_mod
from nasbench_lab import validation as V
from nasbench_lab.benchmarks import Benchmark
from nasbench_lab.training.standalone import train_standalone


def build_groundtruth(space: str = "pooling", dataset: str = "digits", epochs: float = 3.0,
                      seeds: Sequence[int] = (0, 1), batch_size: int = 64, lr: float = 0.05,
                      device: str = "auto", data_root: str | None = None, limit: int | None = None,
                      progress: bool = True, save: bool = True, overwrite: bool = False,
                      optimizer: str = "sgd", executor: Any = "local") -> Benchmark:
    """Train every architecture (or the first ``limit``) for ``epochs`` per seed; return the table.

    Accuracy is the test-split accuracy (%) of networks trained on train+val, mean over seeds (for a
    segmentation dataset the test mIoU, %: the data's task metric).
    ``bench.attrs["saved"]`` says whether it was saved as the benchmark (see the module docstring).
    The trainings are a sweep (:mod:`nasbench_lab.sweep`) on ``executor`` (``"local"``: one after
    another in this process; an :class:`~nasbench_lab.sweep.ExecutorConfig`: a pool, Ray).
    """
    sp = spaces.get(space)
    if not sp.numerable:
        raise ValueError(f"space: {space!r} has {sp.size:.3g} architectures; the ground-truth builder "
                         f"needs a numerable space such as 'pooling' (36)")
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence | range) or not seeds:
        raise ValueError(f"seeds: expected a non-empty list of seeds, got {seeds!r} (e.g. seeds=[0, 1])")
    seeds = [V.seed("seeds", s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: duplicate seeds in {seeds} (e.g. seeds=[0, 1])")
    epochs = V.positive_number("epochs", epochs, example=3)
    V.positive_int("batch_size", batch_size, example=64)
    V.positive_number("lr", lr, example=0.05)
    V.positive_int("limit", limit, example=3, none=True)
    archs = sp.enumerate()[:limit] if limit else sp.enumerate()
    target = benchmarks.user_path(sp.name, dataset)
    partial = target.with_suffix(".partial.csv")
    smaller = _fuller_table(sp, dataset, len(archs), epochs, len(seeds)) if save else None
    not_saved = replaced = None
    if smaller and overwrite:  # asked for, and said: a 36-row table must not become a 1-row one quietly
        replaced = f"--overwrite: this build is saved as the {sp.name}/{dataset} benchmark although {smaller}"
        if progress:
            print(f"WARNING: {replaced}")
    elif smaller:
        not_saved = (f"{smaller}; its per-network results are kept in {partial} and reused by a later full build; "
                     "pass overwrite=True (--overwrite) to replace the table anyway")
        if progress:
            print(f"note: this build will not replace the benchmark: {not_saved}")
    bundle = data_mod.get(dataset, root=data_root)  # a missing or damaged folder is an error now, not in a worker
    done = _read_partial(partial, epochs)
    # a seeded random order of the architectures (their seeds side by side): a build cut short is a
    # uniform sample of the space with every seed, not the first paths of the enumeration
    order = np.random.default_rng(0).permutation(len(archs))
    todo = [(archs[i], s) for i in order for s in seeds if (str(archs[i]), int(s)) not in done]
    rows = [r for r in done.values() if r["arch"] in {str(a) for a in archs} and r["seed"] in set(seeds)]
    partial.parent.mkdir(parents=True, exist_ok=True)
    if todo:
        from nasbench_lab.sweep import Sweep, Task

        def keep(task: Task, row: dict) -> None:  # the driver appends each network as it finishes
            pd.DataFrame([row]).to_csv(partial, mode="a", header=not partial.exists(), index=False)
            rows.append(row)

        tasks = [Task(f"gt-{i}-s{int(seed)}", "nasbench_lab.training.groundtruth:sweep_task",
                      {"space": sp.name, "arch": str(arch), "dataset": dataset, "data_root": data_root,
                       "epochs": epochs, "seed": int(seed), "batch_size": batch_size, "lr": lr, "device": device,
                       "optimizer": optimizer},
                      name=f"{arch} seed {seed}") for i, (arch, seed) in enumerate(todo)]
        # the .partial.csv is this build's record (an interrupted build resumes from it): no run store
        sweep = Sweep(tasks, executor, store=False, name=f"ground truth {sp.name}/{dataset}", on_result=keep,
                      progress=progress)
        sweep.run()
        if sweep.failed:
            raise RuntimeError(f"ground truth: {len(sweep.failed)} of {len(tasks)} trainings failed (the "
                               f"{len(sweep.results)} that finished are kept in {partial}; run again to retry): "
                               + "; ".join(f"{k}: {v.strip().splitlines()[-1]}" for k, v in list(sweep.failed.items())[:3]))
    runs = pd.DataFrame(rows)
    table = runs.groupby("arch", sort=False).agg(acc=("test_acc", "mean"), std=("test_acc", "std"),
                                                  n_seeds=("seed", "nunique"), train_seconds=("seconds", "mean"))
    table = table.reindex([str(a) for a in archs if str(a) in table.index])  # the space's order, not the run order
    table["std"] = table["std"].fillna(0.0)
    per_seed = runs.pivot_table(index="arch", columns="seed", values="test_acc", aggfunc="mean")
    for seed in per_seed.columns:  # each seed's score beside the mean: the agreement can be rechecked
        table[f"acc_seed{int(seed)}"] = per_seed[seed].reindex(table.index)
    agreement = seed_agreement(per_seed)
    table["params"] = [sp.params(a) for a in table.index]
    table["flops"] = [sp.flops(a) for a in table.index]
    frame = table.reset_index()
    secs = float(runs["seconds"].mean() / max(epochs, 1e-9))
    from nasbench_lab import tasks

    what = "mIoU" if bundle.task == tasks.Segmentation.name else "accuracy"
    bench = Benchmark.from_frame(sp, dataset, frame, epochs=epochs,
                                 metric=f"test {what} (%) after {epochs:g} epochs, mean of {len(seeds)} seed(s)",
                                 source="nasbench-lab groundtruth (trained on this machine)",
                                 reference_arch=str(sp.default()), reference_epoch_seconds=secs)
    if save and not not_saved:
        bench.save(target)
    bench.attrs.update(saved=bool(save and not not_saved), not_saved=not_saved if save else "save=False",
                       partial=str(partial), replaced=replaced, seed_agreement=agreement)
    return bench


def seed_agreement(per_seed: pd.DataFrame) -> dict[str, float] | None:
    """How far independent seeds agree on the order of the architectures: Kendall tau and
    Spearman rho between every pair of seed columns (over the architectures both have), averaged.
    It is the ceiling of any ranking judged against the table's mean. None with fewer than 2 seeds."""
    from itertools import combinations

    from scipy.stats import kendalltau, spearmanr

    cols = list(per_seed.columns)
    if len(cols) < 2:
        return None
    taus, rhos, ns = [], [], []
    for a, b in combinations(cols, 2):
        both = per_seed[[a, b]].dropna()
        if len(both) < 3:
            continue
        taus.append(float(kendalltau(both[a], both[b]).statistic))
        rhos.append(float(spearmanr(both[a], both[b]).statistic))
        ns.append(len(both))
    if not taus:
        return None
    return {"kendall_tau": float(sum(taus) / len(taus)), "spearman": float(sum(rhos) / len(rhos)),
            "pairs": len(taus), "n": int(min(ns))}


def _fuller_table(sp: spaces.SearchSpace, dataset: str, n_archs: int, epochs: float, n_seeds: int) -> str | None:
    """Why this build must not replace the table served now without ``overwrite`` (None when it may)."""
    if n_archs < sp.size:
        return f"it covers {n_archs} of the {sp.size} architectures (a quick look)"
    if (sp.name, dataset) not in benchmarks.available():
        return None
    current = benchmarks.get(sp.name, dataset=dataset)
    seeds_now = int(current.table["n_seeds"].max()) if "n_seeds" in current.table else 0
    smaller = [what for what, new, old in (("architectures", n_archs, len(current)), ("epochs", epochs, current.epochs),
                                          ("seeds", n_seeds, seeds_now)) if new < old]
    if smaller:
        return (f"the current {sp.name}/{dataset} table ({len(current)} architectures, {current.epochs:g} epochs, "
                f"{seeds_now} seed(s)) has more {' and '.join(smaller)}")
    return None


def _read_partial(path: Path, epochs: float) -> dict[tuple[str, int], dict]:
    if not path.exists():
        return {}
    try:
        # a process killed mid-write can leave a torn last line: skip it, keep the rest
        df = pd.read_csv(path, on_bad_lines="skip").dropna(subset=["test_acc"])
    except pd.errors.EmptyDataError:
        return {}
    df = df[df["epochs"] == float(epochs)]
    return {(r["arch"], int(r["seed"])): {**r, "seed": int(r["seed"])} for r in df.to_dict("records")}


_BUNDLES: dict[tuple[str, str | None], Any] = {}


def sweep_task(ctx: Any, space: str, arch: str, dataset: str, data_root: str | None, epochs: float, seed: int,
               batch_size: int, lr: float, device: str, optimizer: str = "sgd") -> dict[str, Any]:
    """One (architecture, seed) of a ground-truth build as a sweep task: its row of the
    ``.partial.csv``. A worker loads the data once for all the networks it trains."""
    key = (dataset, data_root)
    if key not in _BUNDLES:
        _BUNDLES.clear()
        _BUNDLES[key] = data_mod.get(dataset, root=data_root)
    sp = spaces.get(space)
    r = train_standalone(sp, sp.parse(arch), _BUNDLES[key], epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
                         device=device, optimizer=optimizer)
    return {"arch": r.arch, "seed": r.seed, "epochs": r.epochs, "test_acc": r.test_acc, "seconds": r.seconds}
