"""Boltzmann (softmax) exploration over predicted accuracy with an annealed temperature.

The rule, from the thesis' Boltzmann Softmax Exploration (003 §2.2, eq 2.6, and §3.3.3):
``p(c) = softmax(tau * a_c)`` with ``tau`` the *inverse* temperature, increased linearly during
the search so sampling moves from almost uniform (exploration) to almost greedy (exploitation).
A black-box search cannot know ``a_c`` for unseen architectures, so here:

- ``a_c`` is *predicted*: a ridge regression (scikit-learn) on the one-hot encodings of the
  architectures observed so far (an additive per-decision model), standardised over the
  candidates so that ``tau`` has the same meaning for any accuracy scale;
- candidates are every unevaluated architecture of a numerable space, else ``n_candidates``
  uniform samples plus the neighbours of the ``n_parents`` best observed;
- ``tau_t = tau_start + (tau_end - tau_start) * min(1, t / anneal_steps)``, ``t`` = results
  told after the first ``n_init`` uniform queries (defaults 1 -> 10 over 300 queries).

Architectures already evaluated are not proposed again (their observed accuracy is what the
predictor learns from), so a deterministic evaluator never answers the same query twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import Ridge

from nasbench_lab.search.strategies.base import Strategy
from nasbench_lab.spaces import Arch, SearchSpace


class BoltzmannExploration(Strategy):
    name = "boltzmann"
    _state_keys = ("last_tau", "last_entropy")

    def __init__(self, space: SearchSpace | str, seed: int = 0, n_init: int = 10, tau_start: float = 1.0,
                 tau_end: float = 10.0, anneal_steps: int = 300, alpha: float = 1.0,
                 n_candidates: int = 2000, n_parents: int = 10) -> None:
        super().__init__(space, seed)
        if tau_start < 0 or tau_end < 0 or int(anneal_steps) < 1 or int(n_init) < 1:
            raise ValueError("boltzmann: expected tau_start, tau_end >= 0 and positive n_init, anneal_steps "
                             f"(got {tau_start!r}, {tau_end!r}, {n_init!r}, {anneal_steps!r}; e.g. 1, 10, 10, 300)")
        self._options = {"n_init": int(n_init), "tau_start": float(tau_start), "tau_end": float(tau_end),
                         "anneal_steps": int(anneal_steps), "alpha": float(alpha),
                         "n_candidates": int(n_candidates), "n_parents": int(n_parents)}
        self.__dict__.update(self._options)
        self.last_tau = float(tau_start)
        self.last_entropy = float("nan")

    def tau(self) -> float:
        t = max(0, self.n_told - self.n_init)
        return self.tau_start + (self.tau_end - self.tau_start) * min(1.0, t / self.anneal_steps)

    def _candidates(self) -> tuple[list[Arch] | tuple[Arch, ...], np.ndarray]:
        """Large spaces: uniform samples plus neighbours of the best, minus the evaluated ones."""
        cand: dict[Arch, None] = {}
        for p in sorted(self.seen, key=self.seen.__getitem__, reverse=True)[: self.n_parents]:
            cand.update(dict.fromkeys(self.cache.neighbours(p)))
        for _ in range(self.n_candidates):
            cand[self.cache.sample(self.rng)] = None
        archs = [a for a in cand if a not in self.seen]
        return archs, self.cache.onehots(archs)

    def ask(self) -> Arch:
        self.fidelity = None
        if self.n_told < self.n_init or len(self.seen) < 2:
            return self._unseen_sample()
        seen = list(self.seen)
        model = Ridge(alpha=self.alpha).fit(self.cache.onehots(seen), [self.seen[a] for a in seen])
        if self.cache.all is not None:  # every unevaluated architecture of the space
            pred = self.cache.onehot_all() @ model.coef_ + model.intercept_
            keep = np.ones(len(pred), dtype=bool)
            keep[[self.cache.index[a] for a in seen]] = False
            idx = np.flatnonzero(keep)
            if not len(idx):
                return self.cache.sample(self.rng)
            pred = pred[idx]
            pick = lambda i: self.cache.all[idx[i]]  # noqa: E731
        else:
            archs, x = self._candidates()
            if not archs:
                return self.cache.sample(self.rng)
            pred = model.predict(x)
            pick = archs.__getitem__
        z = (pred - pred.mean()) / (pred.std() or 1.0)
        self.last_tau = tau = self.tau()
        logits = tau * z
        p = np.exp(logits - logits.max())
        p /= p.sum()
        self.last_entropy = float(-(p * np.log(p + 1e-300)).sum())
        return pick(int(self.rng.choice(len(p), p=p)))

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "tau": float(self.last_tau), "entropy": self.last_entropy}
