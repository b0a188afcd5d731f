"""Ranking metrics that judge a NAS method against ground truth (scipy does the statistics)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy import stats


def kendall_tau(estimate: Sequence[float], truth: Sequence[float]) -> float:
    """Kendall's tau-b between two score vectors (NaN when either is constant)."""
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    if len(est) != len(tru):
        raise ValueError(f"kendall_tau: lengths differ ({len(est)} vs {len(tru)})")
    if len(est) < 2:
        return float("nan")
    return float(stats.kendalltau(est, tru).statistic)


def spearman(estimate: Sequence[float], truth: Sequence[float]) -> float:
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    if len(est) < 2:
        return float("nan")
    return float(stats.spearmanr(est, tru).statistic)


def top_k_tau(estimate: Sequence[float], truth: Sequence[float], k: int = 10) -> float:
    """Kendall's tau-b among the true top-``k``: every architecture whose truth is at least the
    ``k``-th best value, so ties at the boundary are all in (a small ground truth ties often: on
    pooling/digits 7 architectures share places 8-14). Cutting at exactly ``k`` rows would make the
    value depend on the order of the rows, and two views of one run would disagree."""
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    if len(tru) == 0:
        return float("nan")
    kth = np.sort(tru)[::-1][min(int(k), len(tru)) - 1]
    idx = tru >= kth
    return kendall_tau(est[idx], tru[idx])


def top_k_overlap(estimate: Sequence[float], truth: Sequence[float], k: int = 10) -> float:
    """Fraction of the true top-``k`` that the estimate also puts in its top-``k``."""
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    k = min(k, len(est))
    a = set(np.argsort(-est, kind="stable")[:k].tolist())
    b = set(np.argsort(-tru, kind="stable")[:k].tolist())
    return len(a & b) / k if k else float("nan")


def regret(optimum: float, best_so_far: Sequence[float]) -> np.ndarray:
    """Optimum minus the best value found so far, per query."""
    return optimum - np.maximum.accumulate(np.asarray(best_so_far, float))


def ranking_summary(estimate: Sequence[float], truth: Sequence[float], k: int = 10) -> dict[str, float]:
    """Kendall tau (all and top-k), Spearman, top-k overlap and the true rank of the estimated best."""
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    true_rank = stats.rankdata(-tru, method="min")
    return {
        "kendall_tau": kendall_tau(est, tru),
        f"kendall_tau_top{k}": top_k_tau(est, tru, k),
        "spearman": spearman(est, tru),
        f"top{k}_overlap": top_k_overlap(est, tru, k),
        "selected_true_rank": int(true_rank[int(np.argmax(est))]) if len(est) else -1,
        "n": int(len(est)),
    }


#: how the summary keys of :func:`ranking_summary` and the trainers read in tables and dashboards
SUMMARY_LABELS = {
    "kendall_tau": "Kendall τ (all ranked)",
    "spearman": "Spearman ρ",
    "selected": "selected (best estimate)",
    "selected_true_rank": "selected: true rank (ranked set)",
    "selected_truth_rank_in_space": "selected: true rank (space)",
    "selected_tied": "selected: tied with",
    "n": "architectures ranked",
    "benchmark": "ground truth",
    "steps": "steps",
}


def summary_label(key: str) -> str:
    """A readable, consistent label for a summary key (``kendall_tau_top10`` -> "Kendall τ (true top-10)")."""
    if key in SUMMARY_LABELS:
        return SUMMARY_LABELS[key]
    if m := re.fullmatch(r"kendall_tau_top(\d+)", key):
        return f"Kendall τ (true top-{m.group(1)})"
    if m := re.fullmatch(r"top(\d+)_overlap", key):
        return f"top-{m.group(1)} overlap"
    return key.replace("_", " ")
