"""Architecture representations and distances for trees and densities (thesis §3.4, §5.3.6, App. II §3).

Four ways to put every architecture in a vector space where a distance means "trains alike":

- ``functional``: the path's logits on a fixed validation batch, concatenated (eq 5.11, cosine).
- ``gradient``: the flattened gradient of the loss w.r.t. the shared weights on one batch
  (eq 5.4, cosine). Weights a path does not use get a zero gradient, so paths that share no
  weights come out orthogonal, as the thesis prescribes for NAS-Bench-Macro.
- ``representational``: linear CKA of selected hidden feature maps (eq A II-1). Linear CKA is
  the cosine between centred Gram matrices, so each selected layer contributes its normalised
  centred Gram matrix and the cosine of the concatenation is the mean CKA over layers.
- ``encoding``: the one-hot op vector, optionally weighted ``gamma**level`` toward early layers
  (Table 3.2). Half the squared Euclidean distance of these vectors is the weighted Hamming
  distance of App. II §3.

Every representation comes with its metric (``cosine`` or ``hamming``) so that distances,
KMeans prototypes and projections treat it consistently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
from scipy.spatial.distance import cdist

from nasbench_lab.spaces import Arch, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer

KINDS = ("functional", "gradient", "representational", "encoding")
METRICS = {"functional": "cosine", "gradient": "cosine", "representational": "cosine", "encoding": "hamming"}

# Above this many floats a gradient matrix is compressed with a count sketch (inner products are
# preserved in expectation), so gradient densities stay affordable on larger supernets.
_MAX_GRADIENT_FLOATS = 20_000_000


@dataclass
class Representations:
    """Rows of ``X`` represent ``archs``; ``metric`` says how to compare them."""

    archs: list[Arch]
    X: np.ndarray
    metric: str
    kind: str

    def distances(self, other: np.ndarray | None = None) -> np.ndarray:
        """Pairwise distances (``len(archs)`` x ``len(other or archs)``)."""
        return pairwise(self.X, self.X if other is None else other, self.metric)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"representation: expected one of {', '.join(KINDS)}, got {kind!r} "
                         f"(e.g. representation='functional')")
    return kind


def pairwise(X: np.ndarray, Y: np.ndarray, metric: str) -> np.ndarray:
    """Distance matrix between the rows of X and Y: ``cosine`` (1 - cos) or ``hamming`` (weighted)."""
    X, Y = np.atleast_2d(np.asarray(X, float)), np.atleast_2d(np.asarray(Y, float))
    if metric == "cosine":
        # zero vectors (a path that never ran a hooked layer) are orthogonal to everything
        nx_ = np.linalg.norm(X, axis=1, keepdims=True)
        ny_ = np.linalg.norm(Y, axis=1, keepdims=True)
        sim = (X / np.where(nx_ == 0, 1, nx_)) @ (Y / np.where(ny_ == 0, 1, ny_)).T
        return np.clip(1.0 - sim, 0.0, 2.0)
    if metric == "hamming":
        return 0.5 * cdist(X, Y, "sqeuclidean")
    raise ValueError(f"metric: expected 'cosine' or 'hamming', got {metric!r}")


def encoding_vectors(space: SearchSpace, archs: Sequence[Arch], gamma: float | None = None) -> np.ndarray:
    """One-hot op vectors scaled by ``sqrt(gamma**level)`` (``gamma=None``: unweighted)."""
    blocks = [len(s) for s in space.level_sizes]
    w = np.ones(len(blocks)) if gamma is None else float(gamma) ** np.arange(len(blocks))
    scale = np.repeat(np.sqrt(w), blocks)
    return np.stack([space.encode(a, "onehot") * scale for a in archs]).astype(np.float64)


def _models(net: nn.Module) -> list[nn.Module]:
    """The supernets inside a wrapper holding several (a mixture: ``net.nets``), else ``[net]``."""
    inner = getattr(net, "nets", None)
    return list(inner) if isinstance(inner, nn.ModuleList) else [net]


def default_layers(net: nn.Module, count: int = 3) -> list[str]:
    """Names of ``count`` evenly spaced blocks of the first ModuleList (the network's trunk)."""
    net = _models(net)[0]
    for name, mod in net.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) >= 2:
            idx = np.unique(np.linspace(0, len(mod) - 1, num=min(count, len(mod)) + 1)[1:].round().astype(int))
            return [f"{name}.{i}" for i in idx]
    children = [n for n, _ in net.named_children()]
    return children[-count - 1:-1] or children


