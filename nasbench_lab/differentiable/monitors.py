"""The maths of the DARTS family, independent of any network: the second-order hypergradient,
the dominant Hessian eigenvalue (Lanczos), the DARTS-ES stopping rule, and the per-edge entropy /
margin of the mixing weights.

Everything takes loss *closures* and parameter lists, so it is tested on tiny models with known
answers and reused unchanged on every relaxed network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

__all__ = ["unrolled_arch_grads", "power_iteration", "lanczos", "TopEigen", "hessian_top_eigen",
           "hessian_eigenvalue", "DartsES", "edge_entropy", "edge_margin"]

LossFn = Callable[[], torch.Tensor]


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor], **kw) -> list[torch.Tensor]:
    gs = torch.autograd.grad(loss, list(params), allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]


def unrolled_arch_grads(train_loss: LossFn, val_loss: LossFn, weights: Sequence[torch.Tensor],
                        arch: Sequence[torch.Tensor], xi: float, r: float = 0.01,
                        extra: Sequence[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """DARTS' second-order gradient of ``L_val(w', alpha)`` w.r.t. ``alpha``.

    One virtual step ``w' = w - xi * (grad_w L_train(w, alpha) + extra)`` (``extra``: DARTS adds
    the momentum buffer and weight decay, which do not depend on alpha), then

        dalpha = grad_alpha L_val(w', alpha) - xi * H v,   v = grad_w' L_val(w', alpha),
        H v ~ (grad_alpha L_train(w + eps v) - grad_alpha L_train(w - eps v)) / (2 eps),
        eps = r / ||v||                                     (r = 0.01, as in DARTS).

    ``weights`` are modified in place during the call and restored exactly before it returns.
    Returns the gradients (one per arch tensor) and ``L_val(w', alpha)`` (detached).
    """
    weights, arch = list(weights), list(arch)
    backup = [p.detach().clone() for p in weights]
    try:
        g = _grads(train_loss(), weights)
        with torch.no_grad():
            for i, (p, gi) in enumerate(zip(weights, g)):
                step = gi if extra is None else gi + extra[i]
                p.sub_(xi * step)
        lv = val_loss()
        grads = _grads(lv, arch + weights)
        dalpha, v = grads[:len(arch)], grads[len(arch):]
        norm = torch.sqrt(sum((vi.double() ** 2).sum() for vi in v))
        eps = r / max(float(norm), 1e-12)
        with torch.no_grad():
            for p, b, vi in zip(weights, backup, v):
                p.copy_(b + eps * vi)
        g_pos = _grads(train_loss(), arch)
        with torch.no_grad():
            for p, b, vi in zip(weights, backup, v):
                p.copy_(b - eps * vi)
        g_neg = _grads(train_loss(), arch)
        out = [da - xi * (gp - gn) / (2 * eps) for da, gp, gn in zip(dalpha, g_pos, g_neg)]
    finally:
        with torch.no_grad():
            for p, b in zip(weights, backup):
                p.copy_(b)
    return out, lv.detach()


def power_iteration(hvp: Callable[[torch.Tensor], torch.Tensor], dim: int, iters: int = 20, tol: float = 1e-3,
                    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> float:
    """Eigenvalue of largest magnitude of a symmetric operator given as ``hvp(v) -> Hv``.

    Returns the Rayleigh quotient ``v.Hv`` of the last normalised iterate; stops early when it
    changes by less than ``tol`` relative.
    """
    if iters < 1:
        raise ValueError(f"power_iteration: iters must be >= 1, got {iters}")
    v = torch.randn(dim, generator=generator, dtype=dtype, device="cpu").to(device or "cpu")
    v = v / v.norm()
    lam = 0.0
    for _ in range(iters):
        hv = hvp(v)
        new = float(torch.dot(v, hv))
        norm = float(hv.norm())
        if norm == 0.0:
            return 0.0
        v = hv / norm
        if abs(new - lam) <= tol * max(abs(new), 1e-12):
            return new
        lam = new
    return lam


@dataclass(frozen=True)
class TopEigen:
    """The largest algebraic eigenvalue found, its unit eigenvector (float64, flat), the number of
    operator products it took, the residual norm ``||A x - value x||`` of that Ritz pair (some
    eigenvalue lies within it: ``|lambda - value| <= residual``) and whether the convergence
    criterion was met before the product cap."""

    value: float
    vector: np.ndarray
    matvecs: int
    residual: float
    converged: bool = True


def lanczos(matvec: Callable[[np.ndarray], np.ndarray], dim: int, iters: int = 8, tol: float = 1e-3,
            v0: np.ndarray | None = None, project: Callable[[np.ndarray], np.ndarray] | None = None,
            rng: np.random.Generator | None = None) -> TopEigen:
    """Largest *algebraic* eigenvalue of a symmetric operator by Lanczos (Golub & Van Loan §10.1).

    Convergence criterion: the residual norm of the top Ritz pair ``(theta, x = Q_k y)``,
    ``||A x - theta x|| = |beta_k y_k|`` (Golub & Van Loan eq. 10.1.9), at most ``tol`` times the
    largest Ritz magnitude (the Krylov estimate of ``||A||``); or an exhausted Krylov space (the
    answer is then exact). ``iters`` caps the products ``matvec(v)``; a run that reaches the cap
    first returns its best Ritz pair with ``converged=False``. Lanczos vectors are fully
    re-orthogonalised (the dimension is small: 30 alphas on NB-201, 224 on DARTS cells) and the
    Ritz values of the tridiagonal ``T_k`` come from ``scipy.linalg.eigh_tridiagonal``.

    ``v0`` warm-starts the iteration (the previous measurement's eigenvector: the Hessian moves
    little between measurements, so a few products suffice); ``project`` removes directions the
    operator is known to annihilate (softmax alphas: a constant added to one edge's logits), so no
    product is spent on them. Why not ``scipy.sparse.linalg.eigsh``: ARPACK restarts cannot be held
    to a fixed number of products, and here every product is a Hessian-vector product of a
    supernet, the cost the cadence is planned on.
    """
    if iters < 1:
        raise ValueError(f"lanczos: iters must be >= 1, got {iters} (e.g. iters=8)")
    proj = project or (lambda x: x)
    rng = rng or np.random.default_rng(0)
    q = proj(np.asarray(v0, dtype=np.float64).reshape(-1).copy() if v0 is not None else rng.standard_normal(dim))
    if not np.linalg.norm(q) > 0:  # an unusable warm start: fall back to a random vector
        q = proj(rng.standard_normal(dim))
    q /= np.linalg.norm(q)
    basis, alphas, betas = [q], [], []
    value, vec, resid, converged = 0.0, q, float("inf"), False
    for k in range(1, min(iters, dim) + 1):
        w = proj(np.asarray(matvec(basis[-1]), dtype=np.float64).reshape(-1))
        a = float(basis[-1] @ w)
        alphas.append(a)
        Q = np.stack(basis, axis=1)
        for _ in range(2):  # full re-orthogonalisation, twice ("twice is enough")
            w = w - Q @ (Q.T @ w)
        beta = float(np.linalg.norm(w))
        theta, y = eigh_tridiagonal(np.array(alphas), np.array(betas)) if k > 1 else (np.array([a]), np.ones((1, 1)))
        value, vec = float(theta[-1]), Q @ y[:, -1]
        resid = abs(beta * float(y[-1, -1]))
        scale = max(float(np.abs(theta).max()), 1e-30)
        # an exhausted Krylov space (beta ~ 0, or k = dim) holds an exact eigenpair
        converged = resid <= tol * scale or beta <= 1e-12 * scale or k == dim
        if converged:
            break
        betas.append(beta)
        basis.append(w / beta)
    return TopEigen(value, vec / np.linalg.norm(vec), len(alphas), resid, converged)


def hessian_top_eigen(loss_fn: LossFn, params: Sequence[torch.Tensor], iters: int = 8, tol: float = 1e-3,
                      v0: np.ndarray | None = None, project: Callable[[np.ndarray], np.ndarray] | None = None,
                      rng: np.random.Generator | None = None) -> TopEigen:
    """Largest algebraic eigenvalue of the Hessian of ``loss_fn()`` w.r.t. ``params`` (R-DARTS §4.2:
    "the dominant eigenvalue" of ``nabla^2_alpha L_valid``, computed there as ``max(eigvals(H))``
    of the full Hessian, i.e. the largest algebraic one, not the largest magnitude).

    One forward with a differentiable gradient, then one Hessian-vector product (a backward
    through that gradient) per Lanczos step; see :func:`lanczos`.
    """
    params = list(params)
    loss = loss_fn()
    g = _grads(loss, params, create_graph=True)
    flat = torch.cat([gi.reshape(-1) for gi in g])
    dim = flat.numel()
    if not flat.requires_grad:  # the loss is linear in params: zero Hessian
        return TopEigen(0.0, np.zeros(dim), 0, 0.0, True)

    def hvp(v: np.ndarray) -> np.ndarray:
        vt = torch.as_tensor(v, dtype=flat.dtype, device=flat.device)
        hv = _grads(torch.dot(flat, vt), params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach().double().cpu().numpy()

    return lanczos(hvp, dim, iters, tol, v0=v0, project=project, rng=rng)


def hessian_eigenvalue(loss_fn: LossFn, params: Sequence[torch.Tensor], iters: int = 20, tol: float = 1e-6,
                       generator: torch.Generator | None = None) -> float:
    """:func:`hessian_top_eigen`'s value: the largest algebraic eigenvalue of the Hessian."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else 0
    return hessian_top_eigen(loss_fn, params, iters, tol, rng=np.random.default_rng(seed)).value


class DartsES:
    """The DARTS-ES stopping rule exactly as R-DARTS' code applies it (Zela et al. 2020, §4.3 and
    ``EVLocalAvg`` in automl/RobustDARTS): measurements ``lambda_i`` every ``every`` steps, a local
    average over the last ``window`` of them (fewer while the first window fills, from
    ``ceil(window / 2)`` measurements on), attributed to the window's centre step
    ``s_i - every * floor(window / 2)``; stop when the newest local average exceeds ``factor``
    times the one ``delta`` averages earlier, provided that earlier average's step
    (``centre - every * delta``) is at least ``start`` (R-DARTS: epoch 10 of 50). The
    architecture to keep is the one of that earlier step. Defaults are R-DARTS': window 5,
    delta 4, factor 1.3 (the paper's ``lambda(i-k) / lambda(i) < 0.75``), and the final
    measurement is never checked (R-DARTS skips the last epoch).

    Deviation, on purpose: a ratio needs a positive earlier average; R-DARTS divides blindly, here
    a non-positive earlier average does not stop the run.
    """

    def __init__(self, every: int, start: int, window: int = 5, delta: int = 4, factor: float = 1.3) -> None:
        for name, v in (("every", every), ("window", window), ("delta", delta)):
            if not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"DartsES: {name} must be a positive integer, got {v!r} (e.g. {name}=5)")
        if not factor > 1:
            raise ValueError(f"DartsES: factor must be > 1, got {factor!r} (e.g. factor=1.3)")
        self.every, self.start, self.window, self.delta, self.factor = int(every), int(start), int(window), \
            int(delta), float(factor)

    def local_averages(self, values: Sequence[float]) -> list[float]:
        """The local average after each measurement from the ``ceil(window / 2)``-th on."""
        w = self.window
        return [float(np.mean(values[max(0, n - w):n])) for n in range(int(np.ceil(w / 2)), len(values) + 1)]

    def check(self, steps: Sequence[int], values: Sequence[float]) -> dict[str, float | int] | None:
        """After the newest measurement (``steps[-1]``, ``values[-1]``): the stop decision, or None.

        Returns ``{"current", "previous", "ratio", "centre_step", "stop_step"}`` when the rule
        fires (``stop_step``: the step whose architecture DARTS-ES keeps).
        """
        la = self.local_averages(values)
        if len(la) < self.delta + 1:
            return None
        centre = int(steps[-1]) - self.every * (self.window // 2)
        stop_step = centre - self.every * self.delta
        if stop_step < self.start:
            return None
        current, previous = la[-1], la[-1 - self.delta]
        if previous <= 0 or current / previous <= self.factor:
            return None
        return {"current": current, "previous": previous, "ratio": current / previous,
                "centre_step": centre, "stop_step": stop_step}


def _normalise(w: np.ndarray) -> np.ndarray:
    w = np.clip(np.asarray(w, dtype=float), 0.0, None)
    return w / np.clip(w.sum(axis=-1, keepdims=True), 1e-12, None)


def edge_entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each edge's weights normalised to a distribution; log(K) = undecided."""
    p = _normalise(weights)
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)


def edge_margin(weights: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 normalised weight of each edge (0 = tie, 1 = decided)."""
    p = np.sort(_normalise(weights), axis=-1)
    return p[..., -1] - p[..., -2]
