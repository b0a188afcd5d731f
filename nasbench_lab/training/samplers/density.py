"""Density-aware debiased sampling (thesis ch. 5, Alg 5.1-5.2, eq 5.5-5.10).

Under weight sharing, architectures whose gradients (or outputs) resemble many others' are
trained by their neighbours' updates too; sparse ones are under-trained. The sampler estimates each
architecture's density in a representation space and samples sparse architectures more often.

``variant="numerable"`` (Alg 5.1): after a uniform warm-up, the representation of every
architecture, its mean distance to all others ``d_a`` (eq 5.5), and ``a ~ softmax(d_a / tau)``
(eq 5.7), estimated once, as the algorithm does (Fig 5.4: densities "stabilize after a few
training epochs", which is why one estimate after a short warm-up is enough). An option the
thesis does not use: ``reestimate_every`` (a fraction of the run, or a number of steps; default
0, never) estimates again during training, for a warm-up too short for the densities to settle.

``variant="prototypes"`` (Alg 5.2) for spaces too large to compare all pairs: ``K`` prototypes by
KMeans on the representations of ``N`` uniform samples; each step draws ``a ~ U``, its density
``alpha_a = 1 / d_a`` with ``d_a = sum_k d(a, c_k) / (K - 1)`` (line 13 as written), and accepts it
with ``sigmoid((alpha_mid - alpha_a) / tau)`` (eq 5.10), else draws again (at most ``max_tries``);
the prototypes follow *every* uniformly drawn candidate, accepted or not (Alg 5.2 lines 12-19:
the update is in the loop body, after the accept/reject of line 16, so the prototypes track
the uniform distribution of the space, not the debiased one), by soft assignment (eq 5.8-5.9;
``assignment="fuzzy"``, the default, reads eq 5.8 as favouring the nearest prototype (online
fuzzy c-means), since as printed it collapses the prototypes onto one point: ``update_prototypes``
has the measurement; ``assignment="printed"`` keeps the text's form).

Scale. The thesis' temperatures (tau = 25 ~ uniform, 5 good, < 1 over-enforced, Fig 5.5) only make
sense for distances on a common scale, which the text does not give; with ``normalize="zscore"``
(default) the mean distances (numerable) and the density offsets (prototypes; ``alpha_mid`` is
the median density of the candidates drawn so far) are divided by their standard deviation, which
reproduces that behaviour for every representation. ``normalize="none"`` uses the raw values.
For cosine representations vectors are scaled to unit length (per layer for gradients, whose
distance is the mean per-layer cosine of §5.4.2, see ``representations``), so KMeans and the
prototype updates work on the sphere the distance lives on. Gradients of large supernets are
count-sketched, with one sketch (decided once for the largest batch, seeded by the run) for
every call, so the uniform candidates are comparable with the KMeans prototypes.

With a budget, "every architecture" (Alg 5.1) is every in-band architecture, and the uniform
draws of Alg 5.2 (the initial samples and each candidate) are uniform over the band: the
densities are those of the band the run trains, and nothing outside it is drawn.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.budget import Budget
from nasbench_lab.training import representations as reps
from nasbench_lab.training.samplers.base import Sampler
from nasbench_lab.training.samplers.common import (
    Progress,
    Windows,
    boltzmann,
    check_fraction,
    check_positive,
    choose,
    current_genes,
    stale_state,
)

if TYPE_CHECKING:  # pragma: no cover
    from nasbench_lab.training.trainer import Trainer

NUMERABLE_MAX = 7000  # above this the pairwise comparison of Alg 5.1 is too costly: prototypes
_SNAPSHOT_ARCHS = 1500


# --------------------------------------------------------------------------- the equations
def normalise(values: np.ndarray, how: str) -> np.ndarray:
    """``zscore``: (v - mean) / std (std 0 -> zeros); ``none``: unchanged."""
    v = np.asarray(values, float)
    if how == "none":
        return v
    if how == "zscore":
        sd = v.std()
        # equal values (up to rounding) carry no density information: uniform, not amplified noise
        return (v - v.mean()) / sd if sd > 1e-9 * max(1.0, float(np.abs(v).max())) else np.zeros_like(v)
    raise ValueError(f"normalize: expected 'zscore' or 'none', got {how!r}")


def debiased_probabilities(mean_distance: np.ndarray, temperature: float, normalize: str = "zscore") -> np.ndarray:
    """Eq 5.7: ``M_tau(a) = softmax(d_a / tau)`` (sparse architectures are sampled more)."""
    return boltzmann(normalise(mean_distance, normalize), temperature)


def prototype_mean_distance(r: np.ndarray, prototypes: np.ndarray, metric: reps.Metric) -> float:
    """Alg 5.2 line 13: ``d_a = sum_k d(a, c_k) / (K - 1)``."""
    d = reps.pairwise(np.atleast_2d(r), prototypes, metric)[0]
    return float(d.sum() / max(1, len(d) - 1))


def acceptance(alpha: float, alpha_mid: float, temperature: float, scale: float = 1.0) -> float:
    """Eq 5.10: ``P_train(a) = sigmoid((alpha_mid - alpha_a) / tau)`` (``scale``: normalisation)."""
    return float(expit((alpha_mid - alpha) / (temperature * (scale if scale > 0 else 1.0))))


#: eq 5.8's soft assignment (see update_prototypes): ``fuzzy`` (default), ``inverse``, ``printed``
ASSIGNMENTS = ("fuzzy", "inverse", "printed")


def update_prototypes(prototypes: np.ndarray, r: np.ndarray, lam: float, metric: reps.Metric,
                      assignment: str = "fuzzy") -> np.ndarray:
    """Eq 5.9, ``c_k += lam * beta_k * (a - c_k)``, with eq 5.8's soft assignment ``beta``.

    ``printed``: ``beta_k = d^2(a, c_k) / sum_j d^2(a, c_j)``, eq 5.8 as written. It moves the
    *farthest* prototypes most, so every sample pulls every prototype and they collapse onto one
    running mean; Alg 5.2's density then degenerates to "distance to one point". §5.3.5 wants the
    prototypes to stay "representative" of the space by a "soft-assignment rule", which needs the
    nearest prototype to move most: we read eq 5.8 as a typo for its inverse.
    ``inverse``: ``u_k = d^-2(a, c_k) / sum_j d^-2(a, c_j)``, the inverted ratio alone. It still
    collapses, more slowly: distances in a representation space are concentrated, so ``u`` is
    nearly flat and all prototypes drift to the mean (the phase transition of soft clustering).
    ``fuzzy`` (default): ``beta_k = u_k^2``, online fuzzy c-means with fuzzifier m = 2 (Bezdek
    1981: memberships ``u_k`` as above, centroids weighted by ``u_k^m``); a prototype at distance 0
    takes the whole update. Measured (K = 8 KMeans prototypes, 3,000 uniform pooling samples,
    lambda = 0.05; mean pairwise prototype distance before -> after): functional-like unit
    vectors 0.264 -> printed 0.000, inverse 0.000, fuzzy 0.258; encodings (hamming) 1.998 ->
    printed 0.000, inverse 0.000, fuzzy 1.762 (hard nearest-prototype k-means: 0.250 and 1.998).
    tests/test_fidelity_pass2.py checks it through the sampler."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment: expected one of {ASSIGNMENTS}, got {assignment!r} (e.g. 'fuzzy')")
    C = np.asarray(prototypes, float)
    d2 = reps.pairwise(np.atleast_2d(r), C, metric)[0] ** 2
    if assignment == "printed":
        beta = d2 / d2.sum() if d2.sum() > 0 else np.full(len(C), 1.0 / len(C))
    else:
        zero = d2 <= 1e-24
        u = zero / float(zero.sum()) if zero.any() else (1.0 / d2) / (1.0 / d2).sum()
        beta = u if assignment == "inverse" else u ** 2
    return C + lam * beta[:, None] * (np.asarray(r, float)[None, :] - C)


