"""Evaluators: what a black-box strategy's query costs and returns.

One protocol, ``evaluate(arch, fidelity=None) -> EvalResult(acc, cost_s, fidelity)``, so a
strategy runs unchanged on a tabular benchmark, on a trained supernet (inherited weights), on a
zero-cost proxy or on real training. ``fidelities`` (sorted, or None) lists the budgets an
evaluator accepts (epochs of training); multi-fidelity strategies (Hyperband) need them.
``truth(arch)`` and ``optimum`` give tabular ground truth when one is known, so regret is
always measured on the real accuracy even when the search only sees an estimate.

Get one by name with :func:`get` (``names()`` lists them).
"""

from __future__ import annotations

import time
import weakref
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasbench_lab import spaces
from nasbench_lab.spaces import Arch, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.benchmarks import Benchmark
    from nasbench_lab.data import DataBundle
    from nasbench_lab.training.trainer import Trainer


@dataclass(frozen=True)
class EvalResult:
    """One query: the accuracy (%) or score seen by the strategy, its cost and its fidelity."""

    acc: float
    cost_s: float
    fidelity: float | None = None


class Evaluator:
    """Base class: subclasses implement ``_evaluate`` and set ``space``."""

    name: str = ""
    space: SearchSpace
    #: budgets accepted by ``evaluate(arch, fidelity)`` (sorted), or None for a single fidelity
    fidelities: tuple[float, ...] | None = None
    #: True when the same query always gives the same answer (strategies then skip repeats)
    deterministic: bool = True
    #: tabular ground truth used for regret (None when unknown)
    benchmark: Any = None

    def evaluate(self, arch: Arch | str, fidelity: float | None = None) -> EvalResult:
        arch = self.space.parse(arch)
        if fidelity is not None and self.fidelities is None:
            raise ValueError(f"evaluator {self.name!r} has a single fidelity; got fidelity={fidelity!r}")
        if fidelity is not None and fidelity not in self.fidelities:
            raise ValueError(f"fidelity: {fidelity!r} is not one of {list(self.fidelities)} "
                             f"(evaluator {self.name!r})")
        return self._evaluate(arch, fidelity)

    def _evaluate(self, arch: Arch, fidelity: float | None) -> EvalResult:  # pragma: no cover
        raise NotImplementedError

    @property
    def max_fidelity(self) -> float | None:
        return self.fidelities[-1] if self.fidelities else None

    def truth(self, arch: Arch) -> float:
        """Ground-truth accuracy (%) of ``arch``, NaN without a benchmark."""
        if self.benchmark is None or arch not in self.benchmark:
            return float("nan")
        return float(self.benchmark.query(arch))

    @property
    def optimum(self) -> float:
        """Best ground-truth accuracy of the space, NaN without a benchmark."""
        return float(self.benchmark.optimum[1]) if self.benchmark is not None else float("nan")

    def options(self) -> dict[str, Any]:
        """Plain-data keyword arguments that rebuild this evaluator with :func:`get` (a run config)."""
        return {}

    def info(self) -> dict[str, Any]:
        return {"evaluator": self.name, "space": self.space.name, "fidelities": list(self.fidelities or [])}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.space.name}>"


