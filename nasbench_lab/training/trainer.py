"""The single-path one-shot Trainer: one loop for every sampler (thesis §3.3, §4.3.2).

Each step: the sampler picks an architecture; one optimizer step on a training minibatch of that
path of the supernet; the reward is the path's accuracy on one validation minibatch (eq 3.4's
``Acc(f_a(X_val, w))``, :meth:`Trainer.reward`, which changes no state of the supernet); the
sampler observes it; the Run records the step. Data sits on the device as tensors with on-device
augmentation, so the hot loop has no CPU data loader.

A step is one path. A sampler whose update sums several paths (``sampler.paths_per_update = m``,
FairNAS's m models on one minibatch, Chu et al. 2021 Alg. 1) makes the Trainer accumulate: the
first path of an update draws the training minibatch and clears the gradients, the next ``m - 1``
paths reuse that minibatch and add their gradients, and the last one takes the optimizer step
(the learning-rate schedule then advances by the ``m`` steps). ``m = 1`` is the plain loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from nasbench_lab import config as cfg
from nasbench_lab import data as data_mod
from nasbench_lab import spaces, tasks
from nasbench_lab import validation as V
from nasbench_lab.runs.job import Job
from nasbench_lab.spaces import Arch
from nasbench_lab.training import samplers


@dataclass
class TrainerConfig:
    """Everything that defines a one-shot run (plain data, stored with the run)."""

    space: str = "pooling"
    dataset: str | None = None  # None: the space's default dataset (digits; scenes for autodeeplab)
    data_root: str | None = None
    method: str = "uniform"
    method_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 1000
    batch_size: int = 64
    val_batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    schedule: str = "cosine"  # or "constant"
    seed: int = 0
    device: str = "auto"
    augment: bool = True
    amp: str = "auto"  # "auto": bf16 autocast on CUDA only; "bf16": on any device (CPU too); "off"
    data_storage: str = "auto"  # images on the device: "uint8" (normalised per batch there), "float32"; auto: uint8 on CUDA where exact
    # supernet and batches in channels_last (NHWC): the layout oneDNN's CPU convolutions and CUDA's
    # tensor cores are fastest in (2 CPU cores: training steps 1.4x pooling, 2.1x NB-201, 2.3x MobileNet)
    channels_last: bool = True
    compile: bool = False  # torch.compile the supernet's architecture-independent parts (see _compile)
    bn_recalibration: bool = True
    recalibration_batches: int = 4
    rank_sample: int = 200  # architectures ranked at the end for spaces too large to enumerate
    rank_images: int | None = None  # validation images per architecture when ranking (None: all)
    rank_at_end: bool = True
    rank_every: int = 0  # rank with the supernet every k steps ("ranking" events, snapshot "rankings"); 0: off
    # measure gradient interference every k steps on a small fixed set of children ("interference"
    # events; issue 28, nasbench_lab.training.interference); 0: off
    interference_every: int = 0
    interference_archs: int = 8  # children measured (K)
    interference_pick: str = "spread"  # "spread" (ladders over the space) or "top" (best mean reward so far)
    interference_images: int = 64  # training images in the measured batch (the same every time)
    # sample only inside this band (issue 17, thesis §3.5.4): "flops:[0.99,1]*330M", "params<=5M" or
    # {"metric": "flops", "target": 330e6, "band": [0.99, 1]}; every sampler takes it (Budget.parse)
    budget: str | dict[str, Any] | None = None

    def validate(self) -> TrainerConfig:
        """Every field checked where it enters: type (by annotation, floats finite), then range.
        A bad value is a ValueError naming the field; nothing is replaced by a default."""
        V.check_fields(self, {"rank_images": 256, "data_root": "~/data"})
        if self.space not in spaces.names():
            raise ValueError(f"space: unknown {V.shorten(self.space)}; valid: {', '.join(spaces.names())}")
        if self.method not in samplers.names():
            raise ValueError(f"method: unknown {V.shorten(self.method)}; valid: {', '.join(samplers.names())}")
        if self.dataset is None:  # the space knows its task and default dataset
            self.dataset = spaces.get(self.space).default_dataset
        if self.dataset not in data_mod.names():
            raise ValueError(f"dataset: unknown {V.shorten(self.dataset)}; valid: {', '.join(data_mod.names())}")
        for name in ("steps", "batch_size", "val_batch_size", "recalibration_batches", "rank_sample"):
            V.positive_int(name, getattr(self, name), example=V.default_of(TrainerConfig, name))
        V.positive_int("rank_images", self.rank_images, example=256, none=True)
        V.nonnegative_int("rank_every", self.rank_every, example=250)
        V.nonnegative_int("interference_every", self.interference_every, example=50)
        if self.interference_every > self.steps:
            raise ValueError(f"interference_every: {self.interference_every} is more than steps={self.steps}, so "
                             f"nothing would be measured; use at most {self.steps} (e.g. interference_every="
                             f"{max(1, self.steps // 4)}), or 0 for none")
        V.integer("interference_archs", self.interference_archs, min=2, example=8)
        V.positive_int("interference_images", self.interference_images, example=64)
        V.choice("interference_pick", self.interference_pick, ("spread", "top"))
        if self.rank_every > self.steps:  # it would never rank before the end, without a word
            raise ValueError(f"rank_every (--rank-every): {self.rank_every} is more than steps={self.steps}, so no "
                             f"periodic ranking would happen; use at most {self.steps} (e.g. rank_every="
                             f"{max(1, self.steps // 4)}), or 0 for none")
        V.seed("seed", self.seed)
        V.positive_number("lr", self.lr, example=0.05)
        V.number("momentum", self.momentum, min=0, max=1, max_open=True, example=0.9)
        V.number("weight_decay", self.weight_decay, min=0, example=5e-4)
        V.choice("schedule", self.schedule, ("cosine", "constant"))
        V.choice("amp", self.amp, AMP_MODES)
        if self.budget is not None:
            from nasbench_lab.spaces.budget import Budget

            Budget.parse(self.budget)  # a malformed spec is a ValueError naming "budget"
            if "budget" in self.method_options:
                raise ValueError("budget: given both as the run's budget and in method_options; give it once "
                                 "(e.g. budget='flops:[0.99,1]*330M')")
        V.choice("data_storage", self.data_storage, ("auto", *data_mod.STORAGES))
        return self


#: ``amp``: "auto" uses bf16 autocast on CUDA (nothing on CPU), "bf16" on every device, "off" never
AMP_MODES = ("auto", "bf16", "off")


def data_storage_for(bundle: data_mod.DataBundle, device: torch.device, asked: str = "auto") -> str:
    """How the images sit on ``device``: "auto" is uint8 (a quarter of the memory and of the copy,
    normalised per batch on the device, bit-for-bit the float32 batches) on CUDA for 0..255 images,
    float32 elsewhere (on CPU the per-batch normalisation would be work for nothing)."""
    if asked != "auto":
        return asked
    return "uint8" if device.type == "cuda" and bundle.pixels == "uint8" else "float32"


def _compile(net: nn.Module) -> int:
    """``torch.compile`` every outermost ``nn.Sequential`` of a supernet (in place, so state-dict
    keys and checkpoints are unchanged); returns how many.

    Those are the conv-BN-ReLU chains of the blocks and candidate operations: they take a tensor
    and nothing else, so one compiled graph serves every architecture. Compiling the whole
    supernet would specialise on the architecture argument and recompile for each one (36 for
    pooling, 15,625 for NB-201), far past dynamo's cache limit.
    """
    count = 0
    def visit(module: nn.Module) -> None:
        nonlocal count
        for child in module.children():
            if isinstance(child, nn.Sequential) and len(child):
                child.compile()
                count += 1
            else:
                visit(child)
    visit(net)
    return count


class Trainer(Job):
    """Single-path supernet training as a :class:`~nasbench_lab.runs.Job`."""

    kind = "supernet"

    def __init__(self, config: TrainerConfig | dict[str, Any] | None = None,
                 data: data_mod.DataBundle | None = None, **overrides: Any) -> None:
        config = V.make_config(TrainerConfig, config, overrides, "Trainer").validate()
        self.cfg = config
        self.device = cfg.device(config.device)
        self.space = spaces.get(config.space)
        torch.manual_seed(config.seed)  # weight init is part of the run's seeded trajectory
        bundle = data if data is not None else data_mod.get(config.dataset, root=config.data_root, seed=config.seed)
        self.data = bundle.to(self.device, storage=data_storage_for(bundle, self.device, config.data_storage))
        #: loss, reward and metric (accuracy; mIoU for segmentation): :mod:`nasbench_lab.tasks`
        self.task = tasks.for_data(self.data)
        if self.task.name != self.space.task:
            raise ValueError(f"dataset: {config.dataset!r} is a {self.task.name} dataset but space {config.space!r} "
                             f"builds {self.space.task} networks; use a {self.space.task} dataset (e.g. "
                             f"dataset={self.space.default_dataset!r})")
        self.data.check_batch_size("batch_size", config.batch_size, "train")  # never cut to the split: refused
        self.data.check_batch_size("val_batch_size", config.val_batch_size, "val")
        self.check_rank_images(config.rank_images)
        self.net = self.space.supernet(num_classes=self.data.num_classes).to(self.device)
        self.cuda = self.device.type == "cuda"
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        #: images per forward pass when evaluating: small on a CPU (activations stay in cache; 64
        #: is 2-3x faster than 512 on 2 cores), large on a GPU (occupancy)
        self.eval_chunk = 1024 if self.cuda else 64
        self.compiled = _compile(self.net) if config.compile else 0
        extra = {"budget": config.budget} if config.budget is not None else {}
        self.sampler = samplers.get(config.method, self.space, seed=config.seed, **config.method_options, **extra)
        #: the space through the run's budget (None without one): each step reports the budget's metric
        self.band = self.sampler.band
        self.net = self.sampler.wrap_supernet(self.net)  # e.g. a mixture of supernets (issue 6)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay, nesterov=config.nesterov)
        self.scheduler: Any = self._make_scheduler(config.steps)
        self.total_steps = config.steps
        self.step_count = 0
        self.gen = torch.Generator(device=self.device).manual_seed(config.seed)
        self._train_perm: torch.Tensor | None = None
        self._train_pos = 0
        self._val_perm: torch.Tensor | None = None
        self._val_pos = 0
        self.augment = self.data.augment if config.augment else None
        self.ranking: Any = None
        self.rankings: list[dict[str, Any]] = []  # periodic ranking summaries (rank_every)
        self._accumulated = 0  # paths whose gradients wait for the next optimizer step
        self._update_batch: tuple[torch.Tensor, torch.Tensor] | None = None  # their shared minibatch
        #: the gradient-interference monitor (interference_every > 0), its summaries so far
        self.interference: Any = None
        if config.interference_every:
            from nasbench_lab.training.interference import InterferenceMonitor

            self.interference = InterferenceMonitor(self.space, config.interference_archs, config.interference_pick,
                                                    config.interference_images, seed=config.seed)
        #: the step at which the supernet last started from fresh weights (:meth:`reinitialize`):
        #: the weights that rank at the end trained on the steps since then
        self.fresh_at = 0

    # ------------------------------------------------------------------ Job contract
    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.cfg)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Trainer:
        return cls(V.make_config(TrainerConfig, config, None, "Trainer config"))

    def meta(self) -> dict[str, Any]:
        return {"space": self.cfg.space, "method": self.cfg.method, "dataset": self.cfg.dataset}

    def step(self) -> dict[str, Any]:
        self.sampler.before_step(self)
        arch = self.sampler.sample()
        first = self._accumulated == 0  # the first path of an update (every path when m = 1)
        x, y = self._next_batch("train") if first else self._update_batch
        self.net.train()
        with self._autocast():
            loss = self.task.loss(self.net(x, arch), y)
        if first:
            self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # adds to the gradients of the update's earlier paths
        lr = self.optimizer.param_groups[0]["lr"]
        self._accumulated += 1
        if self._accumulated >= self.sampler.paths_per_update or self.step_count + 1 >= self.total_steps:
            self.optimizer.step()  # FairNAS Alg. 1: "update parameters by the accumulated gradients"
            for _ in range(self._accumulated):
                self.scheduler.step()
            self._accumulated, self._update_batch = 0, None
        elif first:
            self._update_batch = (x, y)
        # The one host sync of the step: the sampler needs the reward now; the loss comes along.
        loss_f, reward_f = torch.stack([loss.detach().float(), self._reward_tensor(arch)]).tolist()
        self.sampler.observe(arch, reward_f)
        self._emit_warnings()
        self.step_count += 1
        if self.cfg.rank_every and self.step_count % self.cfg.rank_every == 0 and not self.done:
            self._rank_now()
        if self.interference is not None:
            self.interference.observe(arch, reward_f)
            if self.step_count % self.cfg.interference_every == 0:
                self.measure_interference()
        out = {"loss": loss_f, "reward": reward_f, "lr": lr, "arch": str(arch)}
        if self.band is not None:  # the live view plots it against the band
            out[self.band.budget.metric] = self.band.cost_of(arch)
        return out

    def _emit_warnings(self) -> None:
        """The sampler's warnings (:meth:`Sampler.warn`, already logged) as ``"warning"`` events."""
        for w in self.sampler.pop_warnings():
            self.emit("warning", source=self.sampler.name, **w)

    def snapshot(self) -> dict[str, Any] | None:
        snap = self.sampler.snapshot()
        if self.rankings and snap is not None:
            snap = {**snap, "rankings": list(self.rankings)}
        return snap

    def _ranking_progress(self, periodic: bool):
        """``on_progress`` for :func:`rank_supernet`: "phase" events, so a dashboard can say that
        the supernet is ranking (and how far it is) instead of showing a finished step count."""
        def report(done: int, total: int) -> None:
            self.emit("phase", phase="ranking", done=done, total=total, periodic=periodic)
        return report

    def _rank_now(self) -> None:
        """Periodic ranking (``rank_every``): Kendall tau etc. against ground truth, as an event."""
        from nasbench_lab.training.ranking import rank_supernet

        summary = dict(rank_supernet(self, on_progress=self._ranking_progress(True)).attrs.get("summary", {}))
        self.rankings.append({"step": self.step_count, **summary})
        self.emit("ranking", summary=summary, periodic=True)

    def measure_interference(self, archs: list[Arch | str] | None = None) -> dict[str, Any]:
        """Run the interference instrument now (on ``archs``, or the monitor's set) and emit it as
        an ``"interference"`` event; returns the event's data."""
        from nasbench_lab.training.interference import InterferenceMonitor

        if self.interference is None:
            self.interference = InterferenceMonitor(self.space, self.cfg.interference_archs, self.cfg.interference_pick,
                                                    self.cfg.interference_images, seed=self.cfg.seed)
        data = self.interference.measure(self, archs)
        self.emit("interference", **{k: v for k, v in data.items() if k != "step"})  # the event has its step
        return data

    def finish(self) -> dict[str, Any] | None:
        self._emit_warnings()
        if not self.cfg.rank_at_end:
            return {"steps": self.step_count}
        from nasbench_lab.training.ranking import rank_supernet

        self.ranking = rank_supernet(self, on_progress=self._ranking_progress(False))
        summary = dict(self.ranking.attrs.get("summary", {}))
        summary["selected"] = self.ranking.attrs.get("selected")
        self.emit("ranking", summary=summary, table=self.ranking.head(50).to_dict("records"))
        return summary

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rankings": list(self.rankings),
            "interference": self.interference.state_dict() if self.interference is not None else None,
            "gen": self.gen.get_state(),
            "train_perm": self._train_perm, "train_pos": self._train_pos,
            "val_perm": self._val_perm, "val_pos": self._val_pos,
            "fresh_at": self.fresh_at,
            # an update in progress (paths_per_update > 1): its summed gradients and minibatch
            "accumulated": self._accumulated,
            "pending_grads": [None if p.grad is None else p.grad.detach().clone() for p in self.net.parameters()]
            if self._accumulated else None,
            "update_batch": self._update_batch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self.rankings = list(state.get("rankings", []))
        if self.interference is not None and state.get("interference"):
            self.interference.load_state_dict(state["interference"])
        self.gen.set_state(state["gen"].cpu() if hasattr(state["gen"], "cpu") else state["gen"])
        def to(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(self.device)

        self._train_perm, self._train_pos = to(state["train_perm"]), int(state["train_pos"])
        self._val_perm, self._val_pos = to(state["val_perm"]), int(state["val_pos"])
        self.fresh_at = int(state.get("fresh_at", 0))  # checkpoints before the field: never re-initialised
        self._accumulated = int(state.get("accumulated", 0))
        batch = state.get("update_batch")
        self._update_batch = None if batch is None else (to(batch[0]), to(batch[1]))
        grads = state.get("pending_grads")
        if self._accumulated:
            for p, g in zip(self.net.parameters(), grads):
                p.grad = None if g is None else g.to(device=p.device, dtype=p.dtype)

    def _make_scheduler(self, steps: int) -> Any:
        if self.cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(1, int(steps)))
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)

    def reinitialize(self, fresh_schedule: bool = True) -> None:
        """Fresh supernet weights (BN statistics included) and optimizer state, mid-run.

        For methods whose search supernet starts from scratch after a warm-up (Alg 3.1, line 24:
        ``w`` "initialized randomly", while the warm-up weights ``w_p`` only served the tree).
        The initialisation is seeded from the run's seed (a resumed run reproduces it) without
        touching the global RNG stream. ``fresh_schedule`` restarts the learning-rate schedule
        over the remaining steps, as a new training run would.
        """
        from nasbench_lab.training.samplers.common import reset_parameters

        devices = [self.device.index or 0] if self.cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.cfg.seed + 1 + self.step_count)
            reset_parameters(self.net)
        self.optimizer.state.clear()  # momentum buffers belong to the old weights
        self.optimizer.zero_grad(set_to_none=True)  # so do the gradients of an update in progress
        self._accumulated, self._update_batch = 0, None
        self.fresh_at = self.step_count
        if fresh_schedule:
            for g in self.optimizer.param_groups:
                g["lr"] = g.get("initial_lr", self.cfg.lr)
            self.scheduler = self._make_scheduler(self.total_steps - self.step_count)

    # ------------------------------------------------------------------ data
    def _autocast(self):
        if self.cfg.amp == "bf16" or (self.cfg.amp == "auto" and self.cuda):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _next_batch(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The next minibatch of an epoch-wise permutation; train batches are augmented."""
        if split == "train":
            xs, ys, bs = self.data.train_x, self.data.train_y, self.cfg.batch_size
            perm, pos = self._train_perm, self._train_pos
        else:
            xs, ys, bs = self.data.val_x, self.data.val_y, self.cfg.val_batch_size
            perm, pos = self._val_perm, self._val_pos
        n = xs.shape[0]
        bs = min(bs, n)
        if perm is None or pos + bs > n:
            perm = torch.randperm(n, generator=self.gen, device=self.device)
            pos = 0
        idx = perm[pos:pos + bs]
        x, y = xs[idx], ys[idx]
        if split == "train":
            self._train_perm, self._train_pos = perm, pos + bs
            if self.augment is not None:  # a segmentation augmentation moves the label maps too
                x, y = self.augment.pair(x, y, generator=self.gen)
        else:
            self._val_perm, self._val_pos = perm, pos + bs
        return self._layout(x), y

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the supernet's memory format (a no-op when it already is, or is not images)."""
        if self.cfg.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def fixed_val_batch(self, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` validation images: the same batch every time (for distances, trees)."""
        return self.data.val_x[:n], self.data.val_y[:n]

    # ------------------------------------------------------------------ what methods and ranking use
    @torch.no_grad()
    def recalibrate_bn(self, arch: Arch, batches: int | None = None) -> None:
        """Re-estimate BN statistics for one path (cumulative average over training batches).

        The shared BN statistics mix every sampled path; ranking one path fairly needs its own.
        The batches are the first ones of the (unaugmented) training set, always the same.
        """
        bns = [m for m in self.net.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the recalibration batches
        self.net.train()
        bs = self.cfg.batch_size * 2
        n = self.data.train_x.shape[0]
        for b in range(batches or self.cfg.recalibration_batches):
            lo = (b * bs) % max(1, n - bs + 1)
            with self._autocast():
                self.net(self._layout(self.data.train_x[lo:lo + bs]), arch)
        for m, mom in zip(bns, momenta):
            m.momentum = mom

    def check_rank_images(self, n: int | None, split: str = "val") -> None:
        """``rank_images`` (``max_images``) must not exceed the images of ``split``: a larger value
        would be cut to them without a word."""
        have = int((self.data.val_x if split == "val" else self.data.test_x).shape[0])
        if n is not None and n > have:
            raise ValueError(f"rank_images (--rank-images): {n} is more than the {have} {split} images of "
                             f"{self.cfg.dataset}; use at most {have} (e.g. rank_images={min(256, have)}), or leave "
                             "it out for all of them")

    def evaluate(self, arch: Arch | str, split: str = "val", recalibrate: bool | None = None,
                 max_images: int | None = None) -> float:
        """Accuracy (%) of one path of the supernet on the validation (or test) split."""
        return self.evaluate_metrics(arch, split, recalibrate, max_images)[0]

    @torch.no_grad()
    def evaluate_metrics(self, arch: Arch | str, split: str = "val", recalibrate: bool | None = None,
                         max_images: int | None = None) -> tuple[float, float]:
        """(accuracy %, mean cross-entropy) of one path on the validation (or test) split, from one
        forward pass; the loss breaks the ties of the accuracy when ranking. The accuracy is the
        task's metric: mIoU (%) for segmentation, the per-pixel loss over non-ignored pixels."""
        stats, loss = self.evaluate_stats(arch, split, recalibrate, max_images)
        return 100.0 * float(self.task.score(stats)), loss

    @torch.no_grad()
    def evaluate_stats(self, arch: Arch | str, split: str = "val", recalibrate: bool | None = None,
                       max_images: int | None = None) -> tuple[torch.Tensor, float]:
        """The task's summed statistics (correct/total; a confusion matrix) of one path on a split,
        and its mean loss; :meth:`evaluate_metrics` scores them, the views show per-class IoU."""
        arch = self.space.parse(arch)
        if recalibrate if recalibrate is not None else self.cfg.bn_recalibration:
            self.recalibrate_bn(arch)
        xs, ys = (self.data.val_x, self.data.val_y) if split == "val" else (self.data.test_x, self.data.test_y)
        self.check_rank_images(max_images, split)
        if max_images is not None:
            xs, ys = xs[:max_images], ys[:max_images]
        self.net.eval()
        stats, loss_sum, count = None, 0.0, 0
        step = self.eval_chunk
        for lo in range(0, xs.shape[0], step):
            with self._autocast():
                logits = self.net(self._layout(xs[lo:lo + step]), arch)
            y = ys[lo:lo + step]
            part = self.task.stats(logits, y)
            stats = part if stats is None else stats + part
            ls, n = self.task.loss_sum(logits, y)
            loss_sum += float(ls)
            count += n
        self.net.train()
        if stats is None:
            stats = self.task.stats(torch.zeros((0, self.data.num_classes), device=self.device),
                                    torch.zeros(0, dtype=torch.long, device=self.device))
        return stats, loss_sum / max(1, count)

    @torch.no_grad()
    def reward(self, arch: Arch, batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
        """A sampler's reward: the task's metric in [0, 1] (accuracy; mIoU of the minibatch's
        confusion matrix for segmentation) of one path on one validation minibatch
        (the next one of the epoch-wise permutation, or ``batch``).

        BN normalises with the minibatch's own statistics, as during training (the running
        statistics of a single-path supernet mix every path), and nothing of the supernet
        changes: no running statistics, no batch counters, no gradients.
        """
        return float(self._reward_tensor(arch, batch))

    @torch.no_grad()
    def _reward_tensor(self, arch: Arch, batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """:meth:`reward` as a 0-d tensor on the device (no host sync)."""
        # the step's own minibatch is already in the supernet's layout; a caller's batch may not be
        x, y = (self._layout(batch[0]), batch[1]) if batch is not None else self._next_batch("val")
        with self._batch_stats_only(), self._autocast():
            return self.task.score(self.task.stats(self.net(x, arch), y)).float()

    @torch.no_grad()
    def outputs(self, arch: Arch, x: torch.Tensor) -> torch.Tensor:
        """Logits of one path on ``x`` (train-mode BN: batch statistics, no running-stat update)."""
        with self._batch_stats_only(), self._autocast():
            return self.net(self._layout(x), arch).float()

    @torch.no_grad()
    def predictions(self, arch: Arch | str, n: int = 4, split: str = "val") -> dict[str, Any]:
        """The first ``n`` images of ``split`` (pixels back in [0, 1]), their labels and ``arch``'s
        predictions (argmax of :meth:`outputs`: batch statistics, nothing of the supernet changes),
        with the task's metric and, for segmentation, per-class IoU on those images: the data of the
        masks panel (:func:`nasbench_lab.viz.trellis.mask_figure`)."""
        arch = self.space.parse(arch)
        xs, ys = (self.data.val_x, self.data.val_y) if split == "val" else (self.data.test_x, self.data.test_y)
        n = V.positive_int("n", n, example=4)
        x, y = xs[:n], ys[:n]
        logits = self.outputs(arch, x)
        mean = torch.tensor(self.data.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.data.std, device=x.device).view(1, -1, 1, 1)
        images = (x.float() * std + mean).clamp(0, 1)
        return {"arch": str(arch), "images": images.cpu().numpy(), "truth": y.cpu().numpy(),
                "pred": logits.argmax(1).cpu().numpy(), "classes": list(self.data.classes),
                **self.task.describe(self.task.stats(logits, y))}

    def gradient(self, arch: Arch, batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Flattened gradient of the loss w.r.t. the shared weights for one path on one batch."""
        return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                          for g, p in zip(self.gradients(arch, batch), self._params())])

    def _params(self) -> list[nn.Parameter]:
        return [p for p in self.net.parameters() if p.requires_grad]

    def gradients(self, arch: Arch, batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[torch.Tensor | None]:
        """Per-parameter gradients (None for weights the path does not use), same order as
        ``net.parameters()`` (trainable ones), for one path on one batch; nothing is accumulated."""
        x, y = batch if batch is not None else self.fixed_val_batch(self.cfg.batch_size)
        params = self._params()
        with self._batch_stats_only(), self._autocast():
            loss = self.task.loss(self.net(self._layout(x), arch), y)
        return list(torch.autograd.grad(loss, params, allow_unused=True))

    @contextlib.contextmanager
    def _batch_stats_only(self):
        """Train-mode forward whose BN layers use batch statistics and update nothing (running
        statistics and ``num_batches_tracked`` untouched); the previous mode is restored."""
        bns = [m for m in self.net.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        was = self.net.training
        try:
            for m in bns:
                m.track_running_stats = False  # train mode + no tracking: batch stats, no update
            self.net.train()
            yield
        finally:
            for m in bns:
                m.track_running_stats = True
            self.net.train(was)

    def sample_archs(self, n: int, seed: int = 0) -> list[Arch]:
        """All architectures of a numerable space, else ``n`` distinct uniform samples."""
        if self.space.numerable and self.space.size <= n:
            return self.space.enumerate()
        rng = np.random.default_rng(seed)
        seen: dict[Arch, None] = {}
        while len(seen) < n:
            seen[self.space.sample(rng)] = None
        return list(seen)

    def __repr__(self) -> str:
        return f"<Trainer {self.cfg.space}/{self.cfg.method} on {self.cfg.dataset} step {self.step_count}/{self.total_steps}>"
