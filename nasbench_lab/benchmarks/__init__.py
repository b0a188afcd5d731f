"""Tabular benchmarks: ``nasbench_lab.benchmarks.get("nb201", "cifar100").query(arch)``.

Shipped (files in ``benchmarks/data``, provenance in ``data/PROVENANCE.md``):

============ ============================== ======================= ======= ===================
space        datasets                       metric                  epochs  source
============ ============================== ======================= ======= ===================
pooling      cifar10                        test acc, mean of 3     200 (*) thesis 003 Table 2.1
nbmacro      cifar10                        best test acc, mean 3   50      NAS-Bench-Macro
nb201        cifar10, cifar100,             test acc after 200 ep.  200     NAS-Bench-201
             imagenet16-120
============ ============================== ======================= ======= ===================

(*) The thesis states the ResNet20 schedule (SGD lr 0.1, cosine, wd 1e-3, batch 256, trained to
convergence) but not the number of epochs; 200 is the usual CIFAR ResNet20 budget and only
scales the simulated cost. NAS-Bench-Macro trained each network for 50 epochs (``train.py``
default of the public repository) and recorded the best test accuracy over epochs.

Built benchmarks: ``pooling__digits.csv`` in ``benchmarks/data`` was made by
``nasbench-lab groundtruth --space pooling --dataset digits`` (provenance in the README) and ships
so the one-shot story works without a download. User-built benchmarks are CSV files
``<workspace>/benchmarks/<space>__<dataset>.csv`` written by :meth:`Benchmark.save`; :func:`get`
and :func:`available` find them. A published table wins over a user file of the same name; a user
file wins over a packaged build of the same name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from nasbench_lab.benchmarks.benchmark import CSV_COLUMNS, Benchmark
from nasbench_lab.spaces.base import SearchSpace

__all__ = ["Benchmark", "CSV_COLUMNS", "available", "datasets", "get", "user_path", "DATA_DIR"]

DATA_DIR = Path(__file__).parent / "data"

_NB201_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}
_NB201_FULL_CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")

#: training-set images per dataset, to scale nominal epoch times of user-built benchmarks
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "imagenet16-120": 151_700, "digits": 1_437}


@dataclass(frozen=True)
class _Shipped:
    loader: str
    epochs: int
    metric: str
    source: str
    reference_arch: str
    #: nominal seconds of one epoch of ``reference_arch`` on one GPU (not measured; see cost model)
    reference_epoch_seconds: float


_SHIPPED: dict[tuple[str, str], _Shipped] = {
    ("pooling", "cifar10"): _Shipped(
        "pooling", 200, "CIFAR-10 test accuracy (%), mean of 3 seeds",
        "thesis 003 Table 2.1 (Roshtkhari, Toews, Pedersoli, AutoML-Conf 2023)", "[4,3,3]", 10.0),
    ("nbmacro", "cifar10"): _Shipped(
        "nbmacro", 50, "CIFAR-10 best test accuracy over training (%), mean of 3 runs",
        "NAS-Bench-Macro (Su et al., CVPR 2021), Apache-2.0", "22222222", 12.0),
    **{("nb201", ds): _Shipped(
        "nb201", 200, f"{label} test accuracy after 200 epochs (%)",
        "NAS-Bench-201 / NATS-Bench topology (Dong & Yang 2020), MIT", _NB201_FULL_CELL, secs)
       for ds, label, secs in (("cifar10", "CIFAR-10", 15.0), ("cifar100", "CIFAR-100", 15.0),
                               # 3x the images at 1/4 of the pixels of CIFAR
                               ("imagenet16-120", "ImageNet16-120", 11.4))},
}

#: nominal CIFAR epoch seconds of each space's reference, for user-built benchmarks
_NOMINAL_CIFAR_EPOCH = {"pooling": 10.0, "pooling-resnet18": 30.0, "pooling-resnet50": 60.0,
                        "nbmacro": 12.0, "nb201": 15.0}


# --------------------------------------------------------------------------- shipped tables
@cache
def _pooling_table() -> pd.DataFrame:
    df = pd.read_csv(DATA_DIR / "pooling_resnet20_cifar10.csv")
    keys = "[" + df["blocks_32"].astype(str) + "," + df["blocks_16"].astype(str) + "," + df["blocks_8"].astype(str) + "]"
    return pd.DataFrame({"acc": df["test_acc_mean"].to_numpy(float), "std": df["test_acc_std"].to_numpy(float),
                         "n_seeds": 3}, index=pd.Index(keys, name="arch"))


@cache
def _nbmacro_table() -> pd.DataFrame:
    with open(DATA_DIR / "nas-bench-macro_cifar10.json") as fh:
        raw = json.load(fh)
    keys = list(raw)
    runs = np.array([raw[k]["test_acc"] for k in keys], dtype=float)
    return pd.DataFrame({"acc": [raw[k]["mean_acc"] for k in keys], "std": [raw[k]["std"] for k in keys],
                         "n_seeds": runs.shape[1], "run1": runs[:, 0], "run2": runs[:, 1], "run3": runs[:, 2]},
                        index=pd.Index(keys, name="arch"))


@cache
def _nb201_raw() -> pd.DataFrame:
    return pd.read_csv(DATA_DIR / "nas-bench-201_test-acc_200ep.csv", engine="c")


@cache
def _nb201_table(dataset: str) -> pd.DataFrame:
    raw = _nb201_raw()
    return pd.DataFrame({"acc": raw[_NB201_COLUMNS[dataset]].to_numpy(float),
                         "iso": raw["UniqueString"].to_numpy()},
                        index=pd.Index(raw["ArchitectureString"].to_numpy(), name="arch"))


@cache
def _shipped(space: str, dataset: str) -> Benchmark:
    s = _SHIPPED[(space, dataset)]
    table = {"pooling": _pooling_table, "nbmacro": _nbmacro_table}.get(s.loader)
    frame = table() if table is not None else _nb201_table(dataset)
    return Benchmark(space, dataset, frame, epochs=s.epochs, metric=s.metric, source=s.source,
                     reference_arch=s.reference_arch, reference_epoch_seconds=s.reference_epoch_seconds,
                     path=DATA_DIR)


# --------------------------------------------------------------------------- user tables
def _user_dir() -> Path:
    from nasbench_lab.config import workspace

    return workspace() / "benchmarks"


def user_path(space: str, dataset: str) -> Path:
    """Where :meth:`Benchmark.save` writes, and :func:`get` looks for, a user-built table.

    Both names become a file name: they must be safe identifiers (no ``/``, no ``..``; "__" is
    the separator, so neither may contain it)."""
    from nasbench_lab import validation as V

    for name, value in (("space", space), ("dataset", dataset)):
        V.identifier(name, value, "pooling" if name == "space" else "digits")
        if "__" in value:
            raise ValueError(f"{name}: {value!r} contains '__', which separates space and dataset in "
                             "<space>__<dataset>.csv (e.g. 'digits')")
    return _user_dir() / f"{space}__{dataset}.csv"


def _user_files() -> dict[tuple[str, str], Path]:
    folder = _user_dir()
    out = {}
    for p in sorted(folder.glob("*__*.csv")) if folder.is_dir() else []:
        if "." in p.stem:  # e.g. the ground-truth builder's work file <space>__<dataset>.partial.csv
            continue
        space, _, dataset = p.stem.partition("__")
        out[(space, dataset)] = p
    return out


@lru_cache(maxsize=32)
def _load_user(path: str, stamp: tuple[int, int]) -> Benchmark:  # stamp: reload when the file changes
    b = Benchmark.load(path)
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.exists() or "reference_epoch_seconds" not in json.loads(sidecar.read_text()):
        per_cifar = _NOMINAL_CIFAR_EPOCH.get(b.space, 10.0)
        b.reference_epoch_seconds = per_cifar * TRAIN_IMAGES.get(b.dataset, 50_000) / 50_000
    return b


# --------------------------------------------------------------------------- lookup
def _built_files() -> dict[tuple[str, str], Path]:
    """Tables built with ``nasbench-lab groundtruth`` and shipped in the package (digits)."""
    out = {}
    for p in sorted(DATA_DIR.glob("*__*.csv")):
        space, _, dataset = p.stem.partition("__")
        out[(space, dataset)] = p
    return out


def available() -> list[tuple[str, str]]:
    """Every ``(space, dataset)`` with a benchmark: published tables, then built ones."""
    out = list(_SHIPPED)
    out += [k for k in {**_built_files(), **_user_files()} if k not in _SHIPPED]
    return out


def datasets(space: str | SearchSpace) -> list[str]:
    """Datasets with a benchmark for ``space``."""
    name = space.name if isinstance(space, SearchSpace) else str(space)
    return [d for s, d in available() if s == name]


def get(space: str | SearchSpace, dataset: str | None = None) -> Benchmark:
    """The benchmark of ``space`` on ``dataset`` (default: the space's first listed dataset).

    Shipped tables are loaded once per process; user-built ones are re-read when their file
    changes. Unknown pairs raise ValueError listing what exists.
    """
    name = space.name if isinstance(space, SearchSpace) else str(space)
    have = available()
    if dataset is None:
        options = [d for s, d in have if s == name]
        if not options:
            raise ValueError(f"benchmarks.get: no benchmark for space {name!r}; available: {_listing(have)}")
        dataset = options[0]
    dataset = str(dataset).lower()
    if (name, dataset) in _SHIPPED:
        return _shipped(name, dataset)
    # a table the user built wins over the packaged build of the same (space, dataset)
    path = _user_files().get((name, dataset)) or _built_files().get((name, dataset))
    if path is None:
        spaces_with = sorted({s for s, _ in have})
        if name not in spaces_with:
            raise ValueError(f"benchmarks.get: no benchmark for space {name!r}; available: {_listing(have)}")
        raise ValueError(f"benchmarks.get: no {dataset!r} benchmark for space {name!r}; its datasets: "
                         f"{', '.join(d for s, d in have if s == name)} (all: {_listing(have)})")
    st = path.stat()
    return _load_user(str(path), (st.st_mtime_ns, st.st_size))


def _listing(have: list[tuple[str, str]]) -> str:
    return ", ".join(f"{s}/{d}" for s, d in have) or "none"