def _centred_gram(feat: torch.Tensor) -> torch.Tensor:
    x = feat.reshape(feat.shape[0], -1).float()
    x = x - x.mean(0, keepdim=True)
    gram = x @ x.T
    norm = torch.linalg.norm(gram)
    return (gram / norm if norm > 0 else gram).reshape(-1)


class _Hooks:
    """Forward hooks that keep the last output of the named modules."""

    def __init__(self, net: nn.Module, names: Sequence[str]) -> None:
        # names are relative to one supernet; with several (a mixture), the same layer of each
        # is hooked under the same name and the model the forward is routed to fills it
        tables = [dict(m.named_modules()) for m in _models(net)]
        missing = [n for n in names if n not in tables[0]]
        if missing:
            raise ValueError(f"layers: no module named {missing} in the supernet; e.g. {default_layers(net)}")
        self.names = list(names)
        self.out: dict[str, torch.Tensor] = {}
        self.handles = [t[n].register_forward_hook(self._hook(n)) for t in tables for n in names]

    def _hook(self, name: str):
        def fn(_mod, _inp, out):
            self.out[name] = out.detach()
        return fn

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def compute(trainer: Trainer, archs: Sequence[Arch], kind: str = "functional", batch_size: int = 64,
            gamma: float | None = None, layers: Sequence[str] | None = None,
            sketch_dim: int = 8192, seed: int = 0) -> Representations:
    """Representations of ``archs`` with the trainer's current supernet.

    ``batch_size``: images of the fixed validation batch (functional, representational) or of the
    fixed gradient batch; ``gamma``: early-layer weighting of the encoding; ``layers``: module
    names hooked for CKA (default: three evenly spaced trunk blocks).
    """
    check_kind(kind)
    archs = list(archs)
    if kind == "encoding":
        return Representations(archs, encoding_vectors(trainer.space, archs, gamma), "hamming", kind)
    x, y = trainer.fixed_val_batch(batch_size)
    rows: list[np.ndarray] = []
    if kind == "functional":
        rows = [trainer.outputs(a, x).reshape(-1).cpu().numpy() for a in archs]
    elif kind == "gradient":
        sketch = None
        for a in archs:
            g = trainer.gradient(a, (x, y))
            if sketch is None and g.numel() * len(archs) > _MAX_GRADIENT_FLOATS:
                gen = torch.Generator().manual_seed(seed)
                sketch = (torch.randint(0, sketch_dim, (g.numel(),), generator=gen),
                          torch.randint(0, 2, (g.numel(),), generator=gen).float() * 2 - 1)
            if sketch is not None:
                g = torch.zeros(sketch_dim).index_add_(0, sketch[0], g.cpu() * sketch[1])
            rows.append(g.cpu().numpy())
    else:  # representational
        names = list(layers) if layers else default_layers(trainer.net)
        hooks = _Hooks(trainer.net, names)
        try:
            for a in archs:
                hooks.out.clear()
                trainer.outputs(a, x)
                rows.append(torch.cat([
                    _centred_gram(hooks.out[n]) if n in hooks.out else torch.zeros(x.shape[0] ** 2)
                    for n in names]).cpu().numpy())
        finally:
            hooks.close()
    return Representations(archs, np.stack(rows).astype(np.float64), METRICS[kind], kind)


def mean_distance(D: np.ndarray) -> np.ndarray:
    """Eq 5.5: each architecture's mean distance to all the others (diagonal excluded)."""
    D = np.asarray(D, float)
    n = D.shape[0]
    if n < 2:
        return np.zeros(n)
    return (D.sum(1) - np.diag(D)) / (n - 1)


def mean_distances(X: np.ndarray, metric: str, chunk: int = 1024) -> np.ndarray:
    """Eq 5.5 straight from the representations, in row chunks (no n x n matrix in memory)."""
    X = np.asarray(X, float)
    n = X.shape[0]
    if n < 2:
        return np.zeros(n)
    total = np.zeros(n)
    for lo in range(0, n, chunk):
        total[lo:lo + chunk] = pairwise(X[lo:lo + chunk], X, metric).sum(1)
    # the diagonal: 0, except a zero vector, which pairwise() treats as orthogonal to itself
    self_d = (np.linalg.norm(X, axis=1) == 0).astype(float) if metric == "cosine" else 0.0
    return (total - self_d) / (n - 1)
