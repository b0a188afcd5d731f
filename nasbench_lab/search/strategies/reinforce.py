"""REINFORCE with a moving-average baseline over per-level categorical logits (004 §3.2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nasbench_lab.search.strategies.base import Strategy
from nasbench_lab.spaces import Arch, SearchSpace


class Reinforce(Strategy):
    """A factorised policy: one vector of logits per decision level.

    ``p(a) = prod_l softmax(theta_l)[a_l]`` where level ``l``'s softmax runs over the genes
    valid after ``a_<l`` (``space.level_options``), so constrained spaces stay valid. After each
    result: advantage ``A = (acc - b) / s`` with ``b`` the exponential moving average of the
    accuracies (decay ``baseline_decay``, the baseline) and ``s`` the moving standard deviation
    (scale-free rewards: accuracies in % and proxy scores alike); then one ascent step on
    ``A * grad log p(a)`` (``grad`` for level ``l`` = onehot(a_l) - softmax over the valid genes)
    with Adam or plain SGD, in numpy.
    """

    name = "reinforce"
    _state_keys = ("logits", "baseline", "spread", "m", "v", "t", "history")

    def __init__(self, space: SearchSpace | str, seed: int = 0, lr: float = 0.05, optimizer: str = "adam",
                 baseline_decay: float = 0.9, record_every: int = 5) -> None:
        super().__init__(space, seed)
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"reinforce: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        if not 0 <= baseline_decay < 1 or lr <= 0:
            raise ValueError(f"reinforce: expected lr > 0 and 0 <= baseline_decay < 1, got lr={lr!r}, "
                             f"baseline_decay={baseline_decay!r} (e.g. lr=0.05, baseline_decay=0.9)")
        self.lr, self.optimizer, self.beta = float(lr), optimizer, float(baseline_decay)
        self.record_every = max(1, int(record_every))
        self._options = {"lr": self.lr, "optimizer": optimizer, "baseline_decay": self.beta,
                         "record_every": self.record_every}
        self.level_genes = [np.asarray(g) for g in self.space.level_sizes]
        self._pos = [{int(g): i for i, g in enumerate(gs)} for gs in self.level_genes]
        self._product = bool(getattr(self.space, "product_space", False))
        self.logits = [np.zeros(len(g)) for g in self.level_genes]
        self.baseline: float | None = None
        self.spread = 0.0
        self.m = [np.zeros_like(x) for x in self.logits]
        self.v = [np.zeros_like(x) for x in self.logits]
        self.t = 0
        #: (n_told, probabilities per level) every ``record_every`` results, for the heatmap
        self.history: list[tuple[int, list[list[float]]]] = [(0, self.probabilities())]

    def _mask(self, level: int, prefix: tuple[int, ...]) -> np.ndarray:
        if self._product:
            return np.ones(len(self.level_genes[level]), dtype=bool)
        valid = set(self.space.level_options(prefix))
        return np.array([int(g) in valid for g in self.level_genes[level]])

    @staticmethod
    def _softmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        z = np.where(mask, x, -np.inf)
        z = np.exp(z - z[mask].max())
        return z / z.sum()

    def ask(self) -> Arch:
        self.fidelity = None
        genes: list[int] = []
        for level in range(self.space.num_levels):
            p = self._softmax(self.logits[level], self._mask(level, tuple(genes)))
            i = int(np.searchsorted(np.cumsum(p), self.rng.random() * p.sum(), side="right"))
            genes.append(int(self.level_genes[level][min(i, len(p) - 1)]))
        return self.space.arch(genes)

    def _observe(self, arch: Arch, acc: float, fidelity: float | None) -> None:
        if self.baseline is None:
            self.baseline, self.spread = acc, 0.0
        adv = (acc - self.baseline) / (np.sqrt(self.spread) + 1e-8) if self.spread > 0 else 0.0
        # update the baseline after computing the advantage (the baseline must not see acc)
        diff = acc - self.baseline
        self.baseline += (1 - self.beta) * diff
        self.spread = self.beta * (self.spread + (1 - self.beta) * diff * diff)
        if adv != 0.0:
            self.t += 1
            for level, g in enumerate(arch.genes):
                p = self._softmax(self.logits[level], self._mask(level, arch.genes[:level]))
                grad = -p
                grad[self._pos[level][int(g)]] += 1.0
                grad *= adv
                if self.optimizer == "sgd":
                    self.logits[level] += self.lr * grad
                else:  # Adam (ascent), bias-corrected
                    self.m[level] = 0.9 * self.m[level] + 0.1 * grad
                    self.v[level] = 0.999 * self.v[level] + 0.001 * grad * grad
                    mh = self.m[level] / (1 - 0.9 ** self.t)
                    vh = self.v[level] / (1 - 0.999 ** self.t)
                    self.logits[level] += self.lr * mh / (np.sqrt(vh) + 1e-8)
        if self.n_told % self.record_every == 0:
            self.history.append((self.n_told, self.probabilities()))

    def probabilities(self) -> list[list[float]]:
        """Per-level softmax of the logits over every gene of that level (unconditional view)."""
        out = []
        for x in self.logits:
            e = np.exp(x - x.max())
            out.append((e / e.sum()).tolist())
        return out

    def snapshot(self) -> dict[str, Any]:
        sp = self.space
        return {**super().snapshot(), "panel": "nasbench_lab.viz.search:reinforce_panel",
                "levels": [sp.level_name(i) for i in range(sp.num_levels)],
                "options": [[sp.option_label(i, int(g)) for g in gs] for i, gs in enumerate(self.level_genes)],
                "probs": self.probabilities(),
                "history_steps": [int(s) for s, _ in self.history],
                "history": [p for _, p in self.history],
                "baseline": float(self.baseline) if self.baseline is not None else None}
