"""Standalone training of one architecture: the ground-truth builder and the real-training
evaluator both use this loop, so "truth" and "a few epochs of real training" mean the same thing."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from nasbench_lab import config as cfg
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
                     eval_split: str = "test", net: torch.nn.Module | None = None) -> StandaloneResult:
    """Train ``arch`` from scratch and return its accuracy (%) on ``eval_split``.

    The network trains on the train split plus (``use_val``) the validation split: ground truth
    is a network trained on the whole training set, as in the published benchmarks. ``epochs``
    may be fractional (a low fidelity). SGD with Nesterov momentum and a cosine schedule.
    ``net``: train this network of ``arch`` (e.g. an exported one at other settings) instead of a
    fresh ``space.model(arch)``; the trained network is ``result.model``.
    """
    if epochs <= 0:
        raise ValueError(f"epochs: expected a positive number, got {epochs!r} (e.g. epochs=4)")
    arch = space.parse(arch)
    dev = cfg.device(device)
    data = data.to(dev)
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
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
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
        x = data.augment(xs[idx], generator=gen)
        with autocast():
            loss = F.cross_entropy(net(x), ys[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    ex, ey = (data.test_x, data.test_y) if eval_split == "test" else (data.val_x, data.val_y)
    correct = 0
    with torch.no_grad(), autocast():
        for lo in range(0, ex.shape[0], 512):
            correct += int((net(ex[lo:lo + 512]).argmax(1) == ey[lo:lo + 512]).sum())
    return StandaloneResult(str(arch), seed, float(epochs), 100.0 * correct / max(1, ex.shape[0]),
                            float(loss.detach()), time.perf_counter() - t0, model=net)
