"""Latency on the device a run uses, from a per-op lookup table (the usual hardware-aware NAS
approach: ProxylessNAS, FBNet, MnasNet's predictors): time every distinct op once, predict an
architecture's latency as the sum of its ops' entries.

A space that supports latency implements ``latency_units()`` returning ``(fixed, levels)``:
``fixed`` is a list of unit keys that every architecture runs (stem, head), ``levels[l][g]`` the
unit keys that option ``g`` at level ``l`` adds (repeats allowed: NB-201 runs an edge's op in 5 cells
per stage). ``latency_module(key)`` builds a unit's module and its input shape. The table is built
once per (device, space, batch size), written as JSON under ``<workspace>/latency/`` and read back
on the next call (plain data, never code). :meth:`LatencyTable.check` times whole models end to end
and reports how well the table predicts them.

Timing: ``model.eval()`` under ``torch.inference_mode``, ``warmup`` calls, then the fastest of
``repeat`` calls; on CUDA each call is timed with CUDA events after a synchronise (so the kernel
queue does not hide the work), on CPU with ``time.perf_counter``; the fastest call counts
(see :func:`time_module`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasbench_lab import validation as V
from nasbench_lab.spaces.cost import AdditiveCost

if TYPE_CHECKING:  # pragma: no cover
    import torch
    import torch.nn as nn

    from nasbench_lab.spaces.base import SearchSpace

__all__ = ["LatencyTable", "latency_table", "time_module", "device_key"]


def device_key(device: str | torch.device | None = None) -> str:
    """A file-name-safe identifier of the device and its threads, e.g. ``cpu-x86_64-2t``."""
    import torch

    from nasbench_lab.config import device as pick

    dev = pick(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        name = f"{platform.machine() or 'cpu'}-{torch.get_num_threads()}t"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{dev.type}-{name}")[:80]


def time_module(module: nn.Module, input_shape: Sequence[int], device: str | torch.device | None = None,
                batch: int = 1, warmup: int = 3, repeat: int = 10) -> float:
    """Milliseconds of one forward pass of ``module`` on a ``(batch, *input_shape)`` input: the
    fastest of ``repeat`` timed calls (the least disturbed by other processes; on a shared machine
    the median mostly measures the neighbours)."""
    import torch

    from nasbench_lab.config import device as pick

    dev = pick(device)
    module = module.to(dev).eval()
    x = torch.randn(int(batch), *input_shape, device=dev)
    times = []
    with torch.inference_mode():
        for _ in range(int(warmup)):
            module(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            for _ in range(int(repeat)):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                module(x)
                end.record()
                torch.cuda.synchronize(dev)
                times.append(start.elapsed_time(end))
        else:
            for _ in range(int(repeat)):
                t0 = time.perf_counter()
                module(x)
                times.append((time.perf_counter() - t0) * 1e3)
    return float(np.min(times))


def _key_str(key: Hashable) -> str:
    return json.dumps(key if not isinstance(key, tuple) else list(key))


#: a latency table file larger than this is refused before reading (a MobileNetV2 table is ~20 KB)
MAX_TABLE_BYTES = 16 * 2**20


class LatencyTable:
    """Per-unit milliseconds of one space on one device (see the module docstring)."""

    def __init__(self, space: SearchSpace, device: str, batch: int, units: dict[str, float],
                 meta: dict[str, Any] | None = None) -> None:
        self.space, self.device, self.batch = space, device, int(batch)
        self.units = dict(units)
        self.meta = dict(meta or {})

    # ----------------------------------------------------------------- building
    @classmethod
    def build(cls, space: SearchSpace, device: str | None = None, batch: int = 1, warmup: int = 3,
              repeat: int = 10, progress: bool = False) -> LatencyTable:
        """Time every distinct unit of ``space`` once on ``device``."""
        from nasbench_lab.progress import progress as tqdm

        fixed, levels = _units(space)
        keys = list(dict.fromkeys([*fixed, *(k for lv in levels for opt in lv.values() for k in opt)]))
        units = {}
        t0 = time.perf_counter()
        for key in tqdm(keys, desc=f"latency {space.name}", disable=not progress, leave=False):
            module, shape = space.latency_module(key)
            units[_key_str(key)] = time_module(module, shape, device, batch, warmup, repeat)
        meta = {"built_s": time.perf_counter() - t0, "warmup": warmup, "repeat": repeat, "units": len(keys),
                "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        return cls(space, device_key(device), batch, units, meta)

    def path(self, root: str | os.PathLike | None = None) -> Path:
        return _path(self.space.name, self.device, self.batch, root)

    def save(self, root: str | os.PathLike | None = None) -> Path:
        p = self.path(root)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps({"space": self.space.name, "device": self.device, "batch": self.batch,
                                   "units": self.units, "meta": self.meta}, indent=1))
        os.replace(tmp, p)  # atomic: a reader never sees half a table
        return p

    @classmethod
    def load(cls, space: SearchSpace, path: str | os.PathLike) -> LatencyTable:
        raw = V.read_regular_file("latency table", path, MAX_TABLE_BYTES, "nasbench_lab.spaces.latency.MAX_TABLE_BYTES")
        data = V.json_loads(f"latency table {path}", raw)
        if not isinstance(data, dict) or data.get("space") != space.name or not isinstance(data.get("units"), dict):
            raise ValueError(f"latency table {path}: not a table of space {space.name!r}; delete it to rebuild")
        units = {str(k): float(v) for k, v in data["units"].items()}
        return cls(space, str(data["device"]), int(data["batch"]), units, data.get("meta"))

    # ----------------------------------------------------------------- predicting
    def cost_model(self) -> AdditiveCost:
        """The additive cost model ``ms(genes) = fixed + sum_l table[l][g_l]`` of this table."""
        fixed, levels = _units(self.space)
        missing = [k for k in [*fixed, *(k for lv in levels for o in lv.values() for k in o)]
                   if _key_str(k) not in self.units]
        if missing:
            raise ValueError(f"latency table of {self.space.name}: {len(missing)} units missing "
                             f"(e.g. {missing[0]!r}); rebuild it with rebuild=True")
        base = sum(self.units[_key_str(k)] for k in fixed)
        table = []
        for lv in levels:
            row = np.full(max(lv) + 1, np.nan)
            for g, keys in lv.items():
                row[g] = sum(self.units[_key_str(k)] for k in keys)
            table.append(row)
        return AdditiveCost(self.space, "latency", base, table)

    def predict(self, arch: Any) -> float:
        return float(self.cost_model()(self.space.parse(arch).genes))

    def check(self, n: int = 20, seed: int = 0, warmup: int = 3, repeat: int = 10,
              device: str | None = None, progress: bool = False) -> dict[str, Any]:
        """Time ``n`` random whole models end to end and compare with the table's predictions:
        Pearson r, Spearman rho, mean absolute percentage error, and the rows (``progress``: a bar
        on stderr)."""
        from scipy import stats

        from nasbench_lab.progress import progress as tqdm

        rng = np.random.default_rng(seed)
        model = self.cost_model()
        rows = []
        for _ in tqdm(range(int(n)), desc="end-to-end check", unit="model", disable=not progress):
            a = self.space.sample(rng)
            measured = time_module(self.space.model(a), self.space.input_shape, device, self.batch, warmup, repeat)
            rows.append({"arch": str(a), "predicted_ms": model(a.genes), "measured_ms": measured})
        pred = np.array([r["predicted_ms"] for r in rows])
        meas = np.array([r["measured_ms"] for r in rows])
        return {"n": len(rows), "pearson": float(stats.pearsonr(pred, meas)[0]),
                "spearman": float(stats.spearmanr(pred, meas)[0]),
                "mape": float(np.mean(np.abs(pred - meas) / meas)), "ratio_mean": float(np.mean(meas / pred)),
                "rows": rows}


def _units(space: SearchSpace) -> tuple[list, list[dict[int, list]]]:
    fn = getattr(space, "latency_units", None)
    if fn is None:
        raise ValueError(f"latency: space {space.name!r} has no per-op latency table (supported: spaces with "
                         "latency_units(), e.g. mobilenet, mobilenet-cifar, nbmacro, nb201)")
    return fn()


def _path(space: str, device: str, batch: int, root: str | os.PathLike | None) -> Path:
    from nasbench_lab.config import workspace

    base = Path(root) if root is not None else workspace() / "latency"
    return base / device / f"{space}__bs{int(batch)}.json"


def latency_table(space: SearchSpace | str, device: str | None = None, batch: int = 1, rebuild: bool = False,
                  root: str | os.PathLike | None = None, warmup: int = 3, repeat: int = 10,
                  progress: bool = False) -> LatencyTable:
    """The cached table of ``space`` on ``device`` (built and saved on first use, or with ``rebuild``)."""
    from nasbench_lab import spaces

    sp = spaces.get(space) if isinstance(space, str) else space
    _units(sp)  # a clear error before any timing
    if isinstance(batch, bool) or int(batch) < 1:
        raise ValueError(f"batch: expected a positive batch size, got {V.shorten(batch)} (e.g. batch=1)")
    path = _path(sp.name, device_key(device), int(batch), root)
    if path.is_file() and not rebuild:
        return LatencyTable.load(sp, path)
    table = LatencyTable.build(sp, device, int(batch), warmup, repeat, progress)
    table.save(root)
    return table