# ----------------------------------------------------------------------------- tabular
class BenchmarkEvaluator(Evaluator):
    """Instant lookups in a tabular benchmark, charged a *simulated* training cost.

    Cost model: one query costs ``benchmark.cost(arch)`` simulated seconds, the benchmark's
    estimate of training that architecture for the table's full schedule (e.g. 200 epochs for
    NAS-Bench-201) on one GPU. Regret-versus-time curves use the cumulative sum of these costs,
    so a strategy that prefers cheap (small) networks is credited for it, as in 004 §3.1.

    With ``fidelities`` (epochs, the last one standing for the table's schedule) the evaluator
    also *simulates* cheaper, noisier low-fidelity answers for multi-fidelity strategies. The
    tables have only final accuracies, so this is a toy learning-curve model, documented here
    so nobody mistakes it for data: at fidelity ``f`` of ``F``, with ``r = 1 - f / F``,
    ``acc_f = acc - gap * r + noise * r * z`` with ``z ~ N(0, 1)`` drawn once per
    (architecture, fidelity) from a hash (so repeated queries agree), and the cost is
    ``cost(arch) * f / F``. At ``f = F`` the answer is exactly the table's.
    """

    name = "benchmark"

    def __init__(self, benchmark: Benchmark, fidelities: tuple[float, ...] | list[float] | None = None,
                 gap: float = 10.0, noise: float = 3.0) -> None:
        self.benchmark = benchmark
        self.space = spaces.get(benchmark.space) if isinstance(benchmark.space, str) else benchmark.space
        if fidelities is not None:
            fid = tuple(sorted(float(f) for f in fidelities))
            if not fid or fid[0] <= 0:
                raise ValueError(f"fidelities: expected positive budgets such as (22, 66, 200), got {fidelities!r}")
            self.fidelities = fid
        self.gap, self.noise = float(gap), float(noise)
        self._cache = _table_cache(benchmark)
        if not self._cache:  # fill once per benchmark, vectorised (the hot path is a dict lookup)
            costs = benchmark.costs().to_numpy(float)
            accs = benchmark.table["acc"].to_numpy(float)
            self._cache.update(zip(benchmark.archs(), zip(accs.tolist(), costs.tolist())))

    def _lookup(self, arch: Arch) -> tuple[float, float]:
        hit = self._cache.get(arch)
        if hit is None:
            hit = self._cache[arch] = (float(self.benchmark.query(arch)), float(self.benchmark.cost(arch)))
        return hit

    def evaluate(self, arch: Arch | str, fidelity: float | None = None) -> EvalResult:
        # The hot path of every table search: skip parsing for an Arch of this space.
        if fidelity is None and type(arch) is Arch and arch.space == self.space.name:
            acc, cost = self._lookup(arch)
            return EvalResult(acc, cost, self.max_fidelity)
        return super().evaluate(arch, fidelity)

    def _evaluate(self, arch: Arch, fidelity: float | None) -> EvalResult:
        acc, cost = self._lookup(arch)
        top = self.max_fidelity
        if fidelity is None or fidelity == top:
            return EvalResult(acc, cost, top)
        r = 1.0 - fidelity / top
        seed = zlib.crc32(f"{arch.space}|{arch.genes}|{fidelity}".encode())
        z = float(np.random.default_rng(seed).standard_normal())
        return EvalResult(acc - self.gap * r + self.noise * r * z, cost * fidelity / top, float(fidelity))

    def truth(self, arch: Arch) -> float:
        return self._lookup(arch)[0]

    def options(self) -> dict[str, Any]:
        return {"fidelities": list(self.fidelities) if self.fidelities else None, "gap": self.gap, "noise": self.noise}

    @property
    def optimum(self) -> float:
        return float(self.benchmark.optimum[1])

    def values(self) -> np.ndarray:
        """Every accuracy of the table (the empirical distribution random search draws from)."""
        return self.benchmark.table["acc"].to_numpy(float)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "dataset": getattr(self.benchmark, "dataset", None)}


_TABLE_CACHES: weakref.WeakKeyDictionary[Any, dict[Arch, tuple[float, float]]] = weakref.WeakKeyDictionary()


def _table_cache(benchmark: Benchmark) -> dict[Arch, tuple[float, float]]:
    """One (accuracy, cost) dict per benchmark object, shared by all evaluators on it."""
    try:
        return _TABLE_CACHES.setdefault(benchmark, {})
    except TypeError:  # not weak-referenceable: a private cache
        return {}


# ----------------------------------------------------------------------------- supernet
class SupernetEvaluator(Evaluator):
    """Inherited weights: an architecture's accuracy (%) as a path of a trained one-shot supernet.

    ``trainer.evaluate(arch)`` recalibrates the path's BatchNorm statistics and measures the
    validation accuracy; the cost is the measured wall time of that evaluation. Answers are
    cached, since the supernet no longer changes.
    """

    name = "supernet"

    def __init__(self, trainer: Trainer, max_images: int | None = None, benchmark: Benchmark | None | bool = None) -> None:
        self.trainer = trainer
        self.space = trainer.space
        self.max_images = max_images
        if benchmark is None:
            from nasbench_lab.training.ranking import find_benchmark

            benchmark = find_benchmark(trainer.cfg.space, trainer.cfg.dataset)
        self.benchmark = benchmark or None
        self._cache: dict[Arch, EvalResult] = {}
        self.checkpoint: str | None = None  # set by from_checkpoint: then the evaluator can be rebuilt

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "max_images": self.max_images} if self.checkpoint else {}

    @classmethod
    def from_checkpoint(cls, path: str, **kwargs: Any) -> SupernetEvaluator:
        """Rebuild the Trainer of a one-shot run from its checkpoint (``Run.checkpoint_path``)."""
        from nasbench_lab.runs import checkpoint as ckpt
        from nasbench_lab.runs.job import load_job_class

        data = ckpt.load(path)
        trainer = load_job_class(data["job_class"]).from_config(data["config"])
        trainer.load_state_dict(data["job"])
        ev = cls(trainer, **kwargs)
        ev.checkpoint = str(path)
        return ev

    def _evaluate(self, arch: Arch, fidelity: float | None) -> EvalResult:
        hit = self._cache.get(arch)
        if hit is None:
            t0 = time.perf_counter()
            acc = self.trainer.evaluate(arch, max_images=self.max_images)
            hit = self._cache[arch] = EvalResult(float(acc), time.perf_counter() - t0, None)
        return hit


