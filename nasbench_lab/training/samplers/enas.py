"""ENAS: an LSTM controller trained by REINFORCE chooses the paths of a shared supernet (Pham et al. 2018).

The controller is an LSTM that emits the architecture decision by decision (Pham et al. §2.1,
§3): its first input is a learned vector, every later input the embedding of the previous choice;
at each decision a linear head turns the hidden state into logits over the decision's options,
``logits = c * tanh(z / t)`` (``tanh_constant`` c, ``temperature`` t: the logit control of the
authors' code), and the choice is drawn from their softmax. Decisions that share an option set
(every edge of an NB-201 cell, every layer of NB-Macro, every block of a pooling space) share the
head and the embedding, as the authors' controller shares them across layers. In constrained
spaces (pooling: exactly ``p`` poolings) options that are not valid after the earlier choices are
masked out of the softmax. A budget masks the same way: at each decision the options that can no
longer reach the band are out of the softmax, and ``log pi(a)`` in REINFORCE uses the same masks,
so the policy gradient is that of the masked policy the samples come from. This is not rejection
of out-of-band draws (that would renormalise over whole in-band architectures, and could spend
many draws when the policy's mode leaves the band); the masked walk moves the probability of an
infeasible option onto its feasible siblings at that decision.

Training alternates, as in ENAS (§2.2), between the shared weights ``w`` and the controller
``theta``: the Trainer's steps train ``w`` on paths sampled from the controller (theta fixed);
every ``controller_every`` steps the controller takes ``controller_steps`` Adam steps with ``w``
fixed, each on ``aggregate`` sampled architectures whose reward ``R`` is the accuracy of the path
on one validation minibatch (:meth:`Trainer.reward`, which leaves the supernet untouched).
REINFORCE with a moving-average baseline and an entropy bonus on the reward (the authors' code
adds ``entropy_weight * H`` to the reward):

    R' = R + entropy_weight * H(pi(.|theta)) along the sampled path
    b  <- baseline_decay * b + (1 - baseline_decay) * R'       (per sample, before its advantage)
    grad = mean over the aggregate of (R' - b) * grad log pi(a | theta)

Defaults follow the authors' CIFAR settings where this loop allows (Adam, lr 3.5e-3 of their micro
search, baseline decay 0.99, entropy weight 1e-4, tanh constant 2.5 with temperature 5 as in the
NAS-Bench-201 re-implementation, weights initialised uniformly in [-0.1, 0.1]); ``controller_every``
= 20 steps with 5 x 10 samples keeps their ratio of about 2.5 controller samples per shared-weight
step (one epoch of w, then 50 x 20 samples, on CIFAR-10 with 390 steps per epoch).
``controller_every=0`` trains the controller online from the Trainer's own per-step rewards
instead (no extra forward passes; one Adam step per ``aggregate`` training steps).

Deviations, on purpose: the baseline starts at the first reward rather than 0 (with decay 0.99 a
zero start makes every advantage of the first hundreds of samples positive, reinforcing whatever
is drawn first); the entropy bonus is the exact entropy of each decision's distribution along the
path (the authors use a one-sample estimate); no skip-connection penalty (a macro-space feature
that none of these spaces has).

Final choice (``select``): the authors sample several architectures from the trained policy,
score each on one validation minibatch and keep the best; with a trainer we do that with
``select_samples`` draws on one fixed minibatch, without one we return the policy's mode (the
most probable choice at every decision, greedily).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench_lab.spaces import Arch, SearchSpace
from nasbench_lab.spaces.budget import Budget
from nasbench_lab.training.samplers.base import Sampler
from nasbench_lab.training.samplers.common import (
    Progress,
    Windows,
    check_positive,
    check_unit,
    choose,
    current_genes,
)

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from nasbench_lab.training.trainer import Trainer

_HISTORY = 200  # controller updates kept for the live view


class Controller(nn.Module):
    """The ENAS LSTM policy over a space's decision levels (CPU, float32)."""

    def __init__(self, level_options: list[list[int]], hidden: int = 64, layers: int = 1,
                 tanh_constant: float = 2.5, temperature: float = 5.0, seed: int = 0) -> None:
        super().__init__()
        self.options = [list(map(int, o)) for o in level_options]
        groups: dict[tuple[int, ...], int] = {}
        for o in self.options:
            groups.setdefault(tuple(o), len(groups))
        self.group = [groups[tuple(o)] for o in self.options]
        self.group_sizes = [len(g) for g in groups]
        self.index = [{g: j for j, g in enumerate(o)} for o in self.options]
        self.hidden, self.layers = int(hidden), int(layers)
        self.tanh_constant, self.temperature = float(tanh_constant), float(temperature)
        self.start = nn.Parameter(torch.zeros(1, self.hidden))
        self.lstm = nn.LSTM(self.hidden, self.hidden, num_layers=self.layers)
        self.embed = nn.ModuleList([nn.Embedding(n, self.hidden) for n in self.group_sizes])
        self.heads = nn.ModuleList([nn.Linear(self.hidden, n, bias=False) for n in self.group_sizes])
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():  # Pham et al.: "initialized uniformly in [-0.1, 0.1]"
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=gen) * 0.2 - 0.1)

    def logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        z = self.heads[self.group[level]](h)
        return self.tanh_constant * torch.tanh(z / self.temperature)

    def step_input(self, level: int, choice: torch.Tensor) -> torch.Tensor:
        return self.embed[self.group[level]](choice)

    def log_prob(self, genes: list[tuple[int, ...]], masks: list[list[np.ndarray]]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """``log pi(a)`` and the summed decision entropies of a batch of architectures (teacher
        forcing); ``masks[b][l]`` marks the options valid at level ``l`` of architecture ``b``."""
        B, L = len(genes), len(self.options)
        idx = torch.tensor([[self.index[level][g] for level, g in enumerate(a)] for a in genes], dtype=torch.long)
        inputs = [self.start.expand(B, -1)]
        for level in range(L - 1):
            inputs.append(self.step_input(level, idx[:, level]))
        out, _ = self.lstm(torch.stack(inputs))  # (L, B, hidden)
        logp = torch.zeros(B)
        ent = torch.zeros(B)
        for level in range(L):
            m = torch.as_tensor(np.stack([mk[level] for mk in masks]))
            lg = self.logits(out[level], level).masked_fill(~m, float("-inf"))
            lsm = F.log_softmax(lg, dim=-1)
            logp = logp + lsm.gather(1, idx[:, level:level + 1]).squeeze(1)
            p = lsm.exp()
            ent = ent - (p * lsm.masked_fill(~m, 0.0)).sum(1)
        return logp, ent

    @torch.no_grad()
    def walk(self, valid: Callable[[tuple[int, ...]], list[int]], pick: Callable[[np.ndarray], int]
             ) -> tuple[tuple[int, ...], list[np.ndarray], list[np.ndarray]] | None:
        """One architecture, decision by decision: ``pick(p)`` chooses an index from the masked
        probabilities; returns the genes, each decision's probabilities and its validity mask
        (None when a decision has no valid option: a dead end of a budget)."""
        x = self.start
        state = None
        genes: tuple[int, ...] = ()
        probs, masks = [], []
        for level, opts in enumerate(self.options):
            out, state = self.lstm(x.unsqueeze(0), state)
            ok = set(valid(genes))
            if not ok:
                return None
            m = np.array([g in ok for g in opts])
            lg = self.logits(out[0], level)[0].masked_fill(~torch.as_tensor(m), float("-inf"))
            p = F.softmax(lg, dim=-1).double().numpy()
            j = pick(p)
            genes += (opts[j],)
            probs.append(p)
            masks.append(m)
            x = self.step_input(level, torch.tensor([j]))
        return genes, probs, masks


class ENASSampler(Sampler):
    """ENAS: LSTM controller + REINFORCE (moving-average baseline, entropy bonus), shared weights."""

    name = "enas"

    def __init__(self, space: SearchSpace, seed: int = 0, lr: float = 3.5e-3, hidden: int = 64, layers: int = 1,
                 tanh_constant: float = 2.5, temperature: float = 5.0, entropy_weight: float = 1e-4,
                 baseline_decay: float = 0.99, aggregate: int = 10, controller_steps: int = 5,
                 controller_every: int = 20, select_samples: int = 10, grad_clip: float = 0.0,
                 total_steps: int | None = None, budget: str | dict | Budget | None = None) -> None:
        super().__init__(space, seed, budget=budget)
        self.lr = check_positive("lr", lr, "3.5e-3")
        for name, v, ex in (("hidden", hidden, 64), ("layers", layers, 1), ("aggregate", aggregate, 10),
                            ("controller_steps", controller_steps, 5), ("select_samples", select_samples, 10)):
            if not isinstance(v, int | np.integer) or int(v) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r} (e.g. {name}={ex})")
        if not isinstance(controller_every, int | np.integer) or int(controller_every) < 0:
            raise ValueError(f"controller_every: expected training steps between controller phases (>= 1), or 0 "
                             f"to train online from each step's reward, got {controller_every!r} (e.g. 20)")
        self.hidden, self.layers = int(hidden), int(layers)
        self.tanh_constant = check_positive("tanh_constant", tanh_constant, "2.5")
        self.temp = check_positive("temperature", temperature, "5.0")
        self.entropy_weight = float(entropy_weight)
        if not np.isfinite(self.entropy_weight) or self.entropy_weight < 0:
            raise ValueError(f"entropy_weight: expected a number >= 0, got {entropy_weight!r} (e.g. 1e-4)")
        self.baseline_decay = check_unit("baseline_decay", baseline_decay, "0.99")
        self.aggregate, self.controller_steps = int(aggregate), int(controller_steps)
        self.controller_every, self.select_samples = int(controller_every), int(select_samples)
        self.grad_clip = float(grad_clip)
        if not self.grad_clip >= 0:
            raise ValueError(f"grad_clip: expected a norm >= 0 (0: no clipping), got {grad_clip!r} (e.g. 5.0)")
        self.controller = Controller(space.level_sizes, self.hidden, self.layers, self.tanh_constant, self.temp,
                                     seed=self.seed)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.lr)
        self.baseline: float | None = None
        self.updates = 0
        self.buffer: list[tuple[tuple[int, ...], float]] = []  # online mode: (genes, reward) since the last update
        self.last_phase = 0  # trainer step of the last controller phase
        self.history: list[dict[str, Any]] = []
        self.progress = Progress(total_steps)
        self.windows = Windows()
        self.counts: Counter[str] = Counter()
        self._masks: list[list[np.ndarray]] = []  # of the genes in self.buffer

    # ------------------------------------------------------------------ the policy
    def _valid(self, prefix: tuple[int, ...]) -> list[int]:
        return self.valid_options(prefix)

    def _walk(self, pick: Callable[[np.ndarray], int]) -> tuple[tuple[int, ...], list[np.ndarray], list[np.ndarray]]:
        # a walk that meets a dead end of the budget (no option left) starts again; the dead
        # prefix is remembered by the budget, so the next walk avoids it
        while True:
            out = self.controller.walk(self._valid, pick)
            if out is not None:
                return out

    def _draw(self, rng: np.random.Generator) -> tuple[tuple[int, ...], list[np.ndarray]]:
        genes, _, masks = self._walk(lambda p: choose(rng, p))
        return genes, masks

    def mode(self) -> tuple[Arch, list[list[float]]]:
        """The most probable choice at every decision (greedy), and each decision's probabilities."""
        genes, probs, _ = self._walk(lambda p: int(np.argmax(p)))
        return self.space.arch(genes), [p.tolist() for p in probs]

    def masks(self, genes: tuple[int, ...]) -> list[np.ndarray]:
        return [np.array([g in set(self._valid(genes[:level])) for g in opts])
                for level, opts in enumerate(self.controller.options)]

    # ------------------------------------------------------------------ REINFORCE
    def reinforce(self, samples: list[tuple[tuple[int, ...], float]], masks: list[list[np.ndarray]] | None = None
                  ) -> dict[str, float]:
        """One Adam step of REINFORCE on ``(genes, reward)`` samples (rewards in [0, 1])."""
        genes = [tuple(g) for g, _ in samples]
        masks = masks if masks is not None else [self.masks(g) for g in genes]
        logp, ent = self.controller.log_prob(genes, masks)
        rewards = np.array([r for _, r in samples], float) + self.entropy_weight * ent.detach().double().numpy()
        adv = np.empty(len(samples))
        for i, r in enumerate(rewards):  # the baseline moves with every sample, before its advantage
            b = r if self.baseline is None else self.baseline_decay * self.baseline + (1 - self.baseline_decay) * r
            self.baseline = float(b)
            adv[i] = r - b
        loss = -(torch.as_tensor(adv, dtype=torch.float32) * logp).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.controller.parameters(), self.grad_clip)
        self.optimizer.step()
        self.updates += 1
        stats = {"reward": float(np.mean([r for _, r in samples])), "entropy": float(ent.detach().mean()),
                 "baseline": float(self.baseline), "loss": float(loss.detach())}
        self._record(stats)
        return stats

    def train_controller(self, reward: Callable[[Arch], float]) -> list[dict[str, float]]:
        """A controller phase with the shared weights fixed: ``controller_steps`` updates of
        ``aggregate`` sampled architectures, each scored by ``reward(arch)``."""
        out = []
        for _ in range(self.controller_steps):
            batch, masks = [], []
            for _ in range(self.aggregate):
                genes, m = self._draw(self.rng)
                batch.append((genes, float(reward(self.space.arch(genes)))))
                masks.append(m)
            out.append(self.reinforce(batch, masks))
        return out

    def _record(self, stats: dict[str, float]) -> None:
        arch, probs = self.mode()
        p_mode = float(np.prod([max(p) for p in probs]))
        self.history = (self.history + [{"step": self.progress.step, "update": self.updates, **stats,
                                         "mode": str(arch), "p_mode": p_mode, "probs": probs}])[-_HISTORY:]

    # ------------------------------------------------------------------ sampler contract
    def before_step(self, trainer: Trainer) -> None:
        self.progress.update(trainer)
        every = self.controller_every
        if every and self.progress.step > 0 and self.progress.step - self.last_phase >= every:
            self.last_phase = self.progress.step
            self.train_controller(trainer.reward)

    def sample(self) -> Arch:
        genes, masks = self._draw(self.rng)
        if not self.controller_every:
            self._masks.append(masks)  # kept with the genes for the online update
        return self.space.arch(genes)

    def observe(self, arch: Arch, reward: float) -> None:
        super().observe(arch, reward)
        self.progress.observed(self.steps)
        self.counts[str(arch)] += 1
        self.windows.add(str(arch), self.steps, self.progress.total)
        if not self.controller_every:
            self.buffer.append((tuple(arch.genes), float(reward)))
            if len(self._masks) < len(self.buffer):  # observed without our sample(): recompute the masks
                self._masks.append(self.masks(tuple(arch.genes)))
            if len(self.buffer) >= self.aggregate:
                self.reinforce(self.buffer, self._masks[:len(self.buffer)])
                self.buffer, self._masks = [], []

    def select(self, trainer: Trainer | None = None, k: int = 1) -> list[Arch]:
        """With a trainer: ``select_samples`` draws from the policy, scored on one fixed validation
        minibatch, best first (Pham et al.); without: the policy's mode."""
        if trainer is None:
            return [self.mode()[0]]
        rng = np.random.default_rng([self.seed, self.steps])
        cands = list(dict.fromkeys(self.space.arch(self._draw(rng)[0]) for _ in range(self.select_samples)))
        batch = trainer.fixed_val_batch(trainer.cfg.val_batch_size)
        score = {a: trainer.reward(a, batch) for a in cands}
        return sorted(cands, key=lambda a: -score[a])[:max(1, k)]

    def options(self) -> dict[str, Any]:
        return {"lr": self.lr, "hidden": self.hidden, "layers": self.layers, "tanh_constant": self.tanh_constant,
                "temperature": self.temp, "entropy_weight": self.entropy_weight,
                "baseline_decay": self.baseline_decay, "aggregate": self.aggregate,
                "controller_steps": self.controller_steps, "controller_every": self.controller_every,
                "select_samples": self.select_samples, "grad_clip": self.grad_clip}

    def snapshot(self) -> dict[str, Any]:
        arch, probs = self.mode()
        sp = self.space
        return {**super().snapshot(), "panel": "nasbench_lab.viz.enas:enas_panel",
                "levels": [sp.level_name(i) for i in range(sp.num_levels)],
                "options": [[sp.option_label(i, g) for g in opts] for i, opts in enumerate(self.controller.options)],
                "probs": probs, "mode": str(arch), "baseline": self.baseline, "updates": self.updates,
                "history": [dict(h) for h in self.history], "counts": dict(self.counts.most_common(200)),
                "windows": self.windows.data()}

    def state_dict(self) -> dict[str, Any]:
        # tensors and plain data only: checkpoints load with weights_only=True
        return {**super().state_dict(), "controller": {k: v.detach().clone() for k, v in
                                                       self.controller.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "baseline": self.baseline, "updates": self.updates,
                "buffer": [[list(g), float(r)] for g, r in self.buffer], "last_phase": self.last_phase,
                "history": [dict(h) for h in self.history], "progress": self.progress.state_dict(),
                "windows": self.windows.state_dict(), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.updates, self.last_phase = int(state["updates"]), int(state["last_phase"])
        self.buffer = [(current_genes(self.space, g), float(r)) for g, r in state["buffer"]]
        self._masks = [self.masks(g) for g, _ in self.buffer]
        self.history = [dict(h) for h in state["history"]]
        self.progress.load_state_dict(state["progress"])
        self.windows.load_state_dict(state["windows"])
        self.counts = Counter(state["counts"])
