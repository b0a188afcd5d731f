"""Architecture representations and distances for trees and densities (thesis §3.4, §5.3.6, App. II §3).

Four ways to put every architecture in a vector space where a distance means "trains alike":

- ``functional``: the path's logits on a fixed validation batch, concatenated (eq 5.11, cosine).
- ``gradient``: the gradient of the loss w.r.t. the shared weights on one batch (eq 5.3-5.4),
  compared *per layer* (§5.4.2, Table 5.2 "average gradients of layers"): the distance of two
  architectures is the mean over layers of ``1 - cos(g_a^l, g_b^l)``, with distance 1 for a
  layer only one of them uses ("we consider gradients as orthogonal d(i, j) = 1 when layers i
  and j do not share weights"); layers neither uses are left out of the mean (else every pair
  of a large supernet would look alike through the many layers no path runs). A layer is a
  module owning parameters (a conv, a BN, a linear); the metric is :class:`LayerCosine`. One
  global cosine over the flattened gradient would let the few layers with the largest gradients
  decide every distance. Large supernets are compressed by a count sketch per layer, always the
  same one for a given seed (``sketch``), so vectors from different calls stay comparable.
- ``representational``: linear CKA of selected hidden feature maps (eq A II-1). Linear CKA is
  the cosine between centred Gram matrices, so each selected layer contributes its normalised
  centred Gram matrix and the cosine of the concatenation is the mean CKA over layers.
- ``encoding``: the one-hot op vector, optionally weighted ``gamma**level`` toward early layers
  (Table 3.2). Half the squared Euclidean distance of these vectors is the weighted Hamming
  distance of App. II §3.

Every representation comes with its metric (``cosine``, ``hamming`` or a :class:`LayerCosine`)
so that distances, KMeans prototypes and projections treat it consistently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
from scipy.spatial.distance import cdist

from nasbench_lab.spaces import Arch, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer

KINDS = ("functional", "gradient", "representational", "encoding")
METRICS = {"functional": "cosine", "gradient": "layer-cosine", "representational": "cosine", "encoding": "hamming"}

# Above this many floats a gradient matrix is compressed with a count sketch (inner products are
# preserved in expectation), so gradient densities stay affordable on larger supernets.
MAX_GRADIENT_FLOATS = 20_000_000
SKETCH_DIM = 8192


@dataclass(frozen=True)
class LayerCosine:
    """Mean per-layer cosine distance (§5.4.2): ``bounds`` are the column offsets of the layers'
    blocks in a vector (``len(layers) + 1`` of them)."""

    bounds: tuple[int, ...]

    def __str__(self) -> str:
        return "layer-cosine"

    def state(self) -> list[int]:
        return [int(b) for b in self.bounds]


Metric = str | LayerCosine


def metric_of(state: Any) -> Metric:
    """A metric back from its checkpointed form (a name, or a list of layer bounds)."""
    return LayerCosine(tuple(int(b) for b in state)) if isinstance(state, list | tuple) else str(state)


def metric_state(metric: Metric) -> Any:
    return metric.state() if isinstance(metric, LayerCosine) else str(metric)


@dataclass
class Representations:
    """Rows of ``X`` represent ``archs``; ``metric`` says how to compare them."""

    archs: list[Arch]
    X: np.ndarray
    metric: Metric
    kind: str

    def distances(self, other: np.ndarray | None = None) -> np.ndarray:
        """Pairwise distances (``len(archs)`` x ``len(other or archs)``)."""
        return pairwise(self.X, self.X if other is None else other, self.metric)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"representation: expected one of {', '.join(KINDS)}, got {kind!r} "
                         f"(e.g. representation='functional')")
    return kind


def _layer_blocks(X: np.ndarray, bounds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows with every layer block scaled to unit length, and which blocks are used (non-zero)."""
    sizes = np.diff(np.asarray(bounds))
    norms = np.stack([np.linalg.norm(X[:, lo:hi], axis=1) for lo, hi in zip(bounds[:-1], bounds[1:])], axis=1)
    used = norms > 0
    return X / np.repeat(np.where(used, norms, 1.0), sizes, axis=1), used


def layer_normalise(X: np.ndarray, metric: Metric) -> np.ndarray:
    """Rows scaled the way the metric compares them: unit length (cosine), unit length per layer
    (layer cosine), unchanged (hamming); the space KMeans and prototype updates work in."""
    X = np.asarray(X, float)
    if isinstance(metric, LayerCosine):
        return _layer_blocks(X, metric.bounds)[0]
    if metric == "cosine":
        norm = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(norm == 0, 1, norm)
    return X


def pairwise(X: np.ndarray, Y: np.ndarray, metric: Metric) -> np.ndarray:
    """Distance matrix between the rows of X and Y: ``cosine`` (1 - cos), ``hamming`` (weighted)
    or a :class:`LayerCosine` (mean per-layer 1 - cos, 1 for a layer only one row uses)."""
    X, Y = np.atleast_2d(np.asarray(X, float)), np.atleast_2d(np.asarray(Y, float))
    if isinstance(metric, LayerCosine):
        xn, ux = _layer_blocks(X, metric.bounds)
        yn, uy = _layer_blocks(Y, metric.bounds)
        ux, uy = ux.astype(float), uy.astype(float)
        union = ux.sum(1)[:, None] + uy.sum(1)[None, :] - ux @ uy.T  # layers either row uses
        # sum over the layers both use of their cosine (blocks used by one row contribute 0)
        d = 1.0 - (xn @ yn.T) / np.maximum(union, 1.0)
        return np.clip(np.where(union > 0, d, 1.0), 0.0, 2.0)
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


