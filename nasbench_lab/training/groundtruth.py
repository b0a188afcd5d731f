"""Ground-truth builder: train every architecture of a numerable space standalone, several seeds,
and save a Benchmark that the rest of the package uses like the shipped tables.

This is what makes the one-shot story (supernet ranking vs truth) work on a laptop with no
dataset download. Each finished (architecture, seed) is appended to a ``.partial.csv`` next to the
benchmark file at once, so an interrupted build loses nothing and a re-run skips what is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from nasbench_lab import benchmarks, spaces
from nasbench_lab import data as data_mod
from nasbench_lab.benchmarks import Benchmark
from nasbench_lab.training.standalone import train_standalone


def build_groundtruth(space: str = "pooling", dataset: str = "digits", epochs: float = 3.0,
                      seeds: Sequence[int] = (0, 1), batch_size: int = 64, lr: float = 0.05,
                      device: str = "auto", data_root: str | None = None, limit: int | None = None,
                      progress: bool = True, save: bool = True) -> Benchmark:
    """Train every architecture (or the first ``limit``) for ``epochs`` per seed; return the table.

    Accuracy is the test-split accuracy (%) of networks trained on train+val, mean over seeds.
    """
    sp = spaces.get(space)
    if not sp.numerable:
        raise ValueError(f"space: {space!r} has {sp.size:.3g} architectures; the ground-truth builder "
                         f"needs a numerable space such as 'pooling' (36)")
    if not seeds:
        raise ValueError("seeds: expected at least one seed, e.g. seeds=[0, 1]")
    if limit is not None and limit < 1:
        raise ValueError(f"limit: expected a positive number of architectures, got {limit!r}")
    bundle = data_mod.get(dataset, root=data_root)
    archs = sp.enumerate()[:limit] if limit else sp.enumerate()
    target = benchmarks.user_path(sp.name, dataset)
    partial = target.with_suffix(".partial.csv")
    done = _read_partial(partial, epochs)
    todo = [(a, s) for a in archs for s in seeds if (str(a), int(s)) not in done]
    rows = [r for r in done.values() if r["arch"] in {str(a) for a in archs} and r["seed"] in set(seeds)]
    partial.parent.mkdir(parents=True, exist_ok=True)
    for arch, seed in tqdm(todo, desc=f"ground truth {sp.name}/{dataset}", unit="net", disable=not progress):
        r = train_standalone(sp, arch, bundle, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
                             device=device)
        row = {"arch": r.arch, "seed": r.seed, "epochs": r.epochs, "test_acc": r.test_acc, "seconds": r.seconds}
        pd.DataFrame([row]).to_csv(partial, mode="a", header=not partial.exists(), index=False)
        rows.append(row)
    runs = pd.DataFrame(rows)
    table = runs.groupby("arch", sort=False).agg(acc=("test_acc", "mean"), std=("test_acc", "std"),
                                                  n_seeds=("seed", "nunique"), train_seconds=("seconds", "mean"))
    table["std"] = table["std"].fillna(0.0)
    table["params"] = [sp.params(a) for a in table.index]
    table["flops"] = [sp.flops(a) for a in table.index]
    frame = table.reset_index()
    secs = float(runs["seconds"].mean() / max(epochs, 1e-9))
    bench = Benchmark.from_frame(sp, dataset, frame, epochs=max(1, round(epochs)),
                                 metric=f"test accuracy (%) after {epochs:g} epochs, mean of {len(seeds)} seed(s)",
                                 source="nasbench-lab groundtruth (trained on this machine)",
                                 reference_arch=str(sp.default()), reference_epoch_seconds=secs)
    if save:
        bench.save(target)
    return bench


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
