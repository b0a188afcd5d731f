"""Rank architectures with a trained supernet and compare with ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
from tqdm.auto import tqdm

from nasbench_lab import benchmarks as bm
from nasbench_lab.metrics import ranking_summary
from nasbench_lab.spaces import Arch

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer


def find_benchmark(space: str, dataset: str) -> bm.Benchmark | None:
    """Ground truth for (space, dataset) if one exists (shipped or built by ``groundtruth``)."""
    try:
        return bm.get(space, dataset=dataset)
    except ValueError:
        return None


def rank_supernet(trainer: Trainer, archs: Sequence[Arch] | None = None,
                  benchmark: bm.Benchmark | None | bool = None, k: int = 10,
                  progress: bool = False, max_images: int | None = None) -> pd.DataFrame:
    """Supernet accuracy of every architecture (or ``archs``), with truth and ranks when known.

    Columns: arch, estimate (val accuracy %, after per-architecture BN recalibration),
    est_rank, and with a benchmark: truth, truth_rank. ``df.attrs["summary"]`` holds the Kendall
    tau (all and top-k), Spearman, top-k overlap and the true rank of the estimated best.
    """
    if archs is None:
        archs = trainer.sample_archs(trainer.cfg.rank_sample, seed=trainer.cfg.seed)
    if benchmark is None:
        benchmark = find_benchmark(trainer.cfg.space, trainer.cfg.dataset)
    if max_images is None:
        max_images = trainer.cfg.rank_images
    rows = []
    for a in tqdm(archs, desc="ranking", disable=not progress, leave=False):
        rows.append({"arch": str(a), "estimate": trainer.evaluate(a, max_images=max_images)})
    df = pd.DataFrame(rows)
    df["est_rank"] = df["estimate"].rank(ascending=False, method="min").astype(int)
    selected = df.loc[df["estimate"].idxmax(), "arch"] if len(df) else None
    if benchmark:
        # a partial table (a quick ground truth) covers only some architectures: compare on those
        known = [a in benchmark for a in df["arch"]]
        df["truth"] = [benchmark.query(a) if ok else float("nan") for a, ok in zip(df["arch"], known)]
        df["truth_rank"] = pd.array([benchmark.rank(a) if ok else None for a, ok in zip(df["arch"], known)],
                                    dtype="Int64")
        both = df[known]
        df.attrs["summary"] = ranking_summary(both["estimate"], both["truth"], k=k)
        df.attrs["summary"]["benchmark"] = f"{benchmark.space}/{benchmark.dataset}"
        if selected is not None and selected in benchmark:
            df.attrs["summary"]["selected_truth_rank_in_space"] = int(benchmark.rank(selected))
    else:
        df.attrs["summary"] = {"n": len(df)}
    df.attrs["selected"] = selected
    return df.sort_values("estimate", ascending=False, kind="stable").reset_index(drop=True)
