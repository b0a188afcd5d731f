"""Benchmark: tabular ground truth of one search space on one dataset.

The table is a pandas DataFrame indexed by the space's canonical architecture string, with
``acc`` (mean accuracy in %), and where known ``std``, ``n_seeds`` and ``iso`` (isomorphism
class). Lookups go through plain dicts built once, so a black-box strategy can query thousands
of times per second.

Simulated cost
--------------
``cost(arch)`` is the simulated wall-clock of training ``arch`` for the benchmark's schedule:

    seconds = epochs * flops(arch) / flops(reference_arch) * reference_epoch_seconds

i.e. one epoch of the reference architecture takes ``reference_epoch_seconds`` (a nominal
single-GPU figure, not a measurement; override it per benchmark) and time scales linearly
with the forward MACs of one 3x32x32 image. FLOPs come from :mod:`nasbench_lab.benchmarks.cost`.
Only ratios between architectures and methods matter when strategies are compared on "time".
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_lab import spaces
from nasbench_lab import validation as V
from nasbench_lab.spaces.base import Arch, SearchSpace

#: columns every saved benchmark CSV starts with
CSV_COLUMNS = ("arch", "acc", "std", "n_seeds", "epochs")

ArchLike = Arch | str


class Benchmark:
    """Ground truth for ``space`` on ``dataset``; see the module docstring for the cost model.

    Treat ``table`` as read-only (instances are cached and shared); ``frame()`` gives a copy.
    """

    def __init__(self, space: str, dataset: str, table: pd.DataFrame, *, epochs: float,
                 metric: str = "test accuracy (%)", source: str = "",
                 reference_arch: str | None = None, reference_epoch_seconds: float = 10.0,
                 path: Path | None = None) -> None:
        if "acc" not in table.columns:
            raise ValueError(f"Benchmark {space}/{dataset}: the table needs an 'acc' column")
        if not table.index.is_unique:
            dup = table.index[table.index.duplicated()][:3].tolist()
            raise ValueError(f"Benchmark {space}/{dataset}: duplicate architectures in the table: {dup}")
        self.space = str(space)
        self.dataset = str(dataset)
        self.table = table
        self.table.index.name = "arch"
        # the training budget a row stands for; a 0.05-epoch build says 0.05, never rounded up to 1
        e = V.number("epochs", epochs, min=0, example=200)
        self.epochs: float = int(e) if float(e).is_integer() else e
        self.metric = metric
        self.source = source
        self.reference_arch = reference_arch
        self.reference_epoch_seconds = float(reference_epoch_seconds)
        self.path = path
        #: how the table came about (e.g. the ground-truth builder says whether it was saved)
        self.attrs: dict[str, Any] = {}

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_frame(cls, space: str | SearchSpace, dataset: str, frame: pd.DataFrame, *, epochs: float,
                   **kwargs: Any) -> Benchmark:
        """From a frame with an ``arch`` column (strings or Arch) and ``acc``; other columns kept.

        Architecture strings are parsed and rewritten in canonical form, so a malformed row
        fails here with the space's error message.
        """
        sp = spaces.get(space) if isinstance(space, str) else space
        if "arch" not in frame.columns:
            raise ValueError(f"Benchmark.from_frame: expected an 'arch' column, got {list(frame.columns)}")
        table = frame.drop(columns=["arch"]).copy()
        table.index = pd.Index([str(sp.parse(a)) for a in frame["arch"]], name="arch")
        return cls(sp.name, dataset, table, epochs=epochs, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike, space: str | None = None, dataset: str | None = None) -> Benchmark:
        """Read a CSV written by :meth:`save` (space and dataset default to ``<space>__<dataset>``)."""
        path = Path(path)
        if space is None or dataset is None:
            stem_space, sep, stem_dataset = path.stem.partition("__")
            if not sep:
                raise ValueError(f"Benchmark.load: {path.name} is not named <space>__<dataset>.csv")
            space, dataset = space or stem_space, dataset or stem_dataset
        frame = pd.read_csv(path)
        missing = [c for c in ("arch", "acc") if c not in frame.columns]
        if missing:
            raise ValueError(f"Benchmark.load: {path} lacks the column(s) {missing}; expected {list(CSV_COLUMNS)}")
        meta: dict[str, Any] = {}
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            meta = json.loads(sidecar.read_text())
        epochs = meta.pop("epochs", None)
        if epochs is None:
            epochs = float(frame["epochs"].max()) if "epochs" in frame and frame["epochs"].notna().any() else 0
        frame = frame.drop(columns=[c for c in ("epochs",) if c in frame.columns])
        keep = {k: meta[k] for k in ("metric", "source", "reference_arch", "reference_epoch_seconds") if k in meta}
        return cls.from_frame(space, dataset, frame, epochs=epochs, path=path, **keep)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write ``arch, acc, std, n_seeds, epochs`` (+ extra columns) and a ``.json`` sidecar.

        Default path: ``<workspace>/benchmarks/<space>__<dataset>.csv``, where :func:`get` finds it.
        Files are written atomically (temporary file, then rename).
        """
        from nasbench_lab.benchmarks import user_path

        path = Path(path) if path is not None else user_path(self.space, self.dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = self.table.copy()
        for col in ("std", "n_seeds"):
            if col not in out.columns:
                out[col] = np.nan
        out["epochs"] = self.epochs
        extras = [c for c in out.columns if c not in CSV_COLUMNS]
        out = out.reset_index()[[*CSV_COLUMNS, *extras]]
        meta = {"space": self.space, "dataset": self.dataset, "epochs": self.epochs, "metric": self.metric,
                "source": self.source, "reference_arch": self.reference_arch,
                "reference_epoch_seconds": self.reference_epoch_seconds}
        for target, write in ((path, lambda p: out.to_csv(p, index=False)),
                              (path.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta, indent=1)))):
            tmp = target.with_name(target.name + ".tmp")
            write(tmp)
            os.replace(tmp, target)
        self.path = path
        return path

    # ----------------------------------------------------------------- basics
    @cached_property
    def search_space(self) -> SearchSpace:
        return spaces.get(self.space)

    @property
    def datasets(self) -> list[str]:
        """Every dataset with a benchmark for this space."""
        from nasbench_lab.benchmarks import datasets

        return datasets(self.space)

    def __len__(self) -> int:
        return len(self.table)

    def __contains__(self, arch: object) -> bool:
        try:
            return self.key(arch) in self._acc  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return False

    def __repr__(self) -> str:
        return f"<Benchmark {self.space}/{self.dataset}: {len(self)} architectures, {self.metric}, {self.epochs} epochs>"

    @cached_property
    def _acc(self) -> dict[str, float]:
        return dict(zip(self.table.index, self.table["acc"].to_numpy(dtype=float).tolist()))

    def key(self, arch: ArchLike) -> str:
        """The table key (canonical string) of an architecture or string."""
        if isinstance(arch, str) and arch in self._acc:  # fast path: no parsing
            return arch
        return str(self.search_space.parse(arch))

    def _row_key(self, arch: ArchLike) -> str:
        k = self.key(arch)
        if k not in self._acc:
            raise KeyError(f"{self.space}/{self.dataset}: {k} is not in the benchmark table "
                           f"({len(self)} architectures)")
        return k

    # ----------------------------------------------------------------- queries
    def query(self, arch: ArchLike) -> float:
        """Mean accuracy (%) of an architecture."""
        return self._acc[self._row_key(arch)]

    def record(self, arch: ArchLike) -> dict[str, Any]:
        """Every column of an architecture's row, plus its rank and simulated cost."""
        k = self._row_key(arch)
        # per column, so that integer columns stay integers (a row Series would upcast them)
        row: dict[str, Any] = {"arch": k}
        for col in self.table.columns:
            v = self.table.at[k, col]
            row[col] = v.item() if isinstance(v, np.generic) else v
        row.update(rank=self.rank(k), cost=self.cost(k))
        return row

    @cached_property
    def _ranks(self) -> dict[str, int]:
        ranks = self.table["acc"].rank(method="min", ascending=False).astype(int)
        return dict(zip(self.table.index, ranks.to_numpy().tolist()))

    def rank(self, arch: ArchLike) -> int:
        """1 = best; ties share the smallest rank."""
        return int(self._ranks[self._row_key(arch)])

    @cached_property
    def optimum(self) -> tuple[Arch, float]:
        """The best architecture and its accuracy (the first in table order on ties)."""
        k = self.table["acc"].idxmax()
        return self.search_space.parse(k), float(self._acc[k])

    def regret(self, arch: ArchLike) -> float:
        """Accuracy gap to the optimum (>= 0)."""
        return self.optimum[1] - self.query(arch)

    def iso(self, arch: ArchLike) -> str:
        """Isomorphism class: the file's column where shipped, else the space's canonical form."""
        k = self._row_key(arch)
        if "iso" in self.table.columns:
            return str(self.table.at[k, "iso"])
        sp = self.search_space
        return str(sp.canonical(sp.parse(k)))

    def archs(self) -> list[Arch]:
        """Every architecture of the table, in table order."""
        return list(self._archs)

    @cached_property
    def _archs(self) -> tuple[Arch, ...]:
        sp = self.search_space
        return tuple(sp.parse(k) for k in self.table.index)

    def frame(self) -> pd.DataFrame:
        """A copy of the table with ``arch`` (canonical string) and ``rank`` columns."""
        df = self.table.reset_index()
        df["rank"] = df["arch"].map(self._ranks)
        return df

    # ----------------------------------------------------------------- simulated cost
    @cached_property
    def _flops(self):
        from nasbench_lab.benchmarks.cost import flop_model

        return flop_model(self.space)

    def flops(self, arch: ArchLike) -> int:
        """Forward MACs of one 3x32x32 image (conv + linear)."""
        return int(self._flops(self.search_space.parse(self.key(arch)).genes))

    @cached_property
    def reference_flops(self) -> int:
        ref = self.reference_arch or self.search_space.example
        return self.flops(ref)

    def cost(self, arch: ArchLike) -> float:
        """Simulated seconds to train ``arch`` for ``epochs`` (see the module docstring)."""
        return self.epochs * self.flops(arch) / self.reference_flops * self.reference_epoch_seconds

    def costs(self) -> pd.Series:
        """``cost`` of every row, vectorised (indexed like ``table``)."""
        genes = np.array([a.genes for a in self._archs], dtype=np.int64)
        flops = self._flops.many(genes)
        return pd.Series(self.epochs * flops / self.reference_flops * self.reference_epoch_seconds,
                         index=self.table.index, name="cost")

    def info(self) -> dict[str, Any]:
        best, acc = self.optimum
        return {"space": self.space, "dataset": self.dataset, "size": len(self), "metric": self.metric,
                "epochs": self.epochs, "optimum": str(best), "optimum_acc": acc, "source": self.source}