def project(X: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, Any]:
    """2-D coordinates of the rows of X (PCA, or t-SNE) and the fitted PCA (None for t-SNE)."""
    X = np.asarray(X, float)
    if X.shape[0] < 2:
        return np.zeros((X.shape[0], 2)), None
    if method == "pca":
        from sklearn.decomposition import PCA

        k = min(2, X.shape[0], X.shape[1])
        pca = PCA(n_components=k, random_state=seed).fit(X)
        out = np.zeros((X.shape[0], 2))
        out[:, :k] = pca.transform(X)
        return out, pca
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (X.shape[0] - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X), None
    raise ValueError(f"projection: expected 'pca' or 'tsne', got {method!r}")


# --------------------------------------------------------------------------- the sampler
class DensitySampler(Sampler):
    """Debiased sampling by representation density (numerable: Alg 5.1; large spaces: Alg 5.2)."""

    name = "density"

    def __init__(self, space: SearchSpace, seed: int = 0, representation: str = "functional",
                 variant: str = "auto", temperature: float = 5.0, normalize: str = "zscore",
                 warmup: float = 0.2, reestimate_every: float = 0, batch_size: int = 64,
                 gamma: float | None = None, layers: list[str] | None = None, prototypes: int = 100,
                 initial_samples: int = 1000, proto_lr: float = 0.05, assignment: str = "fuzzy",
                 max_tries: int = 20,
                 alpha_window: int = 1000, projection: str = "pca", total_steps: int | None = None,
                 budget: str | dict | Budget | None = None) -> None:
        super().__init__(space, seed, budget=budget)
        self.representation = reps.check_kind(representation)
        if variant == "auto":
            variant = "numerable" if space.numerable and space.size <= NUMERABLE_MAX else "prototypes"
        if variant not in ("numerable", "prototypes"):
            raise ValueError(f"variant: expected 'auto', 'numerable' or 'prototypes', got {variant!r}")
        if variant == "numerable" and not space.numerable:
            raise ValueError(f"variant: 'numerable' needs every architecture, but {space.name!r} has "
                             f"{space.size:.3g}; use variant='prototypes'")
        self.variant = variant
        self.temperature = check_positive("temperature", temperature, "5.0")
        normalise(np.zeros(1), normalize)  # validates the name
        self.normalize = normalize
        self.warmup = check_fraction("warmup", warmup)
        self.reestimate_every = float(reestimate_every)
        if self.reestimate_every < 0:
            raise ValueError(f"reestimate_every: expected a fraction of the run (< 1), a number of steps (>= 1) "
                             f"or 0 for never, got {reestimate_every!r} (e.g. 0.25)")
        self.batch_size = int(batch_size)
        self.gamma = gamma
        self.layers = layers
        self.K = int(prototypes)
        self.N = int(initial_samples)
        if self.K < 2 or self.N < self.K:
            raise ValueError(f"prototypes/initial_samples: expected 2 <= prototypes <= initial_samples, got "
                             f"{self.K} and {self.N} (e.g. prototypes=100, initial_samples=1000)")
        self.proto_lr = float(proto_lr)
        if assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment: expected one of {ASSIGNMENTS}, got {assignment!r} (e.g. 'fuzzy')")
        self.assignment = assignment
        self.max_tries = max(1, int(max_tries))
        self.alpha_window = max(10, int(alpha_window))
        if projection not in ("pca", "tsne"):
            raise ValueError(f"projection: expected 'pca' or 'tsne', got {projection!r}")
        self.projection = projection
        self.metric: reps.Metric = reps.METRICS[self.representation]  # the full metric after the first call
        self.sketch: int | None = None  # gradient sketch size, decided at the first call
        self._sketch_decided = False
        self.progress = Progress(total_steps)
        self.windows = Windows()
        self.counts: Counter[str] = Counter()
        # numerable state
        self.archs = self.in_band_archs() if variant == "numerable" else []
        self.mean_dist: np.ndarray | None = None
        self.probs: np.ndarray | None = None
        self.coords: np.ndarray | None = None
        self.estimations = 0
        self.last_estimate = -1
        self.history: list[dict[str, Any]] = []
        # prototype state
        self.prototypes: np.ndarray | None = None
        self.alphas: list[float] = []
        self.pending: tuple[Arch, np.ndarray, float] | None = None
        self.tried = 0
        self.accepted = 0
        self.recent: list[dict[str, Any]] = []
        self.pca: tuple[np.ndarray, np.ndarray] | None = None  # (mean, components) for the view

    # ------------------------------------------------------------------ representations
    def _represent(self, trainer: Trainer, archs: list[Arch]) -> np.ndarray:
        if not self._sketch_decided:  # one projection for the whole run (the largest batch decides)
            largest = len(self.archs) if self.variant == "numerable" else self.N
            self.sketch = reps.gradient_sketch(trainer, largest) if self.representation == "gradient" else None
            self._sketch_decided = True
        r = reps.compute(trainer, archs, self.representation, batch_size=self.batch_size, gamma=self.gamma,
                         layers=self.layers, sketch=self.sketch, seed=self.seed)
        self.metric = r.metric
        return reps.layer_normalise(r.X, r.metric)

    def _interval(self) -> int:
        if self.reestimate_every <= 0:
            return 0
        if self.reestimate_every < 1:
            return max(1, int(round(self.reestimate_every * (self.progress.total or 0))))
        return int(self.reestimate_every)

    # ------------------------------------------------------------------ phase hook
    def in_warmup(self) -> bool:
        return self.progress.frac() < self.warmup

    def before_step(self, trainer: Trainer) -> None:
        self.progress.update(trainer)
        if self.in_warmup():
            return
        if self.variant == "numerable":
            every = self._interval()
            if self.mean_dist is None or (every and self.progress.step - self.last_estimate >= every):
                self.estimate(trainer)
        else:
            if self.prototypes is None:
                self.init_prototypes(trainer)
            self.pending = self._draw(trainer)

    # ------------------------------------------------------------------ Alg 5.1
    def estimate(self, trainer: Trainer) -> np.ndarray:
        """Representations of every architecture -> mean distances (eq 5.5) -> eq 5.7."""
        X = self._represent(trainer, self.archs)
        coords, _ = project(X, self.projection, self.seed)
        return self.set_mean_distances(reps.mean_distances(X, self.metric), coords)

    def set_mean_distances(self, mean_dist: np.ndarray, coords: np.ndarray | None = None) -> np.ndarray:
        """Install densities (e.g. from a hand-made distance matrix) and the sampling distribution."""
        md = np.asarray(mean_dist, float)
        if self.variant != "numerable" or md.shape != (len(self.archs),):
            raise ValueError(f"mean_dist: expected one mean distance per architecture ({len(self.archs)}), "
                             f"got shape {md.shape}")
        self.mean_dist = md
        self.probs = debiased_probabilities(md, self.temperature, self.normalize)
        self.coords = None if coords is None else np.asarray(coords, float)
        self.estimations += 1
        self.last_estimate = self.progress.step
        if len(self.archs) <= 200:
            self.history.append({"step": self.progress.step, "density": (1.0 / np.maximum(md, 1e-12)).tolist()})
        return self.probs

    # ------------------------------------------------------------------ Alg 5.2
    def init_prototypes(self, trainer: Trainer) -> np.ndarray:
        """KMeans on the representations of ``initial_samples`` uniform samples."""
        from sklearn.cluster import KMeans

        sample = [self.uniform() for _ in range(self.N)]
        X = self._represent(trainer, sample)
        km = KMeans(n_clusters=self.K, n_init=3, random_state=self.seed).fit(X)
        self.prototypes = km.cluster_centers_.astype(float)
        self.alphas = [1.0 / max(prototype_mean_distance(x, self.prototypes, self.metric), 1e-12) for x in X]
        self.alphas = self.alphas[-self.alpha_window:]
        _, pca = project(np.vstack([X, self.prototypes]), "pca", self.seed)
        if pca is not None:
            self.pca = (pca.mean_.copy(), pca.components_.copy())
        return self.prototypes

    def alpha_mid(self) -> float:
        return float(np.median(self.alphas)) if self.alphas else 0.0

    def _xy(self, r: np.ndarray) -> list[float]:
        if self.pca is None:
            return [0.0, 0.0]
        mean, comp = self.pca
        xy = comp @ (np.asarray(r, float) - mean)
        return [float(xy[0]), float(xy[1]) if len(xy) > 1 else 0.0]

    def _draw(self, trainer: Trainer) -> tuple[Arch, np.ndarray, float]:
        """Uniform candidates accepted with eq 5.10 (the last one after ``max_tries``); every
        candidate moves the prototypes (eq 5.8-5.9, Alg 5.2 lines 18-19)."""
        for t in range(self.max_tries):
            a = self.uniform()
            r = self._represent(trainer, [a])[0]
            alpha = 1.0 / max(prototype_mean_distance(r, self.prototypes, self.metric), 1e-12)
            scale = float(np.std(self.alphas)) if self.normalize == "zscore" else 1.0
            p = acceptance(alpha, self.alpha_mid(), self.temperature, scale)
            ok = bool(self.rng.random() < p) or t == self.max_tries - 1
            self.prototypes = update_prototypes(self.prototypes, r, self.proto_lr, self.metric, self.assignment)
            self.alphas = (self.alphas + [alpha])[-self.alpha_window:]
            self.tried += 1
            self.recent = (self.recent + [{"arch": str(a), "alpha": alpha, "p_accept": p, "accepted": ok,
                                           "xy": self._xy(r)}])[-300:]
            if ok:
                self.accepted += 1
                return a, r, alpha
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ sampler contract
    def sample(self) -> Arch:
        if self.in_warmup():
            return self.uniform()
        if self.variant == "numerable":
            if self.probs is None:
                return self.uniform()
            return self.archs[choose(self.rng, self.probs)]
        if self.pending is None:
            return self.uniform()
        return self.pending[0]

    def observe(self, arch: Arch, reward: float) -> None:
        self.pending = None
        super().observe(arch, reward)
        self.progress.observed(self.steps)
        self.counts[str(arch)] += 1
        self.windows.add(str(arch), self.steps, self.progress.total)

    def select(self, trainer: Trainer | None = None, k: int = 1) -> list[Arch]:
        """Debiasing changes training, not the choice: with a trainer, the best by validation accuracy."""
        if trainer is None or self.variant != "numerable":
            return []
        acc = np.array([trainer.evaluate(a) for a in self.archs])
        return [self.archs[i] for i in np.argsort(-acc, kind="stable")[:k]]

    def options(self) -> dict[str, Any]:
        return {"representation": self.representation, "variant": self.variant, "temperature": self.temperature,
                "normalize": self.normalize, "warmup": self.warmup, "reestimate_every": self.reestimate_every,
                "batch_size": self.batch_size, "gamma": self.gamma, "layers": self.layers,
                "prototypes": self.K, "initial_samples": self.N, "proto_lr": self.proto_lr,
                "assignment": self.assignment,
                "max_tries": self.max_tries, "alpha_window": self.alpha_window, "projection": self.projection}

    def snapshot(self) -> dict[str, Any]:
        snap = {**super().snapshot(), "panel": "nasbench_lab.viz.density:density_panel",
                "variant": self.variant, "representation": self.representation,
                "temperature": self.temperature, "normalize": self.normalize,
                "phase": "warm-up" if self.in_warmup() else "debiased", "windows": self.windows.data()}
        if self.variant == "numerable":
            # a snapshot is stored many times per run: large spaces send every k-th architecture
            idx = np.arange(0, len(self.archs), max(1, -(-len(self.archs) // _SNAPSHOT_ARCHS)))
            snap.update({"archs": [str(self.archs[i]) for i in idx],
                         "counts": [self.counts.get(str(self.archs[i]), 0) for i in idx],
                         "estimations": self.estimations, "subsampled": len(idx) < len(self.archs)})
            if self.mean_dist is not None:
                snap.update({"mean_distance": self.mean_dist[idx].tolist(),
                             "density": (1.0 / np.maximum(self.mean_dist[idx], 1e-12)).tolist(),
                             "p": self.probs[idx].tolist(), "history": self.history[-50:]})
            if self.coords is not None:
                snap["coords"] = self.coords[idx].tolist()
        else:
            snap.update({"counts": dict(self.counts.most_common(200)), "recent": list(self.recent),
                         "alpha_mid": self.alpha_mid(), "tried": self.tried, "accepted": self.accepted})
            if self.prototypes is not None:
                snap["prototypes_xy"] = [self._xy(c) for c in self.prototypes]
        return snap

    def state_dict(self) -> dict[str, Any]:
        # plain data only (lists, numbers, strings): checkpoints load with weights_only=True
        def arr(x: np.ndarray | None) -> list | None:
            return None if x is None else np.asarray(x, float).tolist()

        return {**super().state_dict(), "progress": self.progress.state_dict(),
                "windows": self.windows.state_dict(), "counts": dict(self.counts),
                "mean_dist": arr(self.mean_dist), "probs": arr(self.probs), "coords": arr(self.coords),
                "estimations": self.estimations, "last_estimate": self.last_estimate,
                "history": [dict(h) for h in self.history], "prototypes": arr(self.prototypes),
                "alphas": [float(a) for a in self.alphas], "tried": self.tried, "accepted": self.accepted,
                "recent": [dict(r) for r in self.recent],
                "pending": None if self.pending is None else [list(self.pending[0].genes), arr(self.pending[1]),
                                                              float(self.pending[2])],
                "pca": None if self.pca is None else [arr(self.pca[0]), arr(self.pca[1])],
                "metric": reps.metric_state(self.metric), "sketch": self.sketch,
                "sketch_decided": self._sketch_decided}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "metric" not in state and self.representation == "gradient" and state["prototypes"] is not None:
            raise stale_state(self.space, self.name, "gradient prototypes (one global cosine; the gradient "
                                                     "distance is now the mean per-layer cosine of §5.4.2)")
        super().load_state_dict(state)
        self.progress.load_state_dict(state["progress"])
        self.windows.load_state_dict(state["windows"])
        self.counts = Counter(state["counts"])

        def arr(x: Any) -> np.ndarray | None:
            return None if x is None else np.array(x, dtype=float, copy=True)

        self.mean_dist, self.probs, self.coords = arr(state["mean_dist"]), arr(state["probs"]), arr(state["coords"])
        self.estimations, self.last_estimate = int(state["estimations"]), int(state["last_estimate"])
        self.history = [dict(h) for h in state["history"]]
        self.prototypes = arr(state["prototypes"])
        self.alphas = [float(a) for a in state["alphas"]]
        self.tried, self.accepted = int(state["tried"]), int(state["accepted"])
        self.recent = [dict(r) for r in state["recent"]]
        p = state["pending"]
        self.pending = None if p is None else (self.space.arch(current_genes(self.space, p[0])),
                                               np.array(p[1], float), float(p[2]))
        self.pca = None if state["pca"] is None else (np.array(state["pca"][0]), np.array(state["pca"][1]))
        self.metric = reps.metric_of(state.get("metric", reps.METRICS[self.representation]))
        self.sketch = state.get("sketch")
        self._sketch_decided = bool(state.get("sketch_decided", False))
