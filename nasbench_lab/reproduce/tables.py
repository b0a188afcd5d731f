"""The thesis' tables as data: what is compared, under which protocol, and the numbers printed.

Every table names its methods (a label as the thesis prints it, a sampler and its options), the
metrics it reports, the thesis' value of each cell, and one :class:`Protocol` per scale:

- ``full``: the thesis' budget as written (epochs, batch, learning rate, schedule); where the text
  is silent, ``Protocol.chosen`` says what we chose.
- ``cpu``: the largest budget that runs the whole table on a 2-core CPU in a few hours (steps
  measured on real CIFAR-10, see ``Protocol.note``).
- ``tiny``: seconds, for tests and CI (a handful of steps and architectures; its numbers mean
  nothing).

Sources (thesis = shared/seeds/003_*.txt): Table 5.1 and §5.4.1 with App. II §2 (pooling: batch
512, 300 epochs, 50 of them uniform warm-up, lr 0.1 cosine, weight decay 1e-3; NAS-Bench-Macro:
20 + 50 epochs, batch 512, lr 0.1); Table 5.3 with §4.4.4 (NB-201: 50 epochs, SGD lr 0.025
cosine); Table 4.3 with §4.4.4 (pooling: SGD lr 0.1 cosine, weight decay 1e-2, batch 256, 500
epochs) and App. I §1.1 (MCTS phases 40/25/35, beta 0.95, lambda 0.5); Fig 2.5 with §2.4
(mixtures: epochs proportional to M, tau from 1 down to 1/(100 M)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: one epoch of the training half of CIFAR (50,000 images split 50/50 into train and validation)
TRAIN_IMAGES = 25_000

#: diagnostic columns of every result (runner.shared_bn_diagnostic): τ with the supernet's shared
#: BN statistics instead of per-path recalibration
SHARED_BN_KEYS = ("kendall_tau_shared_bn", "kendall_tau_top10_shared_bn")

#: metric key -> how the tables print it
METRIC_LABELS = {
    "top1": "Top-1 (true acc. of the supernet's best, %)",
    "top5": "Top-5 (mean true acc. of the supernet's top 5, %)",
    "top10": "Top-10 (mean true acc. of the supernet's top 10, %)",
    "bse": "BSE (true acc. of the Boltzmann-exploration pick, %)",
    "kendall_tau": "Kendall τ (all ranked)",
    "kendall_tau_top10": "Kendall τ (true top-10)",
}


@dataclass(frozen=True)
class Method:
    """One row of a table: the thesis' label, the sampler that implements it and its options."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.label.lower()).strip("-")


