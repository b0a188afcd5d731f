"""Balanced mixture of supernets (thesis §2.2.2, eq 2.2-2.3).

``M`` independent weight sets share the work: each step draws a configuration ``c ~ U(C)`` and a
model ``m ~ p(m|c)``, trains ``f_c(., w_m)`` and smooths its validation-minibatch accuracy into
``a_{c,m}`` (eq 2.2, factor ``beta``). ``p(c, m) = softmax(a / tau)`` over all pairs (eq 2.3) is
made to have uniform marginals by Iterative Proportional Fitting (rows and columns normalised in
turn until ``KL(p(m) || U) < ipf_tol``, 1e-4 in the thesis), so every configuration and every
model gets the same share of training while each model specialises. ``tau`` decreases linearly
to ``1 / (100 M)``. The final choice evaluates each configuration with its most probable model
(highest ``p(m|c)``).

The thesis' IPF has no round cap; ours stops at ``ipf_max_iter`` rounds (10,000 by default) so a
pathological joint cannot hang a step. Stopping there leaves ``p(m)`` unbalanced (measured on
36 layouts, rewards spread uniformly over [0, 1], tau = 1/(100 M): after 1,000 rounds KL is
1.2e-3 at M = 32 and 2.6e-3 at M = 64, p(m) up to 11 % off uniform; the threshold is reached in
1,746 and 2,695 rounds), so the sampler warns (:meth:`Sampler.warn`: a log line and a
``"warning"`` event, once each time the fits start stopping at the cap) and counts those fits
(snapshot ``ipf.capped``).

Budget (thesis §2.4: "the number of training epochs is set proportional to number of models"):
at an equal number of steps each of the ``M`` supernets gets about ``1/M`` of them;
``compare-samplers --budget-rule per-model`` (:func:`~nasbench_lab.training.samplers.compare.budget_steps`)
trains the mixture ``M`` times as many steps, as the thesis does.

The Trainer only knows ``net(x, arch)``: :meth:`MixtureSampler.wrap_supernet` replaces the
supernet by a :class:`MixtureSupernet` holding the ``M`` supernets, whose forward routes each call
through the sampler: the architecture just sampled goes to the model drawn with it, any other
call (ranking, outputs, evaluation) to the model with the highest ``p(m|c)``.

With a budget the configurations ``C`` are the in-band architectures only (``c ~ U(C)`` is then
uniform over the band, and the balanced marginals are over the band); an out-of-band
architecture (ranking the whole space) is routed to model 0.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
from scipy.special import logsumexp

from nasbench_lab import validation as V
from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.budget import Budget
from nasbench_lab.training.samplers.base import Sampler, Selection
from nasbench_lab.training.samplers.boltzmann import ema, neutral_fill
from nasbench_lab.training.samplers.common import (
    Progress,
    Windows,
    check_fraction,
    check_positive,
    check_unit,
    choose,
    linear,
    reset_parameters,
)

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer


def kl_to_uniform(p: np.ndarray) -> float:
    """``KL(p || U)`` of a probability vector (NaN when ``p`` is not finite: never "converged")."""
    p = np.asarray(p, float)
    if not np.isfinite(p).all() or p.sum() <= 0:
        return float("nan")
    p = p / p.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] * len(p))))


def ipf(P: np.ndarray, tol: float = 1e-4, max_iter: int = 10000) -> tuple[np.ndarray, int, float]:
    """Iterative Proportional Fitting of a joint ``p(c, m)`` to uniform marginals.

    Rows are scaled to ``1/C`` and columns to ``1/M`` in turn until ``KL(p(m) || U) < tol``
    (checked after each row step, so ``p(c)`` is exactly uniform on return). Returns the fitted
    matrix, the number of row/column rounds and the final KL. Works in log space
    (:func:`ipf_log`), so a concentrated matrix does not underflow.
    """
    P = np.asarray(P, float)
    if P.ndim != 2 or not np.isfinite(P).all() or (P < 0).any() or (P.sum(1) <= 0).any() or (P.sum(0) <= 0).any():
        raise ValueError(f"P: expected a finite, non-negative (C, M) joint probability matrix with no empty row "
                         f"or column, got shape {P.shape}")
    with np.errstate(divide="ignore"):
        logP, it, kl = ipf_log(np.log(P), tol, max_iter)
    return np.exp(logP), it, kl


def _lse(L: np.ndarray, axis: int) -> np.ndarray:
    """``log(sum(exp(L), axis))`` with the axis kept: scipy's ``logsumexp`` without its checks,
    which cost more than the sum on these small matrices (IPF calls it thousands of times)."""
    m = L.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # an all -inf line stays -inf (then caught as not finite)
    with np.errstate(divide="ignore"):
        return m + np.log(np.exp(L - m).sum(axis=axis, keepdims=True))


def ipf_log(logits: np.ndarray, tol: float = 1e-4, max_iter: int = 10000) -> tuple[np.ndarray, int, float]:
    """IPF on unnormalised log-probabilities (eq 2.3's ``a / tau``): the fitted ``log p(c, m)``.

    Each scaling is a log-sum-exp, so no row underflows to zeros however small ``tau`` is (in
    linear space, ``softmax(a / tau)`` with ``tau = 1/(100 M)`` and M >= 16 leaves whole rows at 0,
    whose 0/0 is NaN). Raises when the result is not finite. Returns ``(log p, rounds, KL)``: a
    KL still >= ``tol`` means the fit stopped at ``max_iter`` rounds, unbalanced.
    """
    L = np.asarray(logits, float)
    if L.ndim != 2 or np.isnan(L).any() or np.isposinf(L).any():
        raise ValueError(f"logits: expected a (C, M) matrix of finite log-probabilities, got shape {L.shape}")
    max_iter = V.positive_int("max_iter", max_iter, example=10000)
    C, M = L.shape
    log_c, log_m = np.log(C), np.log(M)
    kl = float("inf")
    rounds = 0
    while True:
        rounds += 1
        L = L - (_lse(L, 1) + log_c)  # rows to 1/C
        col = _lse(L, 0)  # log p(m), also the column scaling below
        kl = kl_to_uniform(np.exp(col.ravel()))
        if kl < tol or rounds >= max_iter:
            break
        L = L - (col + log_m)  # columns to 1/M
    if not np.isfinite(kl) or np.isnan(L).any():
        raise ValueError("ipf: the fitted joint is not finite (a row or column with no probability mass)")
    return L, rounds, kl


class MixtureSupernet(nn.Module):
    """``M`` supernets behind one ``forward(x, arch)``; ``router(arch) -> m`` picks the weights."""

    def __init__(self, net: nn.Module, models: int, router: Callable[[Any], int] | None = None) -> None:
        super().__init__()
        copies = []
        for _ in range(models - 1):
            c = copy.deepcopy(net)
            reset_parameters(c)  # independent weight sets: a fresh initialisation each (torch's seeded RNG)
            copies.append(c)
        self.nets = nn.ModuleList([net, *copies])
        self.router = router

    def forward(self, x: torch.Tensor, arch: Any = None, model: int | None = None) -> torch.Tensor:
        m = model if model is not None else (self.router(arch) if self.router is not None else 0)
        return self.nets[m](x, arch)


class MixtureSampler(Sampler):
    """Balanced mixture of ``models`` supernets over a numerable space."""

    name = "mixture"

    def __init__(self, space: SearchSpace, seed: int = 0, models: int = 4, beta: float = 0.95,
                 tau_start: float = 1.0, tau_end: float | None = None, ipf_tol: float = 1e-4,
                 ipf_max_iter: int = 10000, warmup: float = 0.0, total_steps: int | None = None,
                 budget: str | dict | Budget | None = None) -> None:
        super().__init__(space, seed, budget=budget)
        if not space.numerable:
            raise ValueError(f"mixture: space {space.name!r} has {space.size:.3g} configurations; the joint "
                             f"p(c, m) needs a numerable space (e.g. 'pooling')")
        if int(models) < 1:
            raise ValueError(f"models: expected a positive number of supernets, got {models!r} (e.g. models=4)")
        self.models = int(models)
        self.beta = check_unit("beta", beta, "0.95")
        self.tau_start = check_positive("tau_start", tau_start, "1.0")
        self.tau_end = check_positive("tau_end", tau_end if tau_end is not None else 1.0 / (100 * self.models),
                                      "0.0025")
        self.ipf_tol = check_positive("ipf_tol", ipf_tol, "1e-4")
        self.ipf_max_iter = V.positive_int("ipf_max_iter", ipf_max_iter, example=10000)
        self.warmup = check_fraction("warmup", warmup)
        self.archs = self.in_band_archs()  # the configurations C (in-band ones under a budget)
        self._c = {a: i for i, a in enumerate(self.archs)}
        C = len(self.archs)
        self.a = np.zeros((C, self.models))
        self.seen = np.zeros((C, self.models), bool)
        self.counts = np.zeros((C, self.models), np.int64)
        self.progress = Progress(total_steps)
        self.windows = Windows()
        self.current: tuple[int, int] | None = None  # (c, m) drawn for the step in progress
        self.history: list[dict[str, Any]] = []  # marginals before/after IPF, for the view
        self._P: np.ndarray | None = None
        self._P_key: tuple | None = None
        self.ipf_capped = 0  # IPF fits that stopped at ipf_max_iter above ipf_tol
        self._ipf_warned = False  # the last fit was capped and warned about (warn once per episode)

    @classmethod
    def weight_sets(cls, options: dict[str, Any] | None = None) -> int:
        """``models``: the mixture trains that many supernets."""
        models = (options or {}).get("models", inspect.signature(cls.__init__).parameters["models"].default)
        return V.positive_int("models", models, example=4)

    # ------------------------------------------------------------------ the joint distribution
    @property
    def tau(self) -> float:
        frac = (self.progress.frac() - self.warmup) / max(1e-12, 1 - self.warmup)
        return linear(self.tau_start, self.tau_end, frac)

    def logits(self) -> np.ndarray:
        """``a / tau`` (unseen pairs: neutral), eq 2.3's exponent."""
        return neutral_fill(self.a, self.seen) / self.tau

    def raw(self) -> np.ndarray:
        """Eq 2.3: ``softmax(a / tau)`` over all (c, m), before balancing (unseen pairs: neutral)."""
        L = self.logits()
        return np.exp(L - logsumexp(L))

    def joint(self) -> np.ndarray:
        """Balanced ``p(c, m)``: eq 2.3 fitted to uniform marginals by IPF (in log space)."""
        key = (self.steps, self.tau)
        if self._P is None or self._P_key != key:
            logP, self._ipf_iter, self._ipf_kl = ipf_log(self.logits(), self.ipf_tol, self.ipf_max_iter)
            self._logP = logP
            self._P = np.exp(logP)
            self._P_key = key
            self._check_ipf()
        return self._P

    def _check_ipf(self) -> None:
        """Warn when the fit stopped at the cap, unbalanced (once until a fit converges again)."""
        capped = not self._ipf_kl < self.ipf_tol
        if capped:
            self.ipf_capped += 1
            if not self._ipf_warned:
                dev = float(np.abs(self._P.sum(0) * self.models - 1).max())
                self.warn("ipf-cap",
                          f"IPF stopped at its cap of {self.ipf_max_iter} rounds with KL(p(m) || U) = "
                          f"{self._ipf_kl:.2g}, above the threshold {self.ipf_tol:g} (thesis §2.2.2): p(m) is up "
                          f"to {dev:.0%} off uniform, so the {self.models} models do not get equal training; "
                          f"raise ipf_max_iter (e.g. ipf_max_iter={10 * self.ipf_max_iter})",
                          kl=float(self._ipf_kl), tol=self.ipf_tol, rounds=int(self._ipf_iter),
                          max_iter=self.ipf_max_iter, p_model_max_deviation=dev, at_step=self.steps)
        self._ipf_warned = capped

    def conditional(self) -> np.ndarray:
        """``p(m | c)``, one row per configuration (from the log joint: rows never vanish)."""
        self.joint()
        L = self._logP
        return np.exp(L - logsumexp(L, axis=1, keepdims=True))

    # ------------------------------------------------------------------ sampler contract
    def wrap_supernet(self, net: nn.Module) -> nn.Module:
        """The Trainer's hook: ``models`` supernets routed through :meth:`route`."""
        return MixtureSupernet(net, self.models, self.route)

    def route(self, arch: Any) -> int:
        """Model for a forward pass: the drawn one for the sampled architecture, else argmax p(m|c)."""
        if arch is None:
            return 0
        c = self._c.get(self.space.parse(arch))
        if c is None:  # outside the budget: no configuration of the mixture
            return 0
        if self.current is not None and self.current[0] == c:
            return self.current[1]
        return int(np.argmax(self.conditional()[c]))

    def before_step(self, trainer: Trainer) -> None:
        self.progress.update(trainer)

    def sample(self) -> Arch:
        c = int(self.rng.integers(len(self.archs)))
        if self.progress.frac() < self.warmup:
            m = int(self.rng.integers(self.models))
        else:
            m = choose(self.rng, self.conditional()[c])
        self.current = (c, m)
        return self.archs[c]

    def observe(self, arch: Arch, reward: float) -> None:
        c = self._c[self.space.parse(arch)]
        m = self.current[1] if self.current is not None and self.current[0] == c else self.route(arch)
        self.a[c, m] = ema(self.a[c, m], reward, self.beta, not self.seen[c, m])
        self.seen[c, m] = True
        self.counts[c, m] += 1
        self.current = None
        super().observe(arch, reward)
        self.progress.observed(self.steps)
        self.windows.add(str(arch), self.steps, self.progress.total)
        every = max(1, (self.progress.total or 1000) // 100)
        if self.steps % every == 0:
            P = self.joint()
            self.history.append({"step": self.steps, "tau": self.tau,
                                 "kl_before": kl_to_uniform(self.raw().sum(0)),
                                 "kl_after": self._ipf_kl, "ipf_iterations": self._ipf_iter,
                                 "ipf_capped": not self._ipf_kl < self.ipf_tol,
                                 "p_model": P.sum(0).tolist()})

    def select(self, trainer: Trainer | None = None, k: int = 1) -> Selection:
        """Top-``k`` configurations, each with its most probable model: by validation accuracy
        with a trainer, else by the smoothed accuracy of that model."""
        if trainer is not None:
            acc = np.array([trainer.evaluate(a) for a in self.archs])
        else:
            best = np.argmax(self.conditional(), 1)
            acc = neutral_fill(self.a, self.seen)[np.arange(len(self.archs)), best]
        out = [self.archs[i] for i in np.argsort(-acc, kind="stable")[:k]]
        where = "inside the budget" if self.constrained else "in the space"
        return Selection(out, k, None if len(out) >= k else f"only {len(out)} configurations exist {where}")

    def options(self) -> dict[str, Any]:
        return {"models": self.models, "beta": self.beta, "tau_start": self.tau_start, "tau_end": self.tau_end,
                "ipf_tol": self.ipf_tol, "ipf_max_iter": self.ipf_max_iter, "warmup": self.warmup}

    def snapshot(self) -> dict[str, Any]:
        P = self.joint()
        return {**super().snapshot(), "panel": "nasbench_lab.viz.mixture:mixture_panel",
                "archs": [str(a) for a in self.archs], "models": self.models,
                "p": P.tolist(), "value": self.a.tolist(), "seen": self.seen.tolist(),
                "counts": self.counts.tolist(), "tau": self.tau,
                "ipf": {"iterations": self._ipf_iter, "kl": self._ipf_kl, "capped": self.ipf_capped,
                        "max_iter": self.ipf_max_iter},
                "history": self.history[-200:], "windows": self.windows.data()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "a": self.a.tolist(), "seen": self.seen.tolist(),
                "counts": self.counts.tolist(), "progress": self.progress.state_dict(),
                "windows": self.windows.state_dict(), "current": None if self.current is None else list(self.current),
                "history": [dict(h) for h in self.history],
                "ipf_capped": self.ipf_capped, "ipf_warned": self._ipf_warned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.a = np.asarray(state["a"], float).copy()
        self.seen = np.asarray(state["seen"], bool).copy()
        self.counts = np.asarray(state["counts"], np.int64).copy()
        self.progress.load_state_dict(state["progress"])
        self.windows.load_state_dict(state["windows"])
        self.current = None if state["current"] is None else tuple(state["current"])
        self.history = [dict(h) for h in state["history"]]
        self.ipf_capped = int(state.get("ipf_capped", 0))  # absent in checkpoints before the count
        self._ipf_warned = bool(state.get("ipf_warned", False))
        self._P = None