# ----------------------------------------------------------------------------- proxies
def _bundle(data: DataBundle | str | None, seed: int = 0, root: str | None = None) -> DataBundle:
    from nasbench_lab import data as data_mod

    if data is None:
        data = "digits"
    return data_mod.get(data, root=root, seed=seed) if isinstance(data, str) else data


class ProxyEvaluator(Evaluator):
    """A zero-cost proxy score (not an accuracy) of the network at initialisation.

    The batch is the first ``batch_size`` training images of ``data`` (a DataBundle or a dataset
    name, read from ``data_root`` for CIFAR); the cost is the measured wall time of the score.
    Scores are cached per architecture (same seed, same batch, same answer).
    """

    name = "proxy"

    def __init__(self, space: SearchSpace | str, proxy_name: str = "naswot", data: DataBundle | str | None = None,
                 batch_size: int = 64, seed: int = 0, benchmark: Benchmark | None = None,
                 device: str = "cpu", data_root: str | None = None) -> None:
        from nasbench_lab import proxies

        self.space = spaces.get(space) if isinstance(space, str) else space
        if proxy_name not in proxies.names():
            raise ValueError(f"proxy_name: unknown proxy {proxy_name!r}; valid: {', '.join(proxies.names())}")
        self.proxy_name = proxy_name
        bundle = _bundle(data, root=data_root)
        self._options = {"proxy_name": proxy_name, "data": bundle.name, "batch_size": int(batch_size),
                         "seed": int(seed), "device": device, "data_root": data_root}
        self.num_classes = bundle.num_classes
        self.batch = (bundle.train_x[:batch_size].to(device), bundle.train_y[:batch_size].to(device))
        self.seed = int(seed)
        self.benchmark = benchmark
        self._cache: dict[Arch, EvalResult] = {}

    def _evaluate(self, arch: Arch, fidelity: float | None) -> EvalResult:
        from nasbench_lab import proxies

        hit = self._cache.get(arch)
        if hit is None:
            t0 = time.perf_counter()
            s = proxies.score(self.proxy_name, self.space, arch, self.batch, seed=self.seed,
                              num_classes=self.num_classes)
            hit = self._cache[arch] = EvalResult(float(s), time.perf_counter() - t0, None)
        return hit

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "proxy": self.proxy_name}


# ----------------------------------------------------------------------------- real training
class TrainingEvaluator(Evaluator):
    """Real standalone training for a few epochs; the number of epochs is the fidelity.

    Uses :func:`nasbench_lab.training.standalone.train_standalone` (the loop that builds ground
    truth) on the train split and reports the *validation* accuracy, so the search never sees the
    test set. The cost is the measured training time. Results are cached per (arch, epochs).
    """

    name = "training"
    deterministic = True  # seeded per architecture

    def __init__(self, space: SearchSpace | str, data: DataBundle | str | None = None,
                 epochs: float | tuple[float, ...] | list[float] = (1.0,), batch_size: int = 64,
                 lr: float = 0.05, seed: int = 0, device: str = "auto", benchmark: Benchmark | None = None,
                 data_root: str | None = None) -> None:
        self.space = spaces.get(space) if isinstance(space, str) else space
        eps = (epochs,) if isinstance(epochs, int | float) else tuple(epochs)
        if not eps or any(not isinstance(e, int | float) or e <= 0 for e in eps):
            raise ValueError(f"epochs: expected positive numbers of epochs such as 1 or (1, 3, 9), got {epochs!r}")
        self.fidelities = tuple(sorted(float(e) for e in eps))
        self.data = _bundle(data, seed, root=data_root)
        self.data_root = data_root
        self.batch_size, self.lr, self.seed, self.device = int(batch_size), float(lr), int(seed), device
        self.benchmark = benchmark
        self._cache: dict[tuple[Arch, float], EvalResult] = {}

    def options(self) -> dict[str, Any]:
        return {"data": self.data.name, "epochs": list(self.fidelities), "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed, "device": self.device, "data_root": self.data_root}

    def _evaluate(self, arch: Arch, fidelity: float | None) -> EvalResult:
        from nasbench_lab.training.standalone import train_standalone

        epochs = float(fidelity if fidelity is not None else self.max_fidelity)
        hit = self._cache.get((arch, epochs))
        if hit is None:
            r = train_standalone(self.space, arch, self.data, epochs=epochs, seed=self.seed,
                                 batch_size=self.batch_size, lr=self.lr, device=self.device,
                                 use_val=False, eval_split="val")
            hit = self._cache[(arch, epochs)] = EvalResult(float(r.test_acc), float(r.seconds), epochs)
        return hit


# ----------------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[Evaluator]] = {
    "benchmark": BenchmarkEvaluator,
    "supernet": SupernetEvaluator,
    "proxy": ProxyEvaluator,
    "training": TrainingEvaluator,
}