@dataclass(frozen=True)
class Protocol:
    """The training and judging budget of one scale of a table."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    val_batch_size: int = 64
    schedule: str = "cosine"
    #: validation images per architecture when ranking (after BN recalibration)
    rank_images: int = 1000
    #: architectures ranked: ``None`` for the whole space, else a fixed seeded sample shared by
    #: every method and seed of the table (drawn with ``rank_seed``)
    rank_sample: int | None = None
    rank_seed: int = 0
    #: Boltzmann softmax exploration on the trained supernet (Table 5.1's BSE): rounds per architecture
    bse_rounds_per_arch: int = 10
    #: sampler options every method of this scale gets (e.g. the density warm-up of App. II)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    epochs: float | None = None  # what the steps stand for, for the reader
    chosen: str = ""  # what we chose where the thesis is silent
    note: str = ""  # how the budget was sized

    def describe(self) -> str:
        ep = f" ({self.epochs:g} epochs of the {TRAIN_IMAGES:,}-image training half)" if self.epochs else ""
        ranked = "the whole space" if self.rank_sample is None else f"a fixed sample of {self.rank_sample} (seed {self.rank_seed})"
        return (f"{self.steps:,} steps{ep}, batch {self.batch_size}, SGD lr {self.lr:g} {self.schedule}, "
                f"weight decay {self.weight_decay:g}, reward minibatch {self.val_batch_size}; ranking {ranked} "
                f"on {self.rank_images} validation images each, BN recalibrated")


def epochs_to_steps(epochs: float, batch_size: int) -> int:
    return int(round(epochs * math.ceil(TRAIN_IMAGES / batch_size)))


@dataclass(frozen=True)
class Table:
    name: str
    thesis: str  # "Table 5.1 (top)"
    title: str
    space: str
    dataset: str
    methods: tuple[Method, ...]
    metrics: tuple[str, ...]
    #: label -> metric -> the thesis' value (a number, or (mean, sd))
    thesis_values: dict[str, dict[str, Any]]
    scales: dict[str, Protocol]
    claim: str  # what the thesis concludes from the table, in its words or close to them
    #: the ground truth the ranking is judged against (the benchmark's dataset)
    truth_dataset: str = "cifar10"
    #: how a run's steps follow from the protocol's (samplers.compare.budget_steps): "equal", or
    #: "per-model" (a mixture of M supernets trains M times the steps, thesis §2.4)
    budget_rule: str = "equal"
    primary: str = "kendall_tau"  # the metric the figure draws

    def protocol(self, scale: str) -> Protocol:
        if scale not in self.scales:
            raise ValueError(f"--scale: table {self.name!r} has scales {', '.join(self.scales)}, got {scale!r} "
                             f"(e.g. --scale cpu)")
        return self.scales[scale]


def _tiny(**kw: Any) -> Protocol:
    base = dict(steps=12, batch_size=16, lr=0.05, weight_decay=5e-4, val_batch_size=16, rank_images=32,
                rank_sample=8, bse_rounds_per_arch=2, note="tests and CI: seconds; the numbers mean nothing")
    base.update(kw)
    return Protocol(**base)


#: tiny scale on a large space: the prototype variant's KMeans on 32 represented samples, not 1,000
#: (each is a forward pass: 1,000 took 4 of a tiny NB-201 table's 5 minutes on a CPU)
_TINY_PROTOTYPES = {"variant": "prototypes", "initial_samples": 32, "prototypes": 8}

# ---------------------------------------------------------------------------------------- the tables
_POOL_DENSITY = {"temperature": 5.0, "representation": "functional"}  # §5.4: functional density, tau = 5 (Fig 5.5)

#: the pooling supernet on a CPU: one protocol for Tables 5.1 and 4.3, so their uniform runs are shared
_POOL_CPU = dict(
    steps=2000, epochs=2000 * 64 / TRAIN_IMAGES, batch_size=64, lr=0.05, weight_decay=5e-4, val_batch_size=64,
    rank_images=2000, rank_sample=None,
    chosen="batch 64 instead of 256/512: at a CPU budget more, smaller steps train the supernet further per image; "
           "lr 0.05 and weight decay 5e-4 (the package's defaults, stable at batch 64) instead of 0.1 and 1e-3/1e-2",
    note="measured on real CIFAR-10, 2 cores, 1 thread per run: ~1.9 steps/s at batch 64 on a quiet box (0.96 "
         "under load 3.5), ranking ~3 s per architecture at 2,000 images; ~20 min a run, ~3 h for 9 runs",
)

TABLE_5_1_POOLING = Table(
    name="table-5.1-pooling", thesis="Table 5.1 (top)", space="pooling", dataset="cifar10",
    title="Pooling space on CIFAR-10: uniform vs strict fairness vs density-aware debiasing",
    methods=(Method("Uniform", "uniform"), Method("Strict fairness", "fair"),
             Method("Debiased", "density", _POOL_DENSITY)),
    metrics=("top1", "top5", "top10", "bse", "kendall_tau"),
    thesis_values={
        "Uniform": {"top1": 90.51, "top5": 90.46, "top10": 90.54, "bse": 90.42, "kendall_tau": 0.16},
        "Strict fairness": {"top1": 91.05, "top5": 90.63, "top10": 90.31, "bse": 91.70, "kendall_tau": 0.21},
        "Debiased": {"top1": 91.83, "top5": 90.92, "top10": 90.59, "bse": 92.01, "kendall_tau": 0.34},
    },
    scales={
        "full": Protocol(steps=epochs_to_steps(300, 512), epochs=300, batch_size=512, lr=0.1, weight_decay=1e-3,
                         rank_images=10_000, method_options={"density": {"warmup": 50 / 300}},
                         chosen="reward minibatch 64 and ranking on 10,000 validation images (not stated)"),
        "cpu": Protocol(**_POOL_CPU, method_options={"density": {"warmup": 50 / 300}}),
        "tiny": _tiny(method_options={"density": {"warmup": 0.25}}),
    },
    claim="debiasing ranks the pooling space better than uniform and strict fairness (τ .16 → .21 → .34) and "
          "only the debiased supernet leads BSE to the best architecture",
)

TABLE_5_1_NBMACRO = Table(
    name="table-5.1-nbmacro", thesis="Table 5.1 (bottom)", space="nbmacro", dataset="cifar10",
    title="NAS-Bench-Macro on CIFAR-10: uniform vs strict fairness vs density-aware debiasing",
    methods=TABLE_5_1_POOLING.methods,
    metrics=("top1", "top5", "top10", "bse", "kendall_tau"),
    thesis_values={
        "Uniform": {"top1": 92.03, "top5": 91.72, "top10": 91.52, "bse": 92.09, "kendall_tau": 0.72},
        "Strict fairness": {"top1": 92.47, "top5": 91.45, "top10": 91.22, "bse": 92.51, "kendall_tau": 0.72},
        "Debiased": {"top1": 92.56, "top5": 92.02, "top10": 91.64, "bse": 93.13, "kendall_tau": 0.74},
    },
    scales={
        "full": Protocol(steps=epochs_to_steps(70, 512), epochs=70, batch_size=512, lr=0.1, weight_decay=5e-4,
                         rank_images=10_000, rank_sample=None, method_options={"density": {"warmup": 20 / 70}},
                         chosen="weight decay 5e-4 (not stated); ranking the whole space (6,561 keys)"),
        "cpu": Protocol(steps=1500, epochs=1500 * 64 / TRAIN_IMAGES, batch_size=64, lr=0.05, weight_decay=5e-4,
                        rank_images=500, rank_sample=200, method_options={"density": {"warmup": 20 / 70}},
                        chosen="batch 64, lr 0.05; a fixed sample of 200 of the 6,561 keys is ranked (the whole "
                               "space costs ~15 s an architecture on a CPU)",
                        note="~0.4 steps/s at batch 64 on 2 cores: ~1 h a run"),
        "tiny": _tiny(method_options={"density": {"warmup": 0.25, **_TINY_PROTOTYPES}}),
    },
    claim="on NAS-Bench-Macro every sampler ranks well (τ ≈ .72) and debiasing still helps a little (.74)",
)

TABLE_5_3_NB201 = Table(
    name="table-5.3-nb201", thesis="Table 5.3 (CIFAR-10)", space="nb201", dataset="cifar10",
    title="NAS-Bench-201 on CIFAR-10: uniform vs FairNAS vs density-aware debiasing",
    methods=(Method("Uniform", "uniform"), Method("FairNas", "fair"), Method("Debiased", "density", _POOL_DENSITY)),
    metrics=("top1", "kendall_tau"),
    thesis_values={
        "Uniform": {"top1": (84.02, 2.31), "kendall_tau": 0.42},
        "FairNas": {"top1": (87.33, 0.89), "kendall_tau": 0.53},
        "Debiased": {"top1": (91.63, 1.21), "kendall_tau": 0.59},
    },
    scales={
        "full": Protocol(steps=epochs_to_steps(50, 64), epochs=50, batch_size=64, lr=0.025, weight_decay=5e-4,
                         rank_images=5000, rank_sample=1000,
                         chosen="batch 64 and weight decay 5e-4 (NB-201's own supernet settings; the thesis gives "
                                "epochs, lr and schedule only); 1,000 ranked cells on 5,000 images"),
        "cpu": Protocol(steps=2400, epochs=2400 * 64 / TRAIN_IMAGES, batch_size=64, lr=0.025, weight_decay=5e-4,
                        rank_images=500, rank_sample=200,
                        chosen="batch 64 and weight decay 5e-4 as at full scale; 200 ranked cells (the fewest "
                               "the reproduction issue allows) on 500 images each; FairNAS sums its 5 paths into one "
                               "update (Chu et al.), so its 2,400 steps (paths) are 480 updates: the same forward and "
                               "backward work as the others",
                        note="measured on real CIFAR-10, 2 cores, 1 thread: ~1.5 steps/s on a quiet box (0.64 "
                             "under load 3.5), ~2 s a cell to rank; ~35 min a run, ~5 h for 9 runs"),
        "tiny": _tiny(method_options={"density": _TINY_PROTOTYPES}),
    },
    claim="FairNAS ranks NB-201 better than uniform and debiasing best (τ .42 → .53 → .59), and finds better cells",
)

TABLE_5_3_NB201_C100 = Table(
    name="table-5.3-nb201-cifar100", thesis="Table 5.3 (CIFAR-100)", space="nb201", dataset="cifar100",
    title="NAS-Bench-201 on CIFAR-100: uniform vs FairNAS vs density-aware debiasing",
    methods=TABLE_5_3_NB201.methods, metrics=("top1", "kendall_tau"),
    thesis_values={
        "Uniform": {"top1": (52.31, 3.49), "kendall_tau": 0.39},
        "FairNas": {"top1": (54.07, 2.45), "kendall_tau": 0.49},
        "Debiased": {"top1": (66.48, 2.08), "kendall_tau": 0.58},
    },
    scales=TABLE_5_3_NB201.scales, truth_dataset="cifar100",
    claim="the same order on CIFAR-100 (τ .39 → .49 → .58)",
)

TABLE_4_3_TOP10 = Table(
    name="table-4.3-top10", thesis="Table 4.3", space="pooling", dataset="cifar10",
    title="Pooling space on CIFAR-10: Kendall τ of the true top-10 after supernet training",
    methods=(Method("Uniform Sampling", "uniform"), Method("Boltzmann Sampling", "boltzmann"),
             Method("MCTS-default", "mcts"), Method("Iterative MCTS", "mcts-iterative")),
    metrics=("kendall_tau_top10", "kendall_tau", "top1"),
    thesis_values={
        "Uniform Sampling": {"kendall_tau_top10": 0.14},
        "Boltzmann Sampling": {"kendall_tau_top10": 0.11},
        "MCTS-default": {"kendall_tau_top10": 0.32},
        "Iterative MCTS": {"kendall_tau_top10": 0.41},
    },
    scales={
        "full": Protocol(steps=epochs_to_steps(500, 256), epochs=500, batch_size=256, lr=0.1, weight_decay=1e-2,
                         rank_images=10_000,
                         chosen="reward minibatch 64 and ranking on 10,000 validation images (not stated)"),
        "cpu": Protocol(**_POOL_CPU),
        "tiny": _tiny(),
    },
    primary="kendall_tau_top10",
    claim="MCTS concentrates training on good architectures and ranks the top-10 better (τ .14/.11 → .32 → .41)",
)

FIGURE_2_5_MIXTURES = Table(
    name="figure-2.5-mixtures", thesis="Figure 2.5 (Table 2.2)", space="pooling", dataset="cifar10",
    title="Pooling space on CIFAR-10: balanced mixtures of M supernets, Kendall τ against M",
    methods=tuple(Method(f"M = {m}", "mixture", {"models": m}) for m in (1, 2, 4, 8)),
    budget_rule="per-model",
    metrics=("kendall_tau", "top1"),
    thesis_values={},  # the figure gives the trend, not the numbers
    scales={
        "full": Protocol(steps=epochs_to_steps(100, 256), epochs=100, batch_size=256, lr=0.1, weight_decay=1e-3,
                         rank_images=10_000,
                         chosen="100 epochs per model at batch 256 (§2.4 says only 'proportional to the number "
                                "of models'), weight decay 1e-3"),
        "cpu": Protocol(steps=1000, epochs=1000 * 64 / TRAIN_IMAGES, batch_size=64, lr=0.05, weight_decay=5e-4,
                        rank_images=2000, chosen="1,000 steps per model at batch 64 (M = 8: 8,000 steps)",
                        note="~15,000 steps a seed for M = 1, 2, 4, 8: ~2.2 h a seed on 2 cores"),
        "tiny": _tiny(),
    },
    claim="Kendall τ rises with the number of models M",
)

TABLES: dict[str, Table] = {t.name: t for t in (
    TABLE_5_1_POOLING, TABLE_5_1_NBMACRO, TABLE_5_3_NB201, TABLE_5_3_NB201_C100, TABLE_4_3_TOP10,
    FIGURE_2_5_MIXTURES)}


def get(name: str) -> Table:
    if name not in TABLES:
        raise ValueError(f"table: unknown {name!r}; valid: {', '.join(TABLES)} (see nasbench-lab reproduce --list)")
    return TABLES[name]


def thesis_value(table: Table, label: str, metric: str) -> tuple[float | None, float | None]:
    """(mean, sd) the thesis prints for a cell; (None, None) where it prints nothing."""
    v = table.thesis_values.get(label, {}).get(metric)
    if v is None:
        return None, None
    if isinstance(v, tuple):
        return float(v[0]), float(v[1])
    return float(v), None
