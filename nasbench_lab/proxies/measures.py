"""Zero-cost proxies: scores of an untrained network from one batch (004 §5.1.2).

Every function takes a freshly initialised model (train mode, as in the papers), a batch
``(x, y)`` and returns one float where *higher predicts better*. Weight-based scores sum over
the weights of every Conv2d and Linear layer, following Abdelfattah et al. (2021,
"Zero-Cost Proxies for Lightweight NAS") and their public code:

- ``grad_norm``: sum of the L2 norms of the loss gradients of the layer weights;
- ``snip``: ``sum |w * dL/dw|`` (connection sensitivity, Lee et al. 2019);
- ``grasp``: ``sum -w * (H g)`` with ``H g`` the Hessian-gradient product, by double backprop
  (Wang et al. 2020);
- ``fisher``: per channel ``0.5 * mean_batch((sum_spatial a * dL/da)^2)`` of the layer outputs
  ``a``, summed (Theis et al. 2018);
- ``synflow``: ``sum |w * dR/dw|`` with ``R`` the sum of the outputs of the network whose weights
  are replaced by their absolute values and BatchNorm removed, on an all-ones input, in float64
  (Tanaka et al. 2020; data-independent);
- ``jacov``: ``-sum_i log(v_i + k) + 1 / (v_i + k)`` over the eigenvalues ``v_i`` of the
  correlation matrix of the input Jacobians of the batch, ``k = 1e-5`` (Mellor et al. 2021, v1);
- ``naswot``: ``log |det K_H|`` with ``K_H[i, j] = N_A - Hamming(c_i, c_j)`` over the binary
  codes ``c`` of every ReLU unit (is it active?) for each image (Mellor et al. 2021, v2).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Batch = tuple[torch.Tensor, torch.Tensor]


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _used_weights(model: nn.Module) -> list[nn.Parameter]:
    return [m.weight for m in _layers(model)]


def _grads(model: nn.Module, batch: Batch) -> list[torch.Tensor | None]:
    x, y = batch
    weights = _used_weights(model)
    loss = F.cross_entropy(model(x), y)
    return list(torch.autograd.grad(loss, weights, allow_unused=True))


def grad_norm(model: nn.Module, batch: Batch) -> float:
    grads = _grads(model, batch)
    return float(sum(g.norm(2).item() for g in grads if g is not None))


def snip(model: nn.Module, batch: Batch) -> float:
    grads = _grads(model, batch)
    return float(sum((w.detach() * g).abs().sum().item()
                     for w, g in zip(_used_weights(model), grads) if g is not None))


def grasp(model: nn.Module, batch: Batch) -> float:
    x, y = batch
    weights = _used_weights(model)
    g_const = torch.autograd.grad(F.cross_entropy(model(x), y), weights, allow_unused=True)
    g_graph = torch.autograd.grad(F.cross_entropy(model(x), y), weights, create_graph=True, allow_unused=True)
    z = sum((a * b.detach()).sum() for a, b in zip(g_graph, g_const) if a is not None and b is not None)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    return float(sum((-w.detach() * h).sum().item() for w, h in zip(weights, hg) if h is not None))


def fisher(model: nn.Module, batch: Batch) -> float:
    x, y = batch
    acts: list[torch.Tensor] = []

    def hook(_mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        if out.requires_grad:
            out.retain_grad()
            acts.append(out)

    handles = [m.register_forward_hook(hook) for m in _layers(model)]
    try:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for a in acts:
        if a.grad is None:
            continue
        prod = a * a.grad
        g = prod.sum(dim=(2, 3)) if prod.dim() == 4 else prod  # (batch, channels)
        total += float((0.5 * g.pow(2).mean(0)).sum().item())
    model.zero_grad(set_to_none=True)
    return total


def synflow(model: nn.Module, batch: Batch) -> float:
    x, _ = batch
    net = copy.deepcopy(model)
    for mod in list(net.modules()):  # BatchNorm off: the score must see raw weights
        for child_name, child in list(mod.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(mod, child_name, nn.Identity())
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = _used_weights(net)
    out = net(torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    return float(sum((w.detach() * g).abs().sum().item() for w, g in zip(weights, grads) if g is not None))


def jacov(model: nn.Module, batch: Batch) -> float:
    x, _ = batch
    x = x.detach().clone().requires_grad_(True)
    (jac,) = torch.autograd.grad(model(x).sum(), x, allow_unused=True)
    if jac is None:
        jac = torch.zeros_like(x)
    jac = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    return jacov_from_jacobians(jac)


def jacov_from_jacobians(jac: np.ndarray, k: float = 1e-5) -> float:
    """The jacov score of a (batch, features) Jacobian matrix.

    A row with no variance (the output ignores that input) has an undefined correlation; it is
    treated as perfectly correlated with every other row, the worst case, so a network whose
    output does not depend on its input gets the lowest score instead of NaN.
    """
    jac = np.asarray(jac, dtype=float)
    flat = np.std(jac, axis=1) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac) if len(jac) > 1 else np.ones((1, 1))
    corr = np.atleast_2d(corr)
    corr[flat, :] = 1.0
    corr[:, flat] = 1.0
    corr = np.nan_to_num(corr, nan=1.0)
    v = np.linalg.eigvalsh(corr)
    v = np.clip(v, 0.0, None)
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def relu_codes(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Binary activation codes (batch, units) of every ``nn.ReLU`` module for the batch ``x``."""
    codes: list[torch.Tensor] = []

    def hook(_mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        # out > 0 equals "input > 0" for in-place ReLUs too (negatives became 0)
        codes.append((out.detach() > 0).reshape(out.shape[0], -1))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return codes


def naswot_kernel(codes: list[torch.Tensor] | torch.Tensor | np.ndarray) -> np.ndarray:
    """``K_H = sum_layers c c^T + (1 - c)(1 - c)^T`` (= units minus Hamming distance)."""
    if isinstance(codes, np.ndarray | torch.Tensor):
        codes = [torch.as_tensor(np.asarray(codes))]
    n = codes[0].shape[0] if codes else 0
    k = torch.zeros((n, n), dtype=torch.float64)
    for c in codes:
        c = c.to(torch.float32)
        k += (c @ c.T + (1 - c) @ (1 - c).T).double().cpu()
    return k.numpy()


def naswot_from_codes(codes: list[torch.Tensor] | torch.Tensor | np.ndarray) -> float:
    """``log |det K_H|`` of binary codes.

    A singular kernel (two images with identical codes: the network cannot tell them apart)
    has ``log 0 = -inf``; it scores :data:`NASWOT_FLOOR` instead, below every non-singular
    kernel (an integer matrix, so its log-determinant is >= 0), to stay finite.
    """
    k = naswot_kernel(codes)
    if k.size == 0:
        return NASWOT_FLOOR
    sign, logdet = np.linalg.slogdet(k)
    if sign <= 0 or not np.isfinite(logdet):
        return NASWOT_FLOOR
    return float(logdet)


#: score of a singular NASWOT kernel (log of the smallest positive double)
NASWOT_FLOOR = float(np.log(np.finfo(float).tiny))


def naswot(model: nn.Module, batch: Batch) -> float:
    return naswot_from_codes(relu_codes(model, batch[0]))


#: proxies computed on a model and a batch (params and flops come from the space)
MODEL_PROXIES: dict[str, Callable[[nn.Module, Batch], float]] = {
    "grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher, "synflow": synflow,
    "jacov": jacov, "naswot": naswot,
}
