"""Standalone training of one architecture: the ground-truth builder and the real-training
evaluator both use this loop, so "truth" and "a few epochs of real training" mean the same thing."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from nasbench_lab import config as cfg
from nasbench_lab import tasks
from nasbench_lab.data import DataBundle
from nasbench_lab.spaces import Arch, SearchSpace


@dataclass
class StandaloneResult:
    arch: str
    seed: int
    epochs: float
    test_acc: float
    train_loss: float
    seconds: float
    model: Any = field(default=None, repr=False, compare=False)  # the trained network (export --retrain keeps it)


def train_standalone(space: SearchSpace, arch: Arch | str, data: DataBundle, epochs: float = 4,
                     seed: int = 0, batch_size: int = 64, lr: float = 0.05, weight_decay: float = 5e-4,
                     device: str | torch.device = "auto", use_val: bool = True,
                     eval_split: str = "test", net: torch.nn.Module | None = None,
                     optimizer: str = "sgd") -> StandaloneResult:
    """Train ``arch`` from scratch and return its score (%) on ``eval_split``: the data's task
    metric (accuracy; mIoU for segmentation, ``test_acc`` then holds the mIoU).

    The network trains on the train split plus (``use_val``) the validation split: ground truth
    is a network trained on the whole training set, as in the published benchmarks. ``epochs``
    may be fractional (a low fidelity). SGD with Nesterov momentum (``optimizer="adam"``: Adam,
    which learns the segmentation scenes in far fewer steps) and a cosine schedule.
    ``net``: train this network of ``arch`` (e.g. an exported one at other settings) instead of a
    fresh ``space.model(arch)``; the trained network is ``result.model``.
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r} (e.g. optimizer='sgd')")
    if epochs <= 0:
        raise ValueError(f"epochs: expected a positive number, got {epochs!r} (e.g. epochs=4)")
    arch = space.parse(arch)
    dev = cfg.device(device)
    data = data.to(dev)
    task = tasks.for_data(data)
    gen = torch.Generator(device=dev).manual_seed(seed)
    torch.manual_seed(seed)
    net = (space.model(arch, num_classes=data.num_classes) if net is None else net).to(dev)
    cuda = dev.type == "cuda"
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    xs, ys = data.train_x, data.train_y
    if use_val:
        xs, ys = torch.cat([xs, data.val_x]), torch.cat([ys, data.val_y])
    n = xs.shape[0]
    per_epoch = max(1, n // batch_size)
    total = round(epochs * per_epoch)
    if total < 1:  # one step would train, and the record would say "1e-09 epochs"
        raise ValueError(f"epochs (--epochs): {epochs:g} epochs of {n} images in batches of {batch_size} is less "
                         f"than one training step (one step is {1 / per_epoch:.3g} epochs); use epochs >= "
                         f"{1 / per_epoch:.3g} (e.g. epochs=4)")
    opt = (torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
           if optimizer == "sgd" else torch.optim.Adam(net.parameters(), lr=lr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    t0 = time.perf_counter()
    net.train()
    perm, pos, loss = None, n, torch.tensor(0.0)
    for _ in range(total):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen, device=dev), 0
        idx = perm[pos:pos + batch_size]
        pos += batch_size
        x, y = data.augment.pair(xs[idx], ys[idx], generator=gen)
        with autocast():
            loss = task.loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    ex, ey = (data.test_x, data.test_y) if eval_split == "test" else (data.val_x, data.val_y)
    stats = None
    with torch.no_grad(), autocast():
        for lo in range(0, ex.shape[0], 512):
            part = task.stats(net(ex[lo:lo + 512]), ey[lo:lo + 512])
            stats = part if stats is None else stats + part
    score = 100.0 * float(task.score(stats)) if stats is not None else 0.0
    return StandaloneResult(str(arch), seed, float(epochs), score,
                            float(loss.detach()), time.perf_counter() - t0, model=net)