def names() -> list[str]:
    """Evaluator names accepted by :func:`get`."""
    return list(_REGISTRY)


def find_benchmark(space: str, dataset: str | None) -> Benchmark | None:
    """The benchmark of (space, dataset) or None (no error) when there is none."""
    try:
        from nasbench_lab import benchmarks

        return benchmarks.get(space, dataset=dataset) if dataset else benchmarks.get(space)
    except (ValueError, KeyError, ImportError, FileNotFoundError):
        return None


def get_benchmark(space: str, dataset: str | None) -> Benchmark:
    """The benchmark of (space, dataset), with an error that lists the valid datasets."""
    from nasbench_lab import benchmarks

    try:
        return benchmarks.get(space, dataset=dataset) if dataset else benchmarks.get(space)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        have = [d for s, d in _available() if s == space]
        hint = f"datasets with ground truth for {space!r}: {', '.join(have)}" if have else \
            f"no ground truth is available for space {space!r}"
        raise ValueError(f"dataset: no benchmark column {dataset!r} for space {space!r}; {hint} ({exc})") from None


def _available() -> list[tuple[str, str]]:
    try:
        from nasbench_lab import benchmarks

        return [tuple(x) for x in benchmarks.available()]
    except (ImportError, AttributeError):
        return []


def get(name: str, space: SearchSpace | str | None = None, dataset: str | None = None, **options: Any) -> Evaluator:
    """An evaluator by name.

    - ``benchmark``: ``get("benchmark", "nb201", "cifar10", fidelities=None)``
    - ``supernet``: ``get("supernet", trainer=trainer)`` or ``checkpoint=path``
    - ``proxy``: ``get("proxy", "nb201", proxy_name="naswot", data="digits")`` (benchmark of
      ``dataset`` attached for regret when it exists)
    - ``training``: ``get("training", "pooling", data="digits", epochs=(1, 3))``
    """
    if name not in _REGISTRY:
        raise ValueError(f"evaluator: unknown {name!r}; valid names: {', '.join(_REGISTRY)}")
    space_name = space.name if isinstance(space, SearchSpace) else space
    if name == "benchmark":
        if space_name is None:
            raise ValueError("evaluator 'benchmark' needs a space, e.g. get('benchmark', 'nb201', 'cifar10')")
        return BenchmarkEvaluator(get_benchmark(space_name, dataset), **options)
    if name == "supernet":
        if "trainer" in options:
            return SupernetEvaluator(options.pop("trainer"), **options)
        if "checkpoint" in options:
            return SupernetEvaluator.from_checkpoint(options.pop("checkpoint"), **options)
        raise ValueError("evaluator 'supernet' needs trainer=<a trained Trainer> or checkpoint=<path of its checkpoint>")
    if space_name is None:
        raise ValueError(f"evaluator {name!r} needs a space, e.g. get({name!r}, 'pooling', ...)")
    if "benchmark" not in options and dataset is not None:
        options["benchmark"] = find_benchmark(space_name, dataset)
    return _REGISTRY[name](space if space is not None else space_name, **options)


__all__ = ["EvalResult", "Evaluator", "BenchmarkEvaluator", "SupernetEvaluator", "ProxyEvaluator",
           "TrainingEvaluator", "get", "names", "find_benchmark", "get_benchmark"]
