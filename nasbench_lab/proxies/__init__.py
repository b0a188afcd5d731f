"""Zero-cost proxies: ``proxies.score("naswot", space, arch, batch)`` (see :mod:`.measures`).

``grad_norm``, ``snip``, ``grasp``, ``fisher``, ``synflow``, ``jacov`` and ``naswot`` run the
real standalone model (``space.model(arch)``, freshly initialised from ``seed``) on one batch;
``params`` and ``flops`` are the baselines (004 §5.1.2: parameter count alone ranks about as
well as synflow) and come from the space. Higher scores predict higher accuracy.

``correlation`` measures how well a proxy ranks architectures against a benchmark (Spearman and
Kendall via :mod:`nasbench_lab.metrics`); ``frame`` tabulates several proxies with the truth
for the proxy-versus-truth view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from nasbench_lab import metrics, spaces
from nasbench_lab.proxies.measures import MODEL_PROXIES, naswot_from_codes, naswot_kernel, relu_codes
from nasbench_lab.spaces import Arch, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.benchmarks import Benchmark

__all__ = ["names", "score", "scores", "correlation", "frame", "as_batch", "naswot_from_codes",
           "naswot_kernel", "relu_codes"]

_SPACE_PROXIES = ("params", "flops")



def names() -> list[str]:
    """Every proxy name accepted by :func:`score`."""
    return [*MODEL_PROXIES, *_SPACE_PROXIES]


def as_batch(batch: Any, batch_size: int = 64) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
    """``((x, y), num_classes)`` from an ``(x, y)`` pair or a DataBundle (its first training images)."""
    if hasattr(batch, "train_x") and hasattr(batch, "num_classes"):
        return (batch.train_x[:batch_size], batch.train_y[:batch_size]), int(batch.num_classes)
    if isinstance(batch, tuple | list) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch):
        x, y = batch
        if x.dim() != 4 or y.dim() != 1 or len(x) != len(y):
            raise ValueError(f"batch: expected images (N, C, H, W) and labels (N,), got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        return (x, y), int(y.max().item()) + 1 if len(y) else 10
    raise ValueError("batch: expected (images, labels) tensors or a DataBundle, e.g. nasbench_lab.data.get('digits')")


def score(name: str, space: SearchSpace | str, arch: Arch | str, batch: Any = None, seed: int = 0,
          num_classes: int | None = None) -> float:
    """The proxy ``name`` of ``arch``; higher predicts better.

    ``batch``: ``(x, y)`` tensors or a DataBundle (first 64 training images); not needed for
    ``params``/``flops``. The model is built under ``torch.manual_seed(seed)`` inside a forked
    RNG, so the score is reproducible and the caller's random state is untouched.
    """
    sp = spaces.get(space) if isinstance(space, str) else space
    if name not in names():
        raise ValueError(f"proxy: unknown {name!r}; valid names: {', '.join(names())}")
    arch = sp.parse(arch)
    if name in _SPACE_PROXIES:
        ncls = num_classes if num_classes is not None else (as_batch(batch)[1] if batch is not None else 10)
        with torch.random.fork_rng(devices=[]):  # the space may build (and so initialise) a model
            return float(sp.params(arch, ncls) if name == "params" else sp.flops(arch, ncls))
    if batch is None:
        raise ValueError(f"proxy {name!r}: needs a batch, e.g. score({name!r}, space, arch, nasbench_lab.data.get('digits'))")
    (x, y), ncls = as_batch(batch)
    ncls = int(num_classes) if num_classes is not None else ncls
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = sp.model(arch, num_classes=ncls).to(x.device)
    model.train()
    value = MODEL_PROXIES[name](model, (x, y))
    if not np.isfinite(value):
        raise FloatingPointError(f"proxy {name!r} of {arch} is not finite ({value})")
    return float(value)


def _archs(space: SearchSpace, benchmark: Benchmark | None, archs: Sequence[Arch | str] | int, seed: int) -> list[Arch]:
    if isinstance(archs, int | np.integer):
        if archs < 2:
            raise ValueError(f"archs: expected at least 2 architectures to correlate, got {archs!r} (e.g. 100)")
        pool = benchmark.archs() if benchmark is not None else None
        rng = np.random.default_rng(seed)
        if pool is not None:
            idx = rng.choice(len(pool), size=min(int(archs), len(pool)), replace=False)
            return [pool[i] for i in sorted(idx)]
        seen: dict[Arch, None] = {}
        while len(seen) < min(int(archs), space.size):
            seen[space.sample(rng)] = None
        return list(seen)
    return [space.parse(a) for a in archs]


def scores(name: str, space: SearchSpace | str, archs: Sequence[Arch | str], batch: Any = None, seed: int = 0,
           num_classes: int | None = None) -> np.ndarray:
    """``score`` of each architecture."""
    sp = spaces.get(space) if isinstance(space, str) else space
    return np.array([score(name, sp, a, batch, seed=seed, num_classes=num_classes) for a in archs], dtype=float)


def correlation(name: str, space: SearchSpace | str, benchmark: Benchmark, archs: Sequence[Arch | str] | int = 100,
                batch: Any = None, seed: int = 0) -> dict[str, float]:
    """Rank correlation of a proxy with the benchmark's accuracy over ``archs`` (or ``n`` archs
    drawn without replacement from the table with ``seed``): ``{"spearman", "kendall", "n"}``."""
    sp = spaces.get(space) if isinstance(space, str) else space
    chosen = _archs(sp, benchmark, archs, seed)
    est = scores(name, sp, chosen, batch, seed=seed)
    truth = np.array([benchmark.query(a) for a in chosen], dtype=float)
    return {"spearman": metrics.spearman(est, truth), "kendall": metrics.kendall_tau(est, truth), "n": len(chosen)}


def frame(proxy_names: Sequence[str], space: SearchSpace | str, benchmark: Benchmark | None,
          archs: Sequence[Arch | str] | int = 100, batch: Any = None, seed: int = 0,
          progress: bool = False) -> pd.DataFrame:
    """One row per architecture: ``arch``, ``truth`` (NaN without a benchmark) and one column
    per proxy; ``df.attrs["correlation"]`` maps each proxy to its Spearman and Kendall."""
    from tqdm.auto import tqdm

    sp = spaces.get(space) if isinstance(space, str) else space
    bad = [n for n in proxy_names if n not in names()]
    if bad:
        raise ValueError(f"proxy_names: unknown {bad}; valid names: {', '.join(names())}")
    chosen = _archs(sp, benchmark, archs, seed)
    df = pd.DataFrame({"arch": [str(a) for a in chosen],
                       "truth": [benchmark.query(a) if benchmark is not None else np.nan for a in chosen]})
    for n in tqdm(proxy_names, desc="proxies", disable=not progress, leave=False):
        df[n] = scores(n, sp, chosen, batch, seed=seed)
    if benchmark is not None:
        df.attrs["correlation"] = {n: {"spearman": metrics.spearman(df[n], df["truth"]),
                                       "kendall": metrics.kendall_tau(df[n], df["truth"])} for n in proxy_names}
    return df
