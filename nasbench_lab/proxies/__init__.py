"""Zero-cost proxies: ``proxies.score("naswot", space, arch, batch)`` (see :mod:`.measures`).

``grad_norm``, ``snip``, ``grasp``, ``fisher``, ``synflow``, ``jacov`` and ``naswot`` run the
real standalone model (``space.model(arch)``, freshly initialised from ``seed``) on one batch;
``params`` and ``flops`` are the baselines (004 §5.1.2: parameter count alone ranks about as
well as synflow) and come from the space. Higher scores predict higher accuracy.

``score_all`` builds the model once and computes every requested proxy with shared passes
(:func:`.measures.compute`); ``scores`` and ``frame`` use it, one model per architecture.

``correlation`` measures how well a proxy ranks architectures against a benchmark (Spearman and
Kendall via :mod:`nasbench_lab.metrics`); ``frame`` tabulates several proxies with the truth
for the proxy-versus-truth view.

``network`` picks the scored network (:data:`NETWORKS`): ``"space"`` (default), the space's own
standalone model, on NB-201 the NB-201 authors' network; ``"reference"`` (NB-201 only), the
network of the zero-cost proxies' reference code (Abdelfattah et al. 2021,
``SamsungLabs/zero-cost-nas`` ``foresight/models/nasbench2.py``), whose cells have convolutions
with a bias and BN without affine parameters. The published NB-201 proxy table was computed on
the reference network, and the two differ for fisher: on 1,000 cells and one CIFAR-10 batch, fisher
ranks with Spearman 0.55 on NB-201's network and 0.355 (bootstrap 95 %: 0.29-0.41) on the reference
one, the published 0.36 (``notebooks/results/proxies_nb201_cifar10_1000_fisher_reference.csv``).
Why (:class:`~nasbench_lab.spaces.nb201.NB201Network`): a conv fed by an all-zero node outputs its
bias, its BN has variance 0, and fisher explodes on those cells (over 100x on 104 of the 1,000).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from nasbench_lab import metrics, spaces
from nasbench_lab.proxies.measures import MODEL_PROXIES, compute, naswot_from_codes, naswot_kernel, relu_codes
from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.nb201 import NB201Network

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.benchmarks import Benchmark

__all__ = ["names", "score", "score_all", "scores", "correlation", "correlations", "frame", "as_batch", "naswot_from_codes",
           "naswot_kernel", "relu_codes", "NETWORKS"]

_SPACE_PROXIES = ("params", "flops")
#: the networks a proxy can score (see the module docstring)
NETWORKS: tuple[str, ...] = ("space", "reference")


def _check_network(network: str, sp: SearchSpace) -> None:
    if network not in NETWORKS:
        raise ValueError(f"network: unknown {network!r}; valid: {', '.join(NETWORKS)} (e.g. network='reference')")
    if network == "reference" and sp.name != "nb201":
        raise ValueError(f"network: 'reference' is the zero-cost proxies' NB-201 network; space {sp.name!r} has only "
                         "its own (network='space')")


def _model(sp: SearchSpace, arch: Arch, num_classes: int, network: str) -> torch.nn.Module:
    if network == "reference":  # zero-cost-nas nasbench2.py: SearchCell(affine=False, track_running_stats=False)
        return NB201Network(arch.genes, num_classes, affine=False, track_running_stats=False, conv_bias=True)
    return sp.model(arch, num_classes=num_classes)



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
          num_classes: int | None = None, network: str = "space") -> float:
    """The proxy ``name`` of ``arch``; higher predicts better.

    ``batch``: ``(x, y)`` tensors or a DataBundle (first 64 training images); not needed for
    ``params``/``flops``. The model is built under ``torch.manual_seed(seed)`` inside a forked
    RNG, so the score is reproducible and the caller's random state is untouched. ``network``:
    ``"space"`` or ``"reference"`` (NB-201 only; see the module docstring).
    """
    if name not in names():
        raise ValueError(f"proxy: unknown {name!r}; valid names: {', '.join(names())}")
    return score_all([name], space, arch, batch, seed, num_classes, network)[name]


def score_all(proxy_names: Sequence[str], space: SearchSpace | str, arch: Arch | str, batch: Any = None,
              seed: int = 0, num_classes: int | None = None, network: str = "space") -> dict[str, float]:
    """Every proxy in ``proxy_names`` of ``arch`` from ONE model build (shared passes, see
    :func:`.measures.compute`); the same numbers :func:`score` gives one by one."""
    sp = spaces.get(space) if isinstance(space, str) else space
    bad = [n for n in proxy_names if n not in names()]
    if bad:
        raise ValueError(f"proxy: unknown {bad}; valid names: {', '.join(names())}")
    _check_network(network, sp)
    arch = sp.parse(arch)
    model_names = [n for n in proxy_names if n in MODEL_PROXIES]
    out: dict[str, float] = {}
    if model_names and batch is None:
        raise ValueError(f"proxy {model_names[0]!r}: needs a batch, e.g. score({model_names[0]!r}, space, arch, "
                         "nasbench_lab.data.get('digits'))")
    ncls = num_classes
    if batch is not None:
        (x, y), inferred = as_batch(batch)
        ncls = int(num_classes) if num_classes is not None else inferred
    ncls = 10 if ncls is None else ncls
    dev = x.device if batch is not None else torch.device("cpu")
    devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = _model(sp, arch, ncls, network).to(dev)
    # params and flops: from this same model where the space counts them on a model of its own (the
    # SearchSpace defaults) or the network is not the space's; a space with its own formula
    # (pooling, DARTS cells) answers itself
    for n in (n for n in proxy_names if n in _SPACE_PROXIES):
        if network == "space" and getattr(type(sp), n) is not getattr(SearchSpace, n):
            with torch.random.fork_rng(devices=[]):
                out[n] = float(sp.params(arch, ncls) if n == "params" else sp.flops(arch, ncls))
        elif n == "params":
            out[n] = float(sum(p.numel() for p in model.parameters()))
        else:
            from nasbench_lab.nn.flops import count_macs

            with torch.random.fork_rng(devices=devices):
                out[n] = float(count_macs(model, sp.input_shape))
    if model_names:
        model.train()
        out.update(compute(model, (x, y), model_names))  # the model is ours: synflow may change it in place
        for n in model_names:
            if not np.isfinite(out[n]):
                raise FloatingPointError(f"proxy {n!r} of {arch} is not finite ({out[n]})")
    return {n: out[n] for n in proxy_names}


def _archs(space: SearchSpace, benchmark: Benchmark | None, archs: Sequence[Arch | str] | int, seed: int) -> list[Arch]:
    if isinstance(archs, int | np.integer):
        if archs < 2:
            raise ValueError(f"archs: expected at least 2 architectures to correlate, got {archs!r} (e.g. 100)")
        pool = benchmark.archs() if benchmark is not None else None
        have = len(pool) if pool is not None else space.size
        if archs > have:  # drawn without replacement: more than exist would be cut without a word
            where = f"the {benchmark.space}/{benchmark.dataset} table" if pool is not None else f"the {space.name} space"
            raise ValueError(f"archs (--archs): {archs} is more than the {have:,} architectures in {where}; use at "
                             f"most {have} (e.g. archs={min(100, have)})")
        rng = np.random.default_rng(seed)
        if pool is not None:
            idx = rng.choice(len(pool), size=int(archs), replace=False)
            return [pool[i] for i in sorted(idx)]
        seen: dict[Arch, None] = {}
        while len(seen) < int(archs):
            seen[space.sample(rng)] = None
        return list(seen)
    return [space.parse(a) for a in archs]


def scores(name: str, space: SearchSpace | str, archs: Sequence[Arch | str], batch: Any = None, seed: int = 0,
           num_classes: int | None = None, network: str = "space") -> np.ndarray:
    """``score`` of each architecture."""
    sp = spaces.get(space) if isinstance(space, str) else space
    return np.array([score(name, sp, a, batch, seed=seed, num_classes=num_classes, network=network) for a in archs],
                    dtype=float)


def correlation(name: str, space: SearchSpace | str, benchmark: Benchmark, archs: Sequence[Arch | str] | int = 100,
                batch: Any = None, seed: int = 0, network: str = "space") -> dict[str, float]:
    """Rank correlation of a proxy with the benchmark's accuracy over ``archs`` (or ``n`` archs
    drawn without replacement from the table with ``seed``): ``{"spearman", "kendall", "n"}``."""
    sp = spaces.get(space) if isinstance(space, str) else space
    chosen = _archs(sp, benchmark, archs, seed)
    est = scores(name, sp, chosen, batch, seed=seed, network=network)
    truth = np.array([benchmark.query(a) for a in chosen], dtype=float)
    return {"spearman": metrics.spearman(est, truth), "kendall": metrics.kendall_tau(est, truth), "n": len(chosen)}


def frame(proxy_names: Sequence[str], space: SearchSpace | str, benchmark: Benchmark | None,
          archs: Sequence[Arch | str] | int = 100, batch: Any = None, seed: int = 0,
          progress: bool = False, on_row: Any = None, network: str = "space") -> pd.DataFrame:
    """One row per architecture: ``arch``, ``truth`` (NaN without a benchmark) and one column per
    proxy; ``df.attrs["correlation"]`` maps each proxy to its Spearman and Kendall and
    ``df.attrs["seconds"]`` holds the scoring time of each row. One model per architecture serves
    every proxy (:func:`score_all`).

    ``on_row(i, row)`` is called after each architecture with the row (and its ``seconds``), e.g.
    to save partial results."""
    import time

    from nasbench_lab.progress import progress as tqdm

    sp = spaces.get(space) if isinstance(space, str) else space
    bad = [n for n in proxy_names if n not in names()]
    if bad:
        raise ValueError(f"proxy_names: unknown {bad}; valid names: {', '.join(names())}")
    _check_network(network, sp)
    chosen = _archs(sp, benchmark, archs, seed)
    rows = []
    for i, a in enumerate(tqdm(chosen, desc="proxies", unit="arch", disable=not progress, leave=False)):
        t0 = time.perf_counter()
        vals = score_all(proxy_names, sp, a, batch, seed=seed, network=network)
        row = {"arch": str(a), "truth": benchmark.query(a) if benchmark is not None else np.nan, **vals,
               "seconds": time.perf_counter() - t0}
        rows.append(row)
        if on_row is not None:
            on_row(i, row)
    df = pd.DataFrame(rows, columns=["arch", "truth", *proxy_names])
    df.attrs["seconds"] = [r["seconds"] for r in rows]
    if benchmark is not None:
        df.attrs["correlation"] = correlations(df, proxy_names)
    return df


def correlations(df: pd.DataFrame, proxy_names: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Spearman and Kendall of each proxy column of ``df`` against its ``truth`` column."""
    proxy_names = [c for c in df.columns if c in names()] if proxy_names is None else list(proxy_names)
    return {n: {"spearman": metrics.spearman(df[n], df["truth"]), "kendall": metrics.kendall_tau(df[n], df["truth"])}
            for n in proxy_names}
