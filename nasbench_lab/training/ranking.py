"""Rank architectures with a trained supernet and compare with ground truth.

Ties: an accuracy on ``n`` validation images moves in steps of ``100/n`` %, so with
``rank_images=256`` many architectures share one estimate and the "best" was an arbitrary pick.
The supernet's mean validation loss on the same images (computed in the same forward pass, so
free) breaks them: architectures are ordered by accuracy, then by lower loss. Only equal
accuracy *and* equal loss is a tie (``est_rank`` shared, ``tied`` > 0), and it is reported as one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nasbench_lab import benchmarks as bm
from nasbench_lab.metrics import ranking_summary
from nasbench_lab.progress import progress as tqdm
from nasbench_lab.spaces import Arch

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer


def find_benchmark(space: str, dataset: str) -> bm.Benchmark | None:
    """Ground truth for (space, dataset) if one exists (shipped or built by ``groundtruth``)."""
    try:
        return bm.get(space, dataset=dataset)
    except ValueError:
        return None


def tie_broken_rank(estimate: Sequence[float], val_loss: Sequence[float] | None = None) -> np.ndarray:
    """Rank 1 = best: higher ``estimate`` first, then lower ``val_loss``; only rows equal in both
    share a rank (the lowest of their places, like ``rankdata(method="min")``)."""
    est = np.asarray(estimate, float)
    loss = np.zeros_like(est) if val_loss is None else np.nan_to_num(np.asarray(val_loss, float), nan=np.inf)
    order = np.lexsort((loss, -est))  # the last key is the primary one
    ranks = np.empty(len(est), dtype=int)
    for pos, i in enumerate(order):
        prev = order[pos - 1] if pos else None
        same = prev is not None and est[i] == est[prev] and loss[i] == loss[prev]
        ranks[i] = ranks[prev] if same else pos + 1
    return ranks


def rank_supernet(trainer: Trainer, archs: Sequence[Arch] | None = None,
                  benchmark: bm.Benchmark | None | bool = None, k: int = 10,
                  progress: bool = False, max_images: int | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Supernet accuracy of every architecture (or ``archs``), with truth and ranks when known.

    Columns: arch, estimate (val accuracy %, after per-architecture BN recalibration), val_loss
    (mean cross-entropy on the same images), est_rank (by estimate, ties broken by val_loss, see
    the module docstring), tied (how many others share that rank: 0 almost always), and with a
    benchmark: truth, truth_rank. ``df.attrs["summary"]`` holds the Kendall tau (all and top-k),
    Spearman, top-k overlap and the true rank of the estimated best, all on that tie-broken
    order, and ``selected_tied`` (how many others tie with the pick). ``on_progress(done, total)``
    is called before the first and after every architecture (the dashboards' ranking bar).
    """
    if archs is None:
        archs = trainer.sample_archs(trainer.cfg.rank_sample, seed=trainer.cfg.seed)
    if benchmark is None:
        benchmark = find_benchmark(trainer.cfg.space, trainer.cfg.dataset)
    if max_images is None:
        max_images = trainer.cfg.rank_images
    archs = list(archs)
    rows = []
    if on_progress is not None:
        on_progress(0, len(archs))
    for i, a in enumerate(tqdm(archs, desc="ranking", disable=not progress, leave=False)):
        acc, loss = trainer.evaluate_metrics(a, max_images=max_images)
        rows.append({"arch": str(a), "estimate": acc, "val_loss": loss})
        if on_progress is not None:
            on_progress(i + 1, len(archs))
    df = pd.DataFrame(rows, columns=["arch", "estimate", "val_loss"])
    df["est_rank"] = tie_broken_rank(df["estimate"], df["val_loss"])
    df["tied"] = df.groupby("est_rank")["arch"].transform("size").astype(int) - 1
    score = -df["est_rank"].astype(float)  # the order every summary number is computed on
    best = int(np.argmax(score.to_numpy())) if len(df) else None
    selected = df["arch"].iloc[best] if best is not None else None
    if benchmark:
        # a partial table (a quick ground truth) covers only some architectures: compare on those
        known = [a in benchmark for a in df["arch"]]
        df["truth"] = [benchmark.query(a) if ok else float("nan") for a, ok in zip(df["arch"], known)]
        df["truth_rank"] = pd.array([benchmark.rank(a) if ok else None for a, ok in zip(df["arch"], known)],
                                    dtype="Int64")
        mask = np.asarray(known, bool)
        df.attrs["summary"] = ranking_summary(score[mask], df["truth"][mask], k=k)
        df.attrs["summary"]["benchmark"] = f"{benchmark.space}/{benchmark.dataset}"
        if selected is not None and selected in benchmark:
            df.attrs["summary"]["selected_truth_rank_in_space"] = int(benchmark.rank(selected))
    else:
        df.attrs["summary"] = {"n": len(df)}
    if best is not None:
        df.attrs["summary"]["selected_tied"] = int(df["tied"].iloc[best])
    df.attrs["selected"] = selected
    return df.sort_values("est_rank", kind="stable").reset_index(drop=True)