def parameter_layers(net: nn.Module) -> list[list[int]]:
    """Indices (into the trainable parameters, in order) of each layer: the parameters owned
    directly by one module."""
    index = {id(p): i for i, p in enumerate(p for p in net.parameters() if p.requires_grad)}
    out = []
    for mod in net.modules():
        own = [index[id(p)] for p in mod.parameters(recurse=False) if id(p) in index]
        if own:
            out.append(own)
    return out


class _Sketch:
    """A count sketch of each layer's gradient, from ``seed`` only (every call the same)."""

    def __init__(self, sizes: Sequence[int], dim: int, seed: int) -> None:
        total = max(1, int(sum(sizes)))
        gen = torch.Generator().manual_seed(int(seed))
        self.dims = [int(min(n, max(8, -(-dim * n // total)))) for n in sizes]
        self.maps = []
        for n, d in zip(sizes, self.dims):
            if d >= n:  # small layers stay exact
                self.maps.append(None)
            else:
                self.maps.append((torch.randint(0, d, (n,), generator=gen),
                                  torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1))

    def __call__(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for g, d, m in zip(blocks, self.dims, self.maps):
            out.append(g if m is None else torch.zeros(d).index_add_(0, m[0], g * m[1]))
        return out


def gradient_vectors(trainer: Trainer, archs: Sequence[Arch], batch: tuple[torch.Tensor, torch.Tensor],
                     sketch: int | None, seed: int = 0) -> tuple[np.ndarray, LayerCosine]:
    """Per-layer gradient blocks of every architecture (zeros for layers a path does not use),
    count-sketched to about ``sketch`` floats when given."""
    params = [p for p in trainer.net.parameters() if p.requires_grad]
    layers = parameter_layers(trainer.net)
    sizes = [sum(params[i].numel() for i in layer) for layer in layers]
    sk = _Sketch(sizes, sketch, seed) if sketch else None
    rows = []
    for a in archs:
        grads = trainer.gradients(a, batch)
        blocks = [torch.cat([(grads[i] if grads[i] is not None else torch.zeros_like(params[i])).reshape(-1)
                             .float().cpu() for i in layer]) for layer in layers]
        if sk is not None:
            blocks = sk(blocks)
        rows.append(torch.cat(blocks).numpy())
    dims = sk.dims if sk is not None else sizes
    return np.stack(rows).astype(np.float64), LayerCosine(tuple(np.concatenate([[0], np.cumsum(dims)]).tolist()))


def gradient_sketch(trainer: Trainer, count: int) -> int | None:
    """The sketch size for ``count`` gradient vectors of this supernet (None: exact)."""
    numel = sum(p.numel() for p in trainer.net.parameters() if p.requires_grad)
    return SKETCH_DIM if numel * max(1, int(count)) > MAX_GRADIENT_FLOATS else None


def compute(trainer: Trainer, archs: Sequence[Arch], kind: str = "functional", batch_size: int = 64,
            gamma: float | None = None, layers: Sequence[str] | None = None,
            sketch: int | None | str = "auto", seed: int = 0) -> Representations:
    """Representations of ``archs`` with the trainer's current supernet.

    ``batch_size``: images of the fixed validation batch (functional, representational) or of the
    fixed gradient batch; ``gamma``: early-layer weighting of the encoding; ``layers``: module
    names hooked for CKA (default: three evenly spaced trunk blocks); ``sketch`` (gradient):
    ``"auto"`` sketches when this call's matrix would exceed ``MAX_GRADIENT_FLOATS``, an int
    always sketches to about that many floats, None never. Vectors from *different* calls are
    comparable only with the same explicit ``sketch`` and ``seed``.
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
        if sketch == "auto":
            sketch = gradient_sketch(trainer, len(archs))
        X, metric = gradient_vectors(trainer, archs, (x, y), sketch, seed)
        return Representations(archs, X, metric, kind)
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


def mean_distances(X: np.ndarray, metric: Metric, chunk: int = 1024) -> np.ndarray:
    """Eq 5.5 straight from the representations, in row chunks (no n x n matrix in memory)."""
    X = np.asarray(X, float)
    n = X.shape[0]
    if n < 2:
        return np.zeros(n)
    total = np.zeros(n)
    for lo in range(0, n, chunk):
        total[lo:lo + chunk] = pairwise(X[lo:lo + chunk], X, metric).sum(1)
    # the diagonal: 0, except a zero vector, which pairwise() treats as orthogonal to itself
    self_d = (np.linalg.norm(X, axis=1) == 0).astype(float) if metric != "hamming" else 0.0
    return (total - self_d) / (n - 1)
