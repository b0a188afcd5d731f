"""Bayesian optimisation with an ensemble of small MLP predictors (BANANAS-style, 004 §3.3).

- Surrogate: ``ensemble`` MLPs (one-hot encoding -> standardised accuracy), trained together as
  one batched torch model with full-batch Adam; each member has its own initialisation and its
  own bootstrap resample of the data. Mean and standard deviation across members are the
  prediction and its uncertainty.
- Acquisition: expected improvement over the best observed value (``acquisition="ei"``) or the
  upper confidence bound ``mean + kappa * std`` (``"ucb"``).
- Acquisition optimisation by mutation (the common NAS practice): candidates are all
  neighbours of the ``n_parents`` best architectures so far, their mutations, and
  ``n_random`` uniform samples; already evaluated architectures are excluded.
- The first ``n_init`` queries are uniform. The ensemble is refitted every ``refit_every``
  results (warm-started from its previous weights after the first fit), and the best
  ``refit_every`` candidates by acquisition form the queue of the next queries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from scipy.stats import norm

from nasbench_lab.search.strategies.base import Strategy
from nasbench_lab.spaces import Arch, SearchSpace


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: on tensors this small, waking the thread pool costs more than
    the arithmetic (10-50x slower on a busy machine). The previous setting is restored."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


class MLPEnsemble:
    """``m`` independent MLPs evaluated as one batched network (tiny tensors, no Python loop)."""

    def __init__(self, d_in: int, members: int = 5, hidden: int = 32, layers: int = 2, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(int(seed))
        dims = [d_in] + [hidden] * layers + [1]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for a, b in zip(dims[:-1], dims[1:]):
            bound = 1.0 / np.sqrt(a)
            self.weights.append(((torch.rand(members, a, b, generator=g) * 2 - 1) * bound).requires_grad_())
            self.biases.append(((torch.rand(members, 1, b, generator=g) * 2 - 1) * bound).requires_grad_())
        self.params = self.weights + self.biases
        self.opt = torch.optim.Adam(self.params, lr=1e-2, weight_decay=1e-4, foreach=True)
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (members, n, d) or (n, d) shared; returns (members, n)."""
        h = x if x.dim() == 3 else x.expand(self.members, *x.shape)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int, rng: np.random.Generator) -> None:
        n = len(y)
        idx = rng.integers(0, n, size=(self.members, n))  # one bootstrap resample per member
        xb = torch.as_tensor(x[idx], dtype=torch.float32)
        yb = torch.as_tensor(y[idx], dtype=torch.float32)
        with single_thread():
            for _ in range(epochs):
                self.opt.zero_grad(set_to_none=True)
                loss = ((self.forward(xb) - yb) ** 2).mean()
                loss.backward()
                self.opt.step()

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with single_thread():
            out = self.forward(torch.as_tensor(x, dtype=torch.float32)).numpy()
        return out.mean(0), out.std(0)

    def state(self) -> dict[str, Any]:
        return {"params": [p.detach().clone() for p in self.params], "opt": self.opt.state_dict()}

    def load(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, v in zip(self.params, state["params"]):
                p.copy_(v)
        self.opt.load_state_dict(state["opt"])


class BayesianOptimization(Strategy):
    """See the module docstring. Options: ``n_init``, ``ensemble``, ``hidden``, ``epochs``
    (first fit; warm refits use a quarter), ``acquisition`` ("ei"/"ucb"), ``kappa``, ``xi``,
    ``refit_every``, ``n_parents``, ``n_random``."""

    name = "bo"
    _state_keys = ("queue", "fits", "predictions", "y_mean", "y_std")

    def __init__(self, space: SearchSpace | str, seed: int = 0, n_init: int = 10, ensemble: int = 5,
                 hidden: int = 32, epochs: int = 200, acquisition: str = "ei", kappa: float = 2.0,
                 xi: float = 0.0, refit_every: int = 5, n_parents: int = 10, n_random: int = 200) -> None:
        super().__init__(space, seed)
        if acquisition not in ("ei", "ucb"):
            raise ValueError(f"bo: acquisition must be 'ei' (expected improvement) or 'ucb', got {acquisition!r}")
        for key, val in (("n_init", n_init), ("ensemble", ensemble), ("hidden", hidden), ("epochs", epochs),
                         ("refit_every", refit_every), ("n_parents", n_parents)):
            if int(val) < 1:
                raise ValueError(f"bo: {key} must be a positive integer, got {val!r}")
        self._options = {"n_init": int(n_init), "ensemble": int(ensemble), "hidden": int(hidden),
                         "epochs": int(epochs), "acquisition": acquisition, "kappa": float(kappa), "xi": float(xi),
                         "refit_every": int(refit_every), "n_parents": int(n_parents), "n_random": int(n_random)}
        self.__dict__.update(self._options)
        self.queue: list[tuple[Arch, float, float]] = []  # (arch, predicted mean, std) in acc units
        self.fits = 0
        #: out-of-sample predictions: [arch, mean, std, observed acc or None], most recent last
        self.predictions: list[list[Any]] = []
        self.y_mean, self.y_std = 0.0, 1.0
        self.model: MLPEnsemble | None = None
        self._asked: dict[Arch, int] = {}  # arch -> index in predictions

    # ------------------------------------------------------------------ the surrogate
    def _fit(self) -> None:
        archs = list(self.seen)
        y = np.array([self.seen[a] for a in archs])
        self.y_mean, self.y_std = float(y.mean()), float(y.std() or 1.0)
        x = self.cache.onehots(archs)
        first = self.model is None
        if first:
            self.model = MLPEnsemble(x.shape[1], self.ensemble, self.hidden, seed=int(self.rng.integers(2**31)))
        self.model.fit(x, (y - self.y_mean) / self.y_std, self.epochs if first else max(1, self.epochs // 4), self.rng)
        self.fits += 1

    def predict(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy (mean, std across the ensemble) in the evaluator's units."""
        if self.model is None:
            raise ValueError("bo: the predictor is fitted after the first n_init results")
        mu, sd = self.model.predict(self.cache.onehots(archs))
        return mu * self.y_std + self.y_mean, sd * self.y_std

    def acquisition_values(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        if self.acquisition == "ucb":
            return mean + self.kappa * std
        best = self.best_acc + self.xi
        s = np.maximum(std, 1e-9)
        z = (mean - best) / s
        return (mean - best) * norm.cdf(z) + s * norm.pdf(z)

    def _candidates(self) -> list[Arch]:
        ranked = sorted(self.seen, key=self.seen.__getitem__, reverse=True)[: self.n_parents]
        cand: dict[Arch, None] = {}
        for p in ranked:
            for nb in self.cache.neighbours(p):
                cand[nb] = None
                cand[self.cache.mutate(nb, self.rng)] = None  # two-step mutations widen the pool
        for _ in range(self.n_random):
            cand[self.cache.sample(self.rng)] = None
        return [a for a in cand if a not in self.seen]

    def _propose(self) -> None:
        self._fit()
        cand = self._candidates()
        if not cand:
            return
        mean, std = self.predict(cand)
        acq = self.acquisition_values(mean, std)
        order = np.argsort(-acq, kind="stable")[: self.refit_every]
        self.queue = [(cand[i], float(mean[i]), float(std[i])) for i in order][::-1]  # pop() from the end

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Arch:
        self.fidelity = None
        if self.n_told < self.n_init or len(self.seen) < 2:
            return self._unseen_sample()
        while self.queue and self.queue[-1][0] in self.seen:
            self.queue.pop()
        if not self.queue:
            self._propose()
        if not self.queue:
            return self._unseen_sample()
        arch, mu, sd = self.queue.pop()
        self._asked[arch] = len(self.predictions)
        self.predictions.append([arch, mu, sd, None])
        return arch

    def _observe(self, arch: Arch, acc: float, fidelity: float | None) -> None:
        i = self._asked.pop(arch, None)
        if i is not None and i < len(self.predictions):
            self.predictions[i][3] = acc
        if len(self.predictions) > 500:  # keep the view's data bounded
            drop = len(self.predictions) - 500
            self.predictions = self.predictions[drop:]
            self._asked = {a: j - drop for a, j in self._asked.items() if j >= drop}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["model"] = self.model.state() if self.model is not None else None
        state["asked"] = dict(self._asked)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._asked = dict(state.get("asked", {}))
        self.model = None
        if state.get("model") is not None:
            params = state["model"]["params"]
            self.model = MLPEnsemble(params[0].shape[1], params[0].shape[0], params[0].shape[2],
                                     layers=len(params) // 2 - 1)
            self.model.load(state["model"])

    def snapshot(self) -> dict[str, Any]:
        done = [p for p in self.predictions if p[3] is not None][-200:]
        return {**super().snapshot(), "panel": "nasbench_lab.viz.search:predictor_panel", "fits": self.fits,
                "pred_arch": [str(p[0]) for p in done], "pred_mean": [float(p[1]) for p in done],
                "pred_std": [float(p[2]) for p in done], "observed": [float(p[3]) for p in done]}
