"""Zero-cost proxies: scores of an untrained network from one batch (004 §5.1.2).

Every proxy takes a freshly initialised model (train mode, as in the papers), a batch ``(x, y)``
and gives one float where *higher predicts better*. Weight-based scores sum over the weights of
every Conv2d and Linear layer and follow Abdelfattah et al. (2021, "Zero-Cost Proxies for
Lightweight NAS") and their public code (``foresight/pruners/measures``):

- ``grad_norm``: ``sum_layers ||dL/dW||_2`` (one L2 norm per layer weight, summed);
- ``snip``: ``sum |W * dL/dW|`` (connection sensitivity, Lee et al. 2019);
- ``grasp``: ``sum -W * (H g)``, ``g = dL/dW``, ``H g`` by double backprop (Wang et al. 2020);
- ``fisher``: per output channel ``c`` of every layer, ``F_c = 0.5 * mean_n (sum_spatial a * dL/da)^2``
  with ``a`` the layer's output (Theis et al. 2018); the reference broadcasts ``F_c`` to every
  weight of channel ``c`` before summing, so the score is ``sum_c F_c * fan_in`` with ``fan_in =
  in_channels / groups * kh * kw`` (a Linear: ``in_features``);
- ``synflow``: ``sum |W * dR/dW|`` with ``R`` the sum of the outputs of the network whose
  parameters are replaced by their absolute values and BatchNorm removed, on an all-ones input, in
  float64 (Tanaka et al. 2020; data-independent);
- ``jacov``: ``-sum_i log(v_i + k) + 1 / (v_i + k)`` over the eigenvalues ``v_i`` of the
  correlation matrix of the input Jacobians ``d(sum_out)/dx`` of the batch, ``k = 1e-5``
  (Mellor et al. 2021, v1; ``jacob_cov`` in the reference);
- ``naswot``: ``log |det K_H|`` with ``K_H[i, j] = N_A - Hamming(c_i, c_j)`` over the binary
  codes ``c`` of every ReLU unit (is its input positive?) for each image (Mellor et al. 2021, v2).

:func:`compute` scores any subset of them on one model with shared passes: one forward (ReLU
codes and layer outputs hooked), one backward of the loss for the weight and activation gradients
(grad_norm, snip and fisher read the same gradients; with grasp it keeps its graph for the
Hessian-gradient product), one backward of the summed output for the input Jacobian (jacov), and
synflow last, on the model itself (it is changed in place unless ``keep_model=True``). In train
mode BatchNorm uses batch statistics, so every proxy sees exactly the activations a forward of its
own would give: sharing changes the cost, not the numbers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Batch = tuple[torch.Tensor, torch.Tensor]

#: proxies computed on a model and a batch (params and flops come from the space), in their order
NAMES: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacov", "naswot")
_LOSS_GRADS = {"grad_norm", "snip", "grasp", "fisher"}
_FORWARD = _LOSS_GRADS | {"jacov", "naswot"}


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _fan_in(layer: nn.Module) -> int:
    return int(np.prod(layer.weight.shape[1:]))


def compute(model: nn.Module, batch: Batch, names: Sequence[str] = NAMES, keep_model: bool = False,
            ) -> dict[str, float]:
    """The proxies ``names`` of ``model`` on ``batch`` with shared passes (see the module docstring).

    ``keep_model=False`` lets synflow take the absolute values of the model's own parameters and
    drop its BatchNorm (no copy; the model is scored, not reused); ``True`` copies it first.
    """
    names = list(dict.fromkeys(names))
    bad = [n for n in names if n not in NAMES]
    if bad:
        raise ValueError(f"proxies: unknown {bad}; valid: {', '.join(NAMES)}")
    out: dict[str, float] = {}
    if _FORWARD & set(names):
        out.update(_shared_pass(model, batch, names))
    if "synflow" in names:
        out["synflow"] = _synflow(copy.deepcopy(model) if keep_model else model, batch[0])
    return {n: out[n] for n in names}


def _shared_pass(model: nn.Module, batch: Batch, names: Sequence[str]) -> dict[str, float]:
    x, y = batch
    want = set(names)
    layers = _layers(model)
    weights = [m.weight for m in layers]
    acts: list[torch.Tensor | None] = [None] * len(layers)
    kernel: list[torch.Tensor] = []
    handles = []
    if "fisher" in want:
        def keep_output(i: int):
            def hook(_mod: nn.Module, _inp: tuple, output: torch.Tensor) -> None:
                acts[i] = output if output.requires_grad else None
            return hook

        handles += [m.register_forward_hook(keep_output(i)) for i, m in enumerate(layers)]
    if "naswot" in want:
        handles += [m.register_forward_hook(_naswot_hook(kernel)) for m in model.modules()
                    if isinstance(m, nn.ReLU)]
    x_in = x.detach().clone().requires_grad_("jacov" in want)
    try:
        logits = model(x_in)
    finally:
        for h in handles:
            h.remove()
    res: dict[str, float] = {}
    if _LOSS_GRADS & want:
        loss = F.cross_entropy(logits, y)
        used = [a for a in acts if a is not None]
        grads = torch.autograd.grad(loss, weights + used, allow_unused=True, retain_graph=True,
                                    create_graph="grasp" in want)
        g_w, g_a = grads[:len(weights)], iter(grads[len(weights):])
        present = [(w, g) for w, g in zip(weights, g_w) if g is not None]
        if "grad_norm" in want:
            res["grad_norm"] = float(sum(g.detach().norm(2) for _, g in present)) if present else 0.0
        if "snip" in want:
            res["snip"] = float(sum((w.detach() * g.detach()).abs().sum() for w, g in present)) if present else 0.0
        if "fisher" in want:
            total = torch.zeros((), dtype=torch.float64)
            for layer, a in zip(layers, acts):
                if a is None:
                    continue
                ga = next(g_a)
                if ga is None:
                    continue
                prod = (a.detach() * ga.detach()).double()
                per_image = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod  # (N, C)
                total += (0.5 * per_image.pow(2).mean(0)).sum() * _fan_in(layer)
            res["fisher"] = float(total)
        if "grasp" in want:
            z = sum((g * g.detach()).sum() for _, g in present if g.requires_grad)
            if isinstance(z, torch.Tensor) and z.requires_grad:
                hg = torch.autograd.grad(z, weights, allow_unused=True, retain_graph="jacov" in want)
                res["grasp"] = float(sum((-w.detach() * h).sum() for w, h in zip(weights, hg) if h is not None))
            else:  # the loss is linear in every weight (no path through a nonlinearity): H g = 0
                res["grasp"] = 0.0
    if "jacov" in want:
        (jac,) = torch.autograd.grad(logits.sum(), x_in, allow_unused=True)
        jac = torch.zeros_like(x_in) if jac is None else jac
        res["jacov"] = jacov_from_jacobians(jac.reshape(jac.shape[0], -1).double().cpu().numpy())
    if "naswot" in want:
        res["naswot"] = _logdet(sum(kernel) if kernel else torch.zeros((x.shape[0], x.shape[0]), dtype=torch.float64))
    return res


def _naswot_hook(kernel: list[torch.Tensor]) -> Callable:
    """Adds one ReLU's ``K = N_A - Hamming`` to ``kernel`` (as ``2 c c^T - |c_i| - |c_j| + N_A``).

    Every ReLU module counts, as in the reference (an NB-201 node feeding three conv edges has three
    ReLUs of the same tensor, so its codes count three times); a ReLU whose input is a tensor already
    seen in this forward reuses that tensor's kernel instead of recomputing the same product.
    """
    seen: dict[tuple, torch.Tensor] = {}

    def hook(_mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        src = inp[0] if inp else out
        key = (src.data_ptr(), tuple(src.shape), tuple(src.stride()), src._version) if src is not out else None
        if key is not None and key in seen:
            kernel.append(seen[key])
            return
        # out > 0 equals "input > 0" for in-place ReLUs too (negatives became 0)
        c = (out.detach() > 0).reshape(out.shape[0], -1).to(torch.float32)
        ones = c.sum(1, dtype=torch.float64)
        # exact: integer sums below 2**24 in float32
        k = (2 * (c @ c.T).double() - ones[:, None] - ones[None, :] + c.shape[1]).cpu()
        if key is not None:
            seen[key] = k
        kernel.append(k)
    return hook


def _synflow(net: nn.Module, x: torch.Tensor) -> float:
    for mod in list(net.modules()):  # BatchNorm off: the score must see raw weights (the reference's bn=False)
        for child_name, child in list(mod.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(mod, child_name, nn.Identity())
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = [m.weight for m in _layers(net)]
    out = net(torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads) if g is not None))


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


def _logdet(k: torch.Tensor | np.ndarray) -> float:
    k = np.asarray(k, dtype=np.float64)
    if k.size == 0:
        return NASWOT_FLOOR
    sign, logdet = np.linalg.slogdet(k)
    if sign <= 0 or not np.isfinite(logdet):
        return NASWOT_FLOOR
    return float(logdet)


def naswot_from_codes(codes: list[torch.Tensor] | torch.Tensor | np.ndarray) -> float:
    """``log |det K_H|`` of binary codes.

    A singular kernel (two images with identical codes: the network cannot tell them apart)
    has ``log 0 = -inf``; it scores :data:`NASWOT_FLOOR` instead, below every non-singular
    kernel (an integer matrix, so its log-determinant is >= 0), to stay finite.
    """
    return _logdet(naswot_kernel(codes))


#: score of a singular NASWOT kernel (log of the smallest positive double)
NASWOT_FLOOR = float(np.log(np.finfo(float).tiny))


def _one(name: str) -> Callable[[nn.Module, Batch], float]:
    def proxy(model: nn.Module, batch: Batch) -> float:
        return compute(model, batch, [name], keep_model=True)[name]

    proxy.__name__ = proxy.__qualname__ = name
    proxy.__doc__ = f"The ``{name}`` proxy of ``model`` on ``batch`` alone (see :func:`compute`)."
    return proxy


grad_norm, snip, grasp, fisher, synflow, jacov, naswot = (_one(n) for n in NAMES)

#: proxies computed on a model and a batch (params and flops come from the space)
MODEL_PROXIES: dict[str, Callable[[nn.Module, Batch], float]] = {
    "grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher, "synflow": synflow,
    "jacov": jacov, "naswot": naswot,
}
