"""The differentiable trainer: DARTS and its fixes as one :class:`~nasbench_lab.runs.Job`.

Each step alternates an architecture step on a validation minibatch and a weight step on a
training minibatch (the 50/50 train/val halves of a DataBundle), the architecture step first
(DARTS' order) or second (GDAS' order, ``weight_first``):

* ``darts``: first order, ``alpha -= Adam(grad_alpha L_val(w, alpha))``;
* ``darts2``: second order, one-step unrolled ``w' = w - xi grad_w L_train`` with the
  finite-difference Hessian-vector product (:func:`~.monitors.unrolled_arch_grads`);
* ``gdas``: hard Gumbel-softmax sample per edge (straight-through), only the sampled op is
  computed; temperature ``tau_max -> tau_min`` (10 -> 0.1) linearly over the epochs, constant
  within one (the reference's ``set_tau`` per epoch), the weight step first; as in the
  reference ``forward_gdas`` the unselected ops add their (zero-valued) hard weight, so the
  straight-through gradient reaches every logit of the edge;
* ``fairdarts``: sigmoid weights + zero-one loss ``-w01 * mean((sigmoid(alpha) - 0.5)^2)``; as
  in the reference code there is no ``none`` op (its output is zero, so only the zero-one loss
  would move it and saturate it from its initial sign), alphas start at 0 (sigmoid 0.5), and the
  cell is derived with a threshold on the sigmoid weights (``fair_threshold`` 0.85, the
  reference's ``threshold_sparse``: an NB-201 edge whose best op is below it becomes ``none``);
* ``pcdarts``: 1/K of the channels through the mixed op (K = ``partial``) and edge
  normalisation: each node weighs its incoming edges by a softmax over betas; the weights warm
  up alone for the first 15 of the 50 epochs (the reference's ``if epoch >= 15``);
* ``darts-minus``: an auxiliary skip connection on every edge, weighted by ``aux_skip`` decaying
  linearly to 0 over the epochs (the reference's ``DecayScheduler`` 'linear', per epoch);
* ``gaea``: exponentiated gradient on the simplex: with ``p = softmax(alpha)``, the update
  ``alpha -= eta * grad_p L_val`` is ``p <- p * exp(-eta grad_p) / Z`` (mirror descent).

Published settings per method (:data:`PUBLISHED`; table and sources in ``docs/differentiable.md``):
a field left None (``batch_size``, ``lr``, ``arch_lr``, ``arch_betas``, ``epochs``,
``warmup_steps``, ``weight_first``) takes its method's value. DARTS: SGD lr 0.025 (cosine to
``lr_min``), momentum 0.9, wd 3e-4, gradient clip 5, batch 64; alphas Adam lr 3e-4, betas (0.5,
0.999), wd 1e-3; 50 epochs. PC-DARTS: batch 256, lr 0.1, arch lr 6e-4, 15 warm-up epochs of 50.
GDAS: the weight step first, tau per epoch over 240 epochs. FairDARTS: batch 128, lr 0.005, arch
lr 3e-3, betas (0.9, 0.999). GAEA: exponentiated gradient, lr 0.1.

Epochs on a step budget: a run is ``steps`` steps and stands for the paper's ``epochs`` epochs,
so epoch ``e`` is the steps ``[e * steps / epochs, (e + 1) * steps / epochs)`` and per-epoch
schedules (GDAS' tau, DARTS-' auxiliary weight, PC-DARTS' warm-up) advance there; a run shorter
than ``epochs`` steps gives every step its own epoch, so its schedules still end where the paper's
do (:meth:`DifferentiableTrainer.epoch`). The
weight lr's cosine runs per step (the references step it per epoch or per iteration: the same
curve, without the stairs). On CPU with a few hundred steps, raise ``arch_lr`` (e.g. 3e-3) to see
the alphas move.

Monitors after every step: the derived architecture (rules in :mod:`.relaxations`), its skip
count, per-edge entropy and top-1/top-2 margin, the tabular accuracy of the derived cell when the
space has a benchmark (NB-201: CIFAR-10 by default); every ``hessian_every`` steps (default:
spaced so that the monitor costs about ``hessian_budget`` = 10 % of the run, at most 50 times)
the dominant eigenvalue of the Hessian of L_val w.r.t. alpha as R-DARTS defines it: the
largest *algebraic* eigenvalue, plus R-DARTS' ``arch_weight_decay`` on the
diagonal (its Hessian is taken of the regularised validation loss), by Lanczos warm-started from
the previous eigenvector (:func:`~.monitors.hessian_top_eigen`) until the residual norm of the top
Ritz pair is at most ``hessian_tol`` (1e-3) times the largest Ritz magnitude, capped at
``hessian_iters`` (30) Hessian-vector products (a capped measurement is recorded as unconverged:
``eigen["converged"]``, ``finish()["eig_unconverged"]``), on a fixed validation batch of
``hessian_batch`` images, with the deterministic weights (softmax, or sigmoid for FairDARTS).

Collapse alarms (event ``"alarm"`` with ``rule``, ``message``, ``value``, ``threshold``), each
firing when its condition becomes true (re-armed when it becomes false again), checked from step
``alarm_after`` on (default: max(warm-up, 10 % of the steps)). ``alarm_rules`` picks them
(default ``("skip", "darts-es", "disconnected")``):

* ``"skip"`` (DARTS+ criterion 1): at least ``skip_threshold`` *decided* skip edges in the derived
  cell (DARTS cells: 2 in the normal cell; NB-201: 3 of 6 edges). A skip edge counts once its
  normalised weight leads the runner-up on that edge by ``skip_margin`` (0.05): the argmax of
  near-uniform alphas (every weight 0.2) is noise, not a decision;
* ``"darts-es"`` (R-DARTS §4.3, :class:`~.monitors.DartsES`): the local average of the last
  ``es_window`` (5) eigenvalues exceeds ``es_factor`` (1.3) times the local average ``es_delta``
  (4) measurements earlier, once that earlier one lies past ``es_start_epoch`` (10) epochs of
  the training half (R-DARTS' ``--es_start_epoch``: before that the weights are still learning
  and the eigenvalue grows in healthy runs too; on CIFAR-10 at batch 64 that is step 3,906, on
  digits step 112); the alarm names the step whose architecture DARTS-ES keeps (``stop_step``,
  ``stop_arch``);
* ``"disconnected"`` (NB-201): every input-to-output path of the derived cell crosses a ``none``
  edge, so the cell outputs zeros (the table's 10 %). DARTS on NB-201 drifts there as well as
  to skips: a first-order run on digits (C=8, 600 steps, arch lr 3e-3) went from a 91.8 % cell
  to this one at step 147 and stayed there while its validation loss kept falling; the eigenvalue
  fell (max 0.35, last 0.075) and no edge was a skip, so neither rule above saw it;
* ``"eigenvalue"`` (opt-in, the earlier rule): eigenvalue >= ``eig_ratio`` x the mean of the
  first ``eig_window`` measurements. It compares with the first, near-initial, measurements,
  so it fires on the eigenvalue's normal early growth; DARTS-ES compares local averages instead.

``stop_on_alarm=True`` ends the run at the first alarm of these rules (DARTS+ / DARTS-ES early
stopping); ``finish()`` then also reports DARTS-ES's kept architecture.
``set_arch_lr(lr)`` and ``set_temperature(t)`` change the run while it is paused (or between
steps); both are saved in checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab import config as cfg_mod
from nasbench_lab import data as data_mod
from nasbench_lab import validation as V
from nasbench_lab.differentiable import relaxations
from nasbench_lab.differentiable.monitors import (
    DartsES,
    edge_entropy,
    edge_margin,
    hessian_top_eigen,
    unrolled_arch_grads,
)
from nasbench_lab.runs.job import Job
from nasbench_lab.spaces import Arch

__all__ = ["METHODS", "DifferentiableConfig", "DifferentiableTrainer"]

METHODS: tuple[str, ...] = ("darts", "darts2", "gdas", "fairdarts", "pcdarts", "darts-minus", "gaea")
WEIGHT_KIND = {"fairdarts": "sigmoid", "gdas": "gumbel"}  # every other method: softmax
PANEL = "nasbench_lab.viz.alphas:alpha_panel"
ALARM_RULES: tuple[str, ...] = ("skip", "darts-es", "disconnected", "eigenvalue")
#: at most this many eigenvalue measurements per run when ``hessian_every`` is None (R-DARTS: one
#: per epoch of a 50-epoch search)
HESSIAN_POINTS = 50
#: cost model of one measurement, in forward+backward passes of ``hessian_batch`` images: the
#: differentiable gradient plus one Hessian-vector product (~1.5 passes) per Lanczos step
HVP_PASSES = 1.5
#: Hessian-vector products the cadence plans per measurement: the residual criterion decides the real
#: count, at most ``hessian_iters`` (tiny digits runs, tol 1e-3, warm-started: 5-8 on NB-201, 9-13
#: on DARTS cells; ``nasbench-lab bench`` measures it)
HVP_PLANNED = 8

_DARTS: dict[str, Any] = {"batch_size": 64, "lr": 0.025, "arch_lr": 3e-4, "arch_betas": (0.5, 0.999), "epochs": 50,
                          "warmup_epochs": 0, "weight_first": False}
#: each method's published search settings (sources: docs/differentiable.md); a config field left
#: None takes its method's value. DARTS: Liu et al. 2019 §3.3 and ``quark0/darts`` train_search.py;
#: PC-DARTS: Xu et al. 2020 §3.3 and ``yuhuixu1993/PC-DARTS`` train_search.py (batch 256, lr 0.1,
#: arch lr 6e-4, ``if epoch >= 15``); GDAS: Dong & Yang 2019 and ``D-X-Y/AutoDL-Projects``
#: ``exps/NAS-Bench-201-algos/GDAS.py`` (weights then alphas, ``set_tau`` per epoch) with
#: ``configs/nas-benchmark/algos/GDAS.config`` (240 epochs, batch 64, lr 0.025); FairDARTS:
#: ``xiaomi-automl/FairDARTS`` fairdarts/train_search.py; DARTS-: ``Meituan-AutoML/DARTS-``
#: src/search/args.py (DARTS' values)
PUBLISHED: dict[str, dict[str, Any]] = {
    "darts": _DARTS,
    "darts2": _DARTS,
    "gdas": {**_DARTS, "epochs": 240, "weight_first": True},
    "pcdarts": {**_DARTS, "batch_size": 256, "lr": 0.1, "arch_lr": 6e-4, "warmup_epochs": 15},
    "fairdarts": {**_DARTS, "batch_size": 128, "lr": 0.005, "arch_lr": 3e-3, "arch_betas": (0.9, 0.999)},
    "darts-minus": _DARTS,
    "gaea": {**_DARTS, "arch_lr": 0.1},  # exponentiated gradient (plain SGD on the simplex point)
}


@dataclass
class DifferentiableConfig:
    """Everything that defines a differentiable search run (plain data, stored with the run)."""

    space: str = "nb201"
    dataset: str = "digits"
    data_root: str | None = None
    method: str = "darts"
    steps: int = 200  # alternating (alpha, w) steps
    batch_size: int | None = None  # None: the method's (PUBLISHED; DARTS 64, PC-DARTS 256)
    lr: float | None = None  # weight SGD lr; None: the method's (DARTS 0.025, PC-DARTS 0.1)
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float | None = None  # None: the method's (DARTS 3e-4 Adam, PC-DARTS 6e-4; gaea: 0.1 EG)
    arch_betas: tuple[float, float] | None = None  # None: the method's (0.5, 0.999); FairDARTS (0.9, 0.999)
    arch_weight_decay: float = 1e-3
    warmup_steps: int | None = None  # weight-only steps first; None: the method's epochs (pcdarts 15 of 50)
    epochs: int | None = None  # the paper's search epochs the steps stand for; None: the method's (50, GDAS 240)
    weight_first: bool | None = None  # weight step before the alpha step; None: the method's (GDAS only)
    seed: int = 0
    device: str = "auto"
    augment: bool = True
    channels: int | None = None  # initial channels C (darts/nb201: 16)
    cells: int | None = None  # darts: cells in the network (8); nb201: cells per stage (5)
    xi: float | None = None  # darts2 virtual step size; None: the current weight lr (DARTS)
    tau_max: float = 10.0
    tau_min: float = 0.1
    zero_one_weight: float = 10.0
    partial: int = 4  # PC-DARTS: 1/K of the channels go through the mixed op
    aux_skip: float = 1.0  # DARTS-: initial auxiliary skip weight
    hessian_every: int | None = None  # None: from hessian_budget (at most 50 per run); 0: never
    hessian_budget: float = 0.1  # hessian_every=None spaces measurements to cost about this fraction of the run
    hessian_iters: int = 30  # cap on Lanczos steps (Hessian-vector products) per measurement
    hessian_tol: float = 1e-3  # converged: residual norm <= this x the largest Ritz magnitude
    hessian_batch: int = 32
    skip_threshold: int | None = None  # None: the space's rule
    skip_margin: float = 0.05  # a skip edge counts once it leads the runner-up weight by this much
    alarm_rules: tuple[str, ...] = ("skip", "darts-es", "disconnected")  # any of ALARM_RULES
    es_window: int = 5  # DARTS-ES (R-DARTS): local-average window, in measurements
    es_delta: int = 4  # compare with the local average this many measurements earlier
    es_factor: float = 1.3  # stop when it grew by more than this factor
    es_start_epoch: float = 10.0  # compare only after this many epochs of the training half (R-DARTS: 10)
    eig_ratio: float = 1.3  # the opt-in "eigenvalue" rule: x the mean of the first eig_window values
    eig_window: int = 2
    alarm_after: int | None = None  # alarms are checked from this step on; None: max(warmup, steps // 10)
    stop_on_alarm: bool = False
    fair_threshold: float = 0.85  # FairDARTS: derive an op only when sigmoid(alpha) >= this
    benchmark_dataset: str = "cifar10"
    history: int = 100  # points of alpha history kept for the view (thinned evenly)
    # the relaxed network and its batches in channels_last (NHWC), oneDNN's and CUDA's fastest
    # layout, as the one-shot Trainer; False reproduces runs made before it was the default
    channels_last: bool = True
    method_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> DifferentiableConfig:
        V.check_fields(self, {"arch_lr": 3e-4, "xi": 0.025, "channels": 16, "cells": 5, "hessian_every": 20,
                              "skip_threshold": 2, "alarm_after": 20, "data_root": "~/data", "batch_size": 64,
                              "lr": 0.025, "arch_betas": (0.5, 0.999), "epochs": 50,
                              "weight_first": True})  # types, naming the field
        for name in ("channels", "cells", "skip_threshold"):  # None means the space's default, 0 is no default
            V.positive_int(name, getattr(self, name), example=16 if name == "channels" else 5, none=True)
        V.positive_int("batch_size", self.batch_size, example=64, none=True)  # None: the method's
        V.positive_int("epochs", self.epochs, example=50, none=True)
        V.positive_number("lr", self.lr, example=0.025, none=True)
        for name in ("lr_min", "weight_decay", "arch_weight_decay", "zero_one_weight", "aux_skip", "grad_clip"):
            V.number(name, getattr(self, name), min=0, example=V.default_of(DifferentiableConfig, name))
        V.number("momentum", self.momentum, min=0, max=1, max_open=True, example=0.9)
        V.positive_number("xi", self.xi, example=0.025, none=True)
        V.seed("seed", self.seed)
        for b in self.arch_betas or ():
            V.number("arch_betas", b, min=0, max=1, max_open=True, example=(0.5, 0.999))
        if self.method not in METHODS:
            raise ValueError(f"method: unknown {self.method!r}; valid: {', '.join(METHODS)} (e.g. method='darts')")
        relax = relaxations.get(self.space)  # raises for spaces without a relaxation
        if self.method in relax.unsupported:
            raise ValueError(f"method: {self.method!r} changes cell edges, which space {self.space!r} does not have; "
                             f"use one of {', '.join(m for m in METHODS if m not in relax.unsupported)}")
        if self.dataset not in data_mod.names():
            raise ValueError(f"dataset: unknown {self.dataset!r}; valid: {', '.join(data_mod.names())}")
        for name in ("steps", "hessian_iters", "hessian_batch", "partial", "eig_window", "history",
                     "es_window", "es_delta"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r} (e.g. {name}=4)")
        for name in ("tau_max", "tau_min", "eig_ratio", "hessian_tol", "hessian_budget"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or v <= 0:
                raise ValueError(f"{name}: expected a positive number, got {v!r}")
        if self.arch_lr is not None and not self.arch_lr > 0:
            raise ValueError(f"arch_lr: expected a positive learning rate or None, got {self.arch_lr!r} (e.g. 3e-4)")
        if self.hessian_every is not None and (not isinstance(self.hessian_every, int) or self.hessian_every < 0):
            raise ValueError(f"hessian_every: expected an integer >= 0 (0 = never) or None, got {self.hessian_every!r}")
        if self.alarm_after is not None and (not isinstance(self.alarm_after, int) or self.alarm_after < 0):
            raise ValueError(f"alarm_after: expected an integer >= 0 or None, got {self.alarm_after!r}")
        if self.warmup_steps is not None and (not isinstance(self.warmup_steps, int) or self.warmup_steps < 0):
            raise ValueError(f"warmup_steps: expected an integer >= 0 or None (the method's: pcdarts 15 of 50 epochs), "
                             f"got {self.warmup_steps!r} (e.g. warmup_steps=60)")
        if isinstance(self.alarm_rules, str):
            self.alarm_rules = (self.alarm_rules,)
        bad = [r for r in self.alarm_rules if r not in ALARM_RULES]
        if bad or not isinstance(self.alarm_rules, list | tuple):
            raise ValueError(f"alarm_rules: expected names from {', '.join(ALARM_RULES)}, got {self.alarm_rules!r} "
                             "(e.g. alarm_rules=['skip', 'darts-es'])")
        self.alarm_rules = tuple(self.alarm_rules)
        if not isinstance(self.es_factor, int | float) or not self.es_factor > 1:
            raise ValueError(f"es_factor: expected a number > 1, got {self.es_factor!r} (e.g. es_factor=1.3)")
        if not isinstance(self.es_start_epoch, int | float) or isinstance(self.es_start_epoch, bool) \
                or self.es_start_epoch < 0:
            raise ValueError(f"es_start_epoch: expected a number of epochs >= 0, got {self.es_start_epoch!r} "
                             "(e.g. es_start_epoch=10)")
        for name in ("skip_margin", "fair_threshold"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 1:
                raise ValueError(f"{name}: expected a number in [0, 1], got {v!r} (e.g. {name}=0.2)")
        if self.arch_betas is not None:
            self.arch_betas = tuple(float(b) for b in self.arch_betas)  # type: ignore[assignment]
        return self


def _merge(config: DifferentiableConfig) -> DifferentiableConfig:
    """Fold ``method_options`` into the fields (the lead's build_job passes options that way)."""
    opts = dict(config.method_options or {})
    if not opts:
        return config
    names = {f.name for f in dataclasses.fields(DifferentiableConfig)} - {"method_options"}
    unknown = sorted(set(opts) - names)
    if unknown:
        raise ValueError(f"method_options: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return dataclasses.replace(config, **opts, method_options={})


class _Stream:
    """Epoch-wise shuffled minibatches of one split, on the data's device."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator) -> None:
        self.x, self.y, self.bs, self.gen = x, y, min(batch_size, x.shape[0]), gen
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.x.shape[0]
        if self.perm is None or self.pos + self.bs > n:
            self.perm = torch.randperm(n, generator=self.gen, device=self.x.device)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.bs]
        self.pos += self.bs
        return self.x[idx], self.y[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.perm = None if state["perm"] is None else state["perm"].to(self.x.device)
        self.pos = int(state["pos"])


@contextlib.contextmanager
def frozen_bn(net: nn.Module):
    """Batch statistics in the forward, running statistics untouched (arch steps, monitors)."""
    saved = [(m, m.momentum) for m in net.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m, _ in saved:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in saved:
            m.momentum = mom


class DifferentiableTrainer(Job):
    """Bi-level search of a relaxed network (see the module docstring)."""

    kind = "differentiable"

    def __init__(self, config: DifferentiableConfig | dict[str, Any] | None = None,
                 data: data_mod.DataBundle | None = None, **overrides: Any) -> None:
        if isinstance(config, dict):
            config = V.make_config(DifferentiableConfig, config, None, "DifferentiableTrainer")
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(DifferentiableConfig)})
        if unknown:
            raise ValueError(f"DifferentiableTrainer: unknown option(s) {', '.join(unknown)}; "
                             f"valid: {', '.join(f.name for f in dataclasses.fields(DifferentiableConfig))}")
        config = _merge(dataclasses.replace(config or DifferentiableConfig(), **overrides)).validate()
        published = PUBLISHED[config.method]
        for name in ("batch_size", "lr", "arch_lr", "arch_betas", "epochs", "weight_first"):
            if getattr(config, name) is None:  # the method's published value (stored resolved, with the run)
                setattr(config, name, published[name])
        if config.warmup_steps is None:
            warm = published["warmup_epochs"]
            if warm >= config.epochs:
                raise ValueError(f"epochs: {config.method}'s warm-up of {warm} epochs does not fit in epochs="
                                 f"{config.epochs}; give more epochs (e.g. epochs=50) or set warmup_steps")
            # the first step at or past epoch `warm` of `epochs` (PC-DARTS: ``if epoch >= 15``, of 50)
            config.warmup_steps = -(-warm * config.steps // config.epochs)
        self.cfg = config
        self.method = config.method
        self.weight_kind = WEIGHT_KIND.get(self.method, "softmax")
        self.device = cfg_mod.device(config.device)
        self.relax = relaxations.get(config.space)
        self.space = self.relax.space
        torch.manual_seed(config.seed)  # weights and alphas are part of the seeded trajectory
        bundle = data if data is not None else data_mod.get(config.dataset, root=config.data_root, seed=config.seed)
        self.data = bundle.to(self.device)
        for split in ("train", "val"):  # both streams draw batch_size images: never cut to the split, refused
            self.data.check_batch_size("batch_size", config.batch_size, split)
        # FairDARTS' reference has no "none" op: with independent sigmoids only the zero-one loss
        # would move it (its output is zero), saturating sigmoid(none) from its initial sign
        ops = self.relax.ops_without_none() if self.method == "fairdarts" else None
        build = (self.data.num_classes, config.channels, config.cells, config.partial if self.method == "pcdarts" else 1,
                 self.method == "darts-minus")
        if (config.channels or 0) > 64 or (config.cells or 0) > 20:  # past the sizes that surely fit: count first
            with torch.device("meta"):  # the structure only, nothing allocated (channels=10,000: 2 TB of weights)
                need = 4 * sum(p.numel() * p.element_size() for p in self.relax.build(*build, ops=ops).parameters())
            name, value = ("channels", config.channels) if (config.channels or 0) > 64 else ("cells", config.cells)
            V.check_memory(name, value, need, self.device, 16 if name == "channels" else 5,
                           "weights, gradients, momentum and the unrolled copy, before any activation")
        self.net = self.relax.build(*build, ops=ops).to(self.device)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.groups: tuple[str, ...] = tuple(self.net.groups)
        k = len(self.net.op_names)
        # FairDARTS starts every sigmoid at 0.5 (reference: zeros); the others at DARTS' 1e-3 * N(0, 1)
        scale = 0.0 if self.method == "fairdarts" else 1e-3
        self.alphas = nn.ParameterDict({g: nn.Parameter(scale * torch.randn(self.net.num_edges(g), k))
                                        for g in self.groups}).to(self.device)
        self.betas: nn.ParameterDict | None = None
        if self.method == "pcdarts":
            self.betas = nn.ParameterDict({g: nn.Parameter(1e-3 * torch.randn(self.net.num_edges(g)))
                                           for g in self.groups}).to(self.device)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=config.steps,
                                                                    eta_min=min(config.lr_min, config.lr))
        arch_params = list(self.alphas.values()) + (list(self.betas.values()) if self.betas is not None else [])
        if self.method == "gaea":
            self.arch_optimizer: torch.optim.Optimizer = torch.optim.SGD(arch_params, lr=config.arch_lr)
        else:
            self.arch_optimizer = torch.optim.Adam(arch_params, lr=config.arch_lr, betas=config.arch_betas,
                                                   weight_decay=config.arch_weight_decay)
        self.total_steps = config.steps
        self.step_count = 0
        self.gen = torch.Generator(device=self.device).manual_seed(config.seed)
        self.eig_gen = torch.Generator().manual_seed(config.seed + 1)
        self.train_stream = _Stream(self.data.train_x, self.data.train_y, config.batch_size, self.gen)
        self.val_stream = _Stream(self.data.val_x, self.data.val_y, config.batch_size, self.gen)
        self.augment = self.data.augment if config.augment else None
        self.hessian_every = self.default_hessian_every(config) if config.hessian_every is None else config.hessian_every
        steps_per_epoch = self.data.train_x.shape[0] / min(config.batch_size, self.data.train_x.shape[0])
        self.darts_es = DartsES(max(1, self.hessian_every), round(config.es_start_epoch * steps_per_epoch),
                                config.es_window, config.es_delta, config.es_factor)
        self.alarm_after = (max(config.warmup_steps, config.steps // 10) if config.alarm_after is None
                            else config.alarm_after)
        self.skip_threshold = config.skip_threshold if config.skip_threshold is not None else self.relax.skip_threshold
        self._table: Any = False  # resolved lazily: a Benchmark or None
        self._tau_override: float | None = None
        self._reset_monitors()

    @staticmethod
    def default_hessian_every(config: DifferentiableConfig) -> int:
        """Steps between eigenvalue measurements when ``hessian_every`` is None.

        A measurement costs about ``(1 + HVP_PASSES * p) * hessian_batch / (2 * batch_size)``
        steps with ``p = min(hessian_iters, HVP_PLANNED)`` products (a step is two passes of
        ``batch_size`` images: the alpha step and the weight step), so measuring every
        ``cost / hessian_budget`` steps keeps the monitor near ``hessian_budget`` of the run; never more than ``HESSIAN_POINTS`` (50) measurements per run.
        The last step is always measured. ``nasbench-lab bench`` reports the measured fraction.
        """
        products = min(config.hessian_iters, HVP_PLANNED)
        cost = (1 + HVP_PASSES * products) * config.hessian_batch / (2 * config.batch_size)
        return max(1, math.ceil(cost / config.hessian_budget), math.ceil(config.steps / HESSIAN_POINTS))

    # ------------------------------------------------------------------ monitors' state
    def _reset_monitors(self) -> None:
        self.hist: dict[str, Any] = {"step": [], "weights": {g: [] for g in self.groups}, "skip_count": [],
                                     "decided_skips": [], "table_acc": [], "entropy": [], "margin": [], "reward": [],
                                     "loss": []}
        self._hist_stride = 1
        self.eigen: dict[str, list] = {"step": [], "value": [], "matvecs": [], "local_avg": [], "residual": [],
                                       "converged": []}
        self._eig_vec: np.ndarray | None = None  # warm start of the next Lanczos run
        self._eig_matvecs = 0
        self._eig_residual, self._eig_converged = 0.0, True
        self.alarms: list[dict[str, Any]] = []
        self._alarm_on: dict[str, bool] = {r: False for r in ALARM_RULES}
        self.arch_history: list[tuple[int, str]] = []
        self.current: dict[str, Any] = {}
        self.stopped_on: str | None = None

    # ------------------------------------------------------------------ live controls
    def set_arch_lr(self, lr: float) -> None:
        """New architecture learning rate, used from the next step (and saved in checkpoints)."""
        if not isinstance(lr, int | float) or not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"set_arch_lr: expected a positive learning rate, got {lr!r} (e.g. 3e-3)")
        for group in self.arch_optimizer.param_groups:
            group["lr"] = float(lr)
        self.cfg.arch_lr = float(lr)

    def set_temperature(self, t: float | None) -> None:
        """GDAS: pin the Gumbel-softmax temperature to ``t`` (None: back to the annealing schedule)."""
        if self.method != "gdas":
            raise ValueError(f"set_temperature: only GDAS samples with a temperature; this run is {self.method!r}")
        if t is not None and (not isinstance(t, int | float) or not t > 0 or not math.isfinite(t)):
            raise ValueError(f"set_temperature: expected a positive temperature or None, got {t!r} (e.g. 1.0)")
        self._tau_override = None if t is None else float(t)

    @property
    def run_epochs(self) -> int:
        """``E``: the epochs the run's steps are cut into, the paper's ``epochs`` or, for a run of
        fewer steps, one per step (its schedules then move every step and end where the paper's do)."""
        return max(1, min(self.cfg.epochs, self.cfg.steps))

    def epoch(self, step: int | None = None) -> int:
        """The epoch (0-based, of :attr:`run_epochs`) of ``step`` (default: the next step):
        ``floor(step * E / steps)``, so epoch ``e`` covers the steps ``[e * steps / E, (e + 1) *
        steps / E)``."""
        t = self.step_count if step is None else step
        return min(t * self.run_epochs // self.cfg.steps, self.run_epochs - 1)

    @property
    def temperature(self) -> float:
        """The GDAS temperature of the next step: ``tau_max - (tau_max - tau_min) * e / (E - 1)`` at
        epoch ``e`` of ``E`` (the reference's ``set_tau`` at the start of every epoch)."""
        if self._tau_override is not None:
            return self._tau_override
        c = self.cfg
        return c.tau_max - (c.tau_max - c.tau_min) * self.epoch() / max(1, self.run_epochs - 1)

    @property
    def aux_weight(self) -> float:
        """DARTS-: weight of the auxiliary skip connection at the next step, ``aux_skip * (1 - e /
        E)`` at epoch ``e`` of ``E`` (the reference's linear ``DecayScheduler``, stepped per epoch)."""
        if self.method != "darts-minus":
            return 0.0
        return self.cfg.aux_skip * (1.0 - self.epoch() / self.run_epochs)

    # ------------------------------------------------------------------ mixing weights
    def _deterministic(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(alpha) if self.weight_kind == "sigmoid" else F.softmax(alpha, dim=-1)

    def _mix(self, detach: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, list[int]] | None]:
        """Weights (and GDAS indices) for one forward of the relaxed network."""
        weights: dict[str, torch.Tensor] = {}
        index: dict[str, list[int]] | None = None
        for g, alpha in self.alphas.items():
            a = alpha.detach() if detach else alpha
            if self.weight_kind == "gumbel":
                u = torch.rand(a.shape, generator=self.gen, device=a.device).clamp_(1e-10, 1 - 1e-10)
                probs = F.softmax((F.log_softmax(a, dim=-1) - torch.log(-torch.log(u))) / self.temperature, dim=-1)
                idx = probs.argmax(dim=-1, keepdim=True)
                hard = torch.zeros_like(probs).scatter_(-1, idx, 1.0)
                weights[g] = hard - probs.detach() + probs  # straight-through
                index = index or {}
                index[g] = idx.squeeze(-1).tolist()
            else:
                weights[g] = self._deterministic(a)
        return weights, index

    def _edge_weights(self, detach: bool = False) -> dict[str, torch.Tensor] | None:
        """PC-DARTS edge normalisation: softmax over each node's incoming edges."""
        if self.betas is None:
            return None
        out = {}
        for g, beta in self.betas.items():
            b = beta.detach() if detach else beta
            ew = torch.zeros_like(b)
            for edges in self.net.node_edges(g):
                ew = ew.index_copy(0, torch.tensor(edges, device=b.device), F.softmax(b[edges], dim=-1))
            out[g] = ew
        return out

    def _forward(self, x: torch.Tensor, weights, index=None, edge_weights=None) -> torch.Tensor:
        if self.cfg.channels_last:  # every forward (steps, arch steps, Hessian, evaluation) passes here
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x, weights=weights, index=index, edge_weights=edge_weights, aux=self.aux_weight)

    def _arch_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, y)
        if self.method == "fairdarts":  # zero-one loss: push sigmoid(alpha) towards 0 or 1
            s = torch.cat([torch.sigmoid(a).reshape(-1) for a in self.alphas.values()])
            loss = loss - self.cfg.zero_one_weight * ((s - 0.5) ** 2).mean()
        return loss

    # ------------------------------------------------------------------ the step
    def _arch_step(self, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
                   lr: float) -> tuple[float, float]:
        arch = list(self.alphas.values()) + (list(self.betas.values()) if self.betas is not None else [])
        self.arch_optimizer.zero_grad(set_to_none=True)
        last: dict[str, torch.Tensor] = {}
        with frozen_bn(self.net):
            if self.method == "darts2":
                def train_loss() -> torch.Tensor:
                    w, i = self._mix()
                    return F.cross_entropy(self._forward(x, w, i, self._edge_weights()), y)

                def val_loss() -> torch.Tensor:
                    w, i = self._mix()
                    last["logits"] = self._forward(xv, w, i, self._edge_weights())
                    return self._arch_loss(last["logits"], yv)

                params = list(self.net.parameters())
                extra = []
                for p in params:  # DARTS' virtual step includes momentum and weight decay
                    buf = self.optimizer.state.get(p, {}).get("momentum_buffer")
                    e = self.cfg.weight_decay * p.detach()
                    extra.append(e if buf is None else e + self.cfg.momentum * buf)
                grads, loss = unrolled_arch_grads(train_loss, val_loss, params, arch,
                                                  self.cfg.xi if self.cfg.xi is not None else lr, extra=extra)
            elif self.method == "gaea":
                probs = {g: F.softmax(a.detach(), dim=-1).requires_grad_(True) for g, a in self.alphas.items()}
                last["logits"] = self._forward(xv, probs)
                loss = self._arch_loss(last["logits"], yv)
                grads = list(torch.autograd.grad(loss, list(probs.values())))  # grad w.r.t. the simplex point
            else:
                w, i = self._mix()
                last["logits"] = self._forward(xv, w, i, self._edge_weights())
                loss = self._arch_loss(last["logits"], yv)
                grads = list(torch.autograd.grad(loss, arch, allow_unused=True))
        for p, g in zip(arch, grads):
            p.grad = torch.zeros_like(p) if g is None else g.detach()
        self.arch_optimizer.step()
        acc = (last["logits"].detach().argmax(1) == yv).float().mean()
        return float(loss.detach()), float(acc)

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One SGD step of the network weights on a training minibatch (alphas fixed)."""
        w, i = self._mix(detach=True)
        loss = F.cross_entropy(self._forward(x, w, i, self._edge_weights(detach=True)), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss

    def step(self) -> dict[str, Any]:
        lr = self.optimizer.param_groups[0]["lr"]
        x, y = self.train_stream.next()
        if self.augment is not None:
            x = self.augment(x, generator=self.gen)
        xv, yv = self.val_stream.next()
        self.net.train()
        temperature, aux = self.temperature, self.aux_weight
        if self.cfg.weight_first:  # GDAS' search_func: update the weights, then the alphas
            loss = self._weight_step(x, y)
        if self.step_count >= self.cfg.warmup_steps:
            val_loss, reward = self._arch_step(x, y, xv, yv, lr)
        else:
            with torch.no_grad(), frozen_bn(self.net):
                w, i = self._mix(detach=True)
                logits = self._forward(xv, w, i, self._edge_weights(detach=True))
                val_loss, reward = float(F.cross_entropy(logits, yv)), float((logits.argmax(1) == yv).float().mean())
        if not self.cfg.weight_first:  # DARTS' order: the alphas, then the weights
            loss = self._weight_step(x, y)
        self.scheduler.step()
        self.step_count += 1
        metrics: dict[str, Any] = {"loss": float(loss.detach()), "val_loss": val_loss, "reward": reward, "lr": lr,
                                   "arch_lr": self.arch_optimizer.param_groups[0]["lr"]}
        if self.method == "gdas":
            metrics["temperature"] = temperature
        if self.method == "darts-minus":
            metrics["aux_skip"] = aux
        metrics.update(self._monitor(metrics))
        return metrics

    # ------------------------------------------------------------------ monitors
    def weights(self) -> dict[str, np.ndarray]:
        """Current deterministic mixing weights per group (softmax; sigmoid for FairDARTS)."""
        with torch.no_grad():
            return {g: self._deterministic(a).cpu().numpy() for g, a in self.alphas.items()}

    def edge_weights(self) -> dict[str, np.ndarray] | None:
        ew = self._edge_weights(detach=True)
        return None if ew is None else {g: v.cpu().numpy() for g, v in ew.items()}

    def derive(self) -> tuple[Arch, dict[str, Any]]:
        """The discrete architecture of the current alphas (see :mod:`.relaxations`)."""
        threshold = self.cfg.fair_threshold if self.method == "fairdarts" else None
        return self.relax.derive(self.weights(), self.edge_weights(), ops=self.net.op_names, threshold=threshold)

    def decided_skips(self, details: dict[str, Any]) -> int | None:
        """Skip edges of the derived cell whose weight leads the runner-up by ``skip_margin``."""
        margins = details.get("skip_margins")
        return None if margins is None else sum(m >= self.cfg.skip_margin for m in margins)

    @property
    def benchmark(self) -> Any:
        """The space's benchmark on ``benchmark_dataset`` (None when there is none)."""
        if self._table is False:
            try:
                from nasbench_lab import benchmarks

                self._table = benchmarks.get(self.space.name, self.cfg.benchmark_dataset)
            except (ImportError, ValueError, FileNotFoundError):
                self._table = None
        return self._table

    def table_accuracy(self, arch: Arch) -> float | None:
        b = self.benchmark
        if b is None:
            return None
        try:
            return float(b.query(str(arch)))
        except (KeyError, ValueError):
            return None

    def _null_projector(self):
        """Removes a constant per edge from a flat alpha vector: softmax(alpha + c) = softmax(alpha),
        so the Hessian annihilates those directions and Lanczos need not spend products on them."""
        if self.weight_kind == "sigmoid":
            return None
        shapes = [a.shape for a in self.alphas.values()]

        def project(v: np.ndarray) -> np.ndarray:
            out, pos = [], 0
            for shp in shapes:
                n = int(np.prod(shp))
                block = v[pos:pos + n].reshape(shp)
                out.append((block - block.mean(axis=-1, keepdims=True)).reshape(-1))
                pos += n
            return np.concatenate(out)

        return project

    def eigenvalue(self) -> float:
        """Largest algebraic eigenvalue of the Hessian of L_val w.r.t. alpha (R-DARTS, DARTS-ES).

        On a fixed validation batch (the first ``hessian_batch`` images), batch statistics in BN,
        running statistics untouched; R-DARTS' analyser differentiates ``grad + arch_weight_decay *
        alpha``, so ``arch_weight_decay`` is added (GAEA: no weight decay, nothing added). At most
        ``hessian_iters`` Hessian-vector products, warm-started from the last eigenvector, fewer once
        the residual criterion (``hessian_tol``) is met.

        The projector removes a constant per edge from softmax alphas: those directions are exact
        null vectors of ``H`` (softmax is invariant to them), so ``H`` has the eigenvalue 0 there and
        its largest eigenvalue is ``max(0, top of the projected H)``; plus the weight decay.
        """
        n = min(self.cfg.hessian_batch, self.data.val_x.shape[0])
        xv, yv = self.data.val_x[:n], self.data.val_y[:n]
        ew = self._edge_weights(detach=True)
        alphas = list(self.alphas.values())

        def loss_fn() -> torch.Tensor:
            w = {g: self._deterministic(a) for g, a in self.alphas.items()}
            return F.cross_entropy(self._forward(xv, w, None, ew), yv)

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.eig_gen))
        self.net.train()
        with frozen_bn(self.net):
            project = self._null_projector()
            top = hessian_top_eigen(loss_fn, alphas, iters=self.cfg.hessian_iters, tol=self.cfg.hessian_tol,
                                    v0=self._eig_vec, project=project, rng=np.random.default_rng(seed))
        self._eig_vec = top.vector
        self._eig_matvecs, self._eig_residual, self._eig_converged = top.matvecs, top.residual, top.converged
        wd = 0.0 if self.method == "gaea" else self.cfg.arch_weight_decay
        # every projected eigenvalue below 0: the null directions' 0 is the largest
        value = top.value if project is None else max(top.value, 0.0)
        return value + wd

    def _monitor(self, metrics: dict[str, Any]) -> dict[str, Any]:
        step = self.step_count
        weights = self.weights()
        arch, details = self.derive()
        skip = details.get("skip_count")
        decided = self.decided_skips(details)
        ent = {g: edge_entropy(w) for g, w in weights.items()}
        mar = {g: edge_margin(w) for g, w in weights.items()}
        table = self.table_accuracy(arch)
        out: dict[str, Any] = {"arch": str(arch), "entropy": float(np.mean(np.concatenate(list(ent.values())))),
                               "margin": float(np.mean(np.concatenate(list(mar.values()))))}
        if skip is not None:
            out["skip_count"] = int(skip)
            out["decided_skips"] = int(decided)
        if table is not None:
            out["table_acc"] = table
        if not self.arch_history or self.arch_history[-1][1] != str(arch):
            self.arch_history.append((step, str(arch)))
        eig = None
        if self.hessian_every and (step % self.hessian_every == 0 or step == self.total_steps):
            self._eig_matvecs = 0
            eig = self.eigenvalue()
            self.eigen["step"].append(step)
            self.eigen["value"].append(eig)
            self.eigen["matvecs"].append(self._eig_matvecs)
            self.eigen["residual"].append(self._eig_residual)
            self.eigen["converged"].append(self._eig_converged)
            la = self.darts_es.local_averages(self.eigen["value"])
            self.eigen["local_avg"].append(la[-1] if la else None)
            out["eigenvalue"] = eig
        self.current = {"weights": weights, "edge_weights": self.edge_weights(), "details": details,
                        "entropy": ent, "margin": mar, "arch": str(arch), "skip_count": skip,
                        "decided_skips": decided, "table_acc": table}
        self._record(step, weights, skip, table, out, metrics)
        self._check_alarms(step, decided, eig, arch)
        return out

    def _record(self, step: int, weights, skip, table, out, metrics) -> None:
        if step % self._hist_stride:
            return
        h = self.hist
        h["step"].append(step)
        for g in self.groups:
            h["weights"][g].append(np.round(weights[g], 4).tolist())
        h["skip_count"].append(skip)
        h["decided_skips"].append(out.get("decided_skips"))
        h["table_acc"].append(table)
        h["entropy"].append(round(out["entropy"], 4))
        h["margin"].append(round(out["margin"], 4))
        h["reward"].append(round(metrics["reward"], 4))
        h["loss"].append(round(metrics["loss"], 4))
        if len(h["step"]) > self.cfg.history:  # thin evenly: keep multiples of twice the stride
            self._hist_stride *= 2
            keep = [i for i, s in enumerate(h["step"]) if s % self._hist_stride == 0]
            for key, val in h.items():
                if key == "weights":
                    for g in self.groups:
                        val[g] = [val[g][i] for i in keep]
                else:
                    h[key] = [val[i] for i in keep]

    def arch_at(self, step: int) -> str | None:
        """The derived architecture as it stood after ``step`` (from the run's architecture history)."""
        past = [a for s, a in self.arch_history if s <= step]
        return past[-1] if past else (self.arch_history[0][1] if self.arch_history else None)

    def _check_alarms(self, step: int, skip: int | None, eig: float | None, arch: Any = None) -> None:
        # the argmax of near-uniform early alphas is noise: judge the cell only after alarm_after steps
        if step < self.alarm_after:
            return
        rules = self.cfg.alarm_rules
        paths = getattr(self.space, "ops_on_paths", None)
        if "disconnected" in rules and arch is not None and paths is not None:
            on = not paths(arch)
            if on and not self._alarm_on["disconnected"]:
                self._fire(step, "disconnected", "the derived cell is disconnected: every path from its input to "
                           "its output crosses a none edge, so it outputs zeros", 0, 1)
            self._alarm_on["disconnected"] = on
        if "skip" in rules and self.skip_threshold is not None and skip is not None:
            on = skip >= self.skip_threshold
            if on and not self._alarm_on["skip"]:
                where = "in the normal cell" if self.space.name == "darts" else "in the cell"
                self._fire(step, "skip", f"{skip} decided skip connections {where} (>= {self.skip_threshold}, "
                           f"each leading its edge by >= {self.cfg.skip_margin}): collapse towards parameter-free "
                           "cells (DARTS+)", skip, self.skip_threshold)
            self._alarm_on["skip"] = on
        if eig is None:
            return
        vals = self.eigen["value"]
        if "darts-es" in rules and step < self.total_steps:  # R-DARTS never checks the last epoch
            hit = self.darts_es.check(self.eigen["step"], vals)
            on = hit is not None
            if on and not self._alarm_on["darts-es"]:
                stop_arch = self.arch_at(int(hit["stop_step"]))
                self._fire(step, "darts-es", f"local average of the dominant Hessian eigenvalue {hit['current']:.3g} "
                           f"is {hit['ratio']:.2f}x the one {self.cfg.es_delta} measurements earlier "
                           f"({hit['previous']:.3g}; > {self.cfg.es_factor}x, DARTS-ES): DARTS-ES keeps the "
                           f"architecture of step {hit['stop_step']}", hit["current"],
                           self.cfg.es_factor * hit["previous"],
                           stop_step=int(hit["stop_step"]), stop_arch=stop_arch)
            self._alarm_on["darts-es"] = on
        w = self.cfg.eig_window
        if "eigenvalue" in rules and len(vals) > w:
            base = float(np.mean(vals[:w]))
            on = base > 0 and eig >= self.cfg.eig_ratio * base
            if on and not self._alarm_on["eigenvalue"]:
                self._fire(step, "eigenvalue", f"dominant Hessian eigenvalue {eig:.3g} is {eig / base:.2f}x its "
                           f"early value {base:.3g} (>= {self.cfg.eig_ratio}x)", eig, self.cfg.eig_ratio * base)
            self._alarm_on["eigenvalue"] = on

    def _fire(self, step: int, rule: str, message: str, value: float, threshold: float, **extra: Any) -> None:
        alarm = {"step": step, "rule": rule, "message": message, "value": float(value), "threshold": float(threshold),
                 **extra}
        self.alarms.append(alarm)
        self.emit("alarm", rule=rule, message=message, value=float(value), threshold=float(threshold), **extra)
        if self.cfg.stop_on_alarm and self.stopped_on is None:
            self.stopped_on = rule
            self.total_steps = self.step_count  # the Run sees the job done and finishes it

    @property
    def eig_baseline(self) -> float | None:
        vals = self.eigen["value"]
        return float(np.mean(vals[:self.cfg.eig_window])) if len(vals) >= self.cfg.eig_window else None

    # ------------------------------------------------------------------ Job contract
    def snapshot(self) -> dict[str, Any] | None:
        if not self.current:
            return None
        cur = self.current
        groups = {}
        for g in self.groups:
            ew = cur["edge_weights"]
            groups[g] = {"ops": list(self.net.op_names), "edges": self.net.edge_labels(g),
                         "weights": np.round(cur["weights"][g], 4).tolist(),
                         "entropy": np.round(cur["entropy"][g], 4).tolist(),
                         "margin": np.round(cur["margin"][g], 4).tolist(),
                         "edge_weights": None if ew is None else np.round(ew[g], 4).tolist()}
        return {
            "panel": PANEL, "method": self.method, "space": self.space.name, "step": self.step_count,
            "total_steps": self.cfg.steps, "weight_kind": self.weight_kind, "groups": groups,
            "history": self.hist,
            "eigen": {**self.eigen, "ratio": self.cfg.eig_ratio, "rules": list(self.cfg.alarm_rules),
                      "baseline": self.eig_baseline if "eigenvalue" in self.cfg.alarm_rules else None,
                      "es_factor": self.cfg.es_factor, "es_delta": self.cfg.es_delta, "every": self.hessian_every},
            "arch": cur["arch"], "arch_history": [list(t) for t in self.arch_history],
            "levels": cur["details"].get("levels"),
            "skip_count": cur["skip_count"], "decided_skips": cur.get("decided_skips"),
            "skip_threshold": self.skip_threshold, "skip_margin": self.cfg.skip_margin,
            "table_acc": cur["table_acc"], "table_dataset": self.cfg.benchmark_dataset if self.benchmark else None,
            "alarms": list(self.alarms), "arch_lr": self.arch_optimizer.param_groups[0]["lr"],
            "temperature": self.temperature if self.method == "gdas" else None,
            "aux_skip": self.aux_weight if self.method == "darts-minus" else None,
        }

    def finish(self) -> dict[str, Any] | None:
        arch, details = self.derive()
        eig = self.eigen["value"][-1] if self.eigen["value"] else None
        out = {"arch": str(arch), "skip_count": details.get("skip_count"),
               "decided_skips": self.decided_skips(details), "table_acc": self.table_accuracy(arch),
               "eigenvalue": eig, "eig_matvecs": float(np.mean(self.eigen["matvecs"])) if self.eigen["matvecs"] else None,
               "eig_unconverged": sum(c is False for c in self.eigen["converged"]),
               "alarms": len(self.alarms), "first_alarm_step": self.alarms[0]["step"] if self.alarms else None,
               "first_alarm_rule": self.alarms[0]["rule"] if self.alarms else None,
               "stopped_on_alarm": self.stopped_on, "steps": self.step_count}
        es = next((a for a in self.alarms if a["rule"] == "darts-es"), None)
        if es is not None:  # DARTS-ES returns the architecture of the earlier step it compared with
            out["es_step"], out["es_arch"] = es["stop_step"], es["stop_arch"]
            out["es_table_acc"] = self.table_accuracy(self.space.parse(es["stop_arch"])) if es["stop_arch"] else None
        return out

    def config(self) -> dict[str, Any]:
        out = dataclasses.asdict(self.cfg)
        out["arch_betas"] = list(self.cfg.arch_betas)
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DifferentiableTrainer:
        return cls(config)  # a dict: unknown keys are a ValueError naming them

    def meta(self) -> dict[str, Any]:
        return {"space": self.cfg.space, "method": self.cfg.method, "dataset": self.cfg.dataset}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "total_steps": self.total_steps,
            "net": self.net.state_dict(),
            "alphas": {g: a.detach().cpu().clone() for g, a in self.alphas.items()},
            "betas": None if self.betas is None else {g: b.detach().cpu().clone() for g, b in self.betas.items()},
            "optimizer": self.optimizer.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "gen": self.gen.get_state(), "eig_gen": self.eig_gen.get_state(),
            "train_stream": self.train_stream.state_dict(), "val_stream": self.val_stream.state_dict(),
            "tau_override": self._tau_override, "arch_lr": self.cfg.arch_lr,
            "monitors": {"hist": self.hist, "hist_stride": self._hist_stride, "eigen": self.eigen,
                         "eig_vec": None if self._eig_vec is None else torch.from_numpy(self._eig_vec.copy()),
                         "alarms": self.alarms, "alarm_on": self._alarm_on, "arch_history": self.arch_history,
                         "stopped_on": self.stopped_on},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.total_steps = int(state.get("total_steps", self.total_steps))
        self.net.load_state_dict(state["net"])
        with torch.no_grad():
            for g, a in state["alphas"].items():
                self.alphas[g].copy_(a.to(self.device))
            if self.betas is not None and state.get("betas"):
                for g, b in state["betas"].items():
                    self.betas[g].copy_(b.to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.gen.set_state(state["gen"].cpu())
        self.eig_gen.set_state(state["eig_gen"].cpu())
        self.train_stream.load_state_dict(state["train_stream"])
        self.val_stream.load_state_dict(state["val_stream"])
        self._tau_override = state.get("tau_override")
        self.cfg.arch_lr = state.get("arch_lr", self.cfg.arch_lr)
        m = state["monitors"]
        self.hist, self._hist_stride, self.eigen = m["hist"], int(m["hist_stride"]), m["eigen"]
        for store, fresh in ((self.hist, ("decided_skips",)), (self.eigen, ("matvecs", "local_avg", "residual", "converged"))):
            n = len(store["step"])
            for key in fresh:  # checkpoints written before these monitors existed
                store.setdefault(key, [None] * n)
        self.alarms, self._alarm_on = list(m["alarms"]), {**self._alarm_on, **dict(m["alarm_on"])}
        vec = m.get("eig_vec")
        self._eig_vec = None if vec is None else vec.double().numpy()
        self.arch_history = [tuple(t) for t in m["arch_history"]]
        self.stopped_on = m.get("stopped_on")
        if self.step_count:
            self.current = {}
            weights = self.weights()
            arch, details = self.derive()
            self.current = {"weights": weights, "edge_weights": self.edge_weights(), "details": details,
                            "entropy": {g: edge_entropy(w) for g, w in weights.items()},
                            "margin": {g: edge_margin(w) for g, w in weights.items()}, "arch": str(arch),
                            "skip_count": details.get("skip_count"), "decided_skips": self.decided_skips(details),
                            "table_acc": self.table_accuracy(arch)}

    def __repr__(self) -> str:
        return (f"<DifferentiableTrainer {self.method} on {self.cfg.space}/{self.cfg.dataset} "
                f"step {self.step_count}/{self.total_steps}>")
