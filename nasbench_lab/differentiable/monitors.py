"""The maths of the DARTS family, independent of any network: the second-order hypergradient,
the dominant Hessian eigenvalue, and the per-edge entropy / margin of the mixing weights.

Everything takes loss *closures* and parameter lists, so it is tested on tiny models with known
answers and reused unchanged on every relaxed network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["unrolled_arch_grads", "power_iteration", "hessian_eigenvalue", "edge_entropy", "edge_margin"]

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


def hessian_eigenvalue(loss_fn: LossFn, params: Sequence[torch.Tensor], iters: int = 20, tol: float = 1e-3,
                       generator: torch.Generator | None = None) -> float:
    """Dominant eigenvalue of the Hessian of ``loss_fn()`` w.r.t. ``params`` (R-DARTS, DARTS-ES).

    One forward with a differentiable gradient; every power-iteration step is one
    Hessian-vector product (a backward through that gradient).
    """
    params = list(params)
    loss = loss_fn()
    g = _grads(loss, params, create_graph=True)
    flat = torch.cat([gi.reshape(-1) for gi in g])
    if not flat.requires_grad:  # the loss is linear in params: zero Hessian
        return 0.0

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = _grads(torch.dot(flat, v.to(flat.dtype)), params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    return power_iteration(hvp, flat.numel(), iters, tol, generator, dtype=flat.dtype, device=flat.device)


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
