"""Successive halving and Hyperband on an evaluator with fidelities (004 §5.2).

``fidelities`` are the budgets the evaluator accepts, lowest first (``f_0 < ... < f_K``);
``eta`` is the keep-one-in-eta ratio. Hyperband (Li et al. 2018) runs brackets
``s = K, K-1, ..., 0``: bracket ``s`` starts ``n = ceil((K + 1) / (s + 1) * eta^s)`` uniform
architectures at fidelity ``f_(K-s)``; at each rung the best ``max(1, floor(n_i / eta))`` are
promoted to the next fidelity, until ``f_K``. Successive halving (``mode="sh"``) repeats only
the most aggressive bracket ``s = K``. When the last bracket ends the schedule starts over with
new architectures, so the strategy can fill any query budget.

Every completed rung is recorded in ``rungs`` (fidelity, architectures, results, promoted), so
a view or a test can check that the promoted architectures are exactly the best of their rung.
"""

from __future__ import annotations

import math
from typing import Any

from nasbench_lab.search.evaluators import EvalResult
from nasbench_lab.search.strategies.base import Strategy
from nasbench_lab.spaces import Arch, SearchSpace


class Hyperband(Strategy):
    name = "hyperband"
    needs_fidelity = True
    _state_keys = ("bracket", "rung", "todo", "results", "rungs", "round")

    def __init__(self, space: SearchSpace | str, seed: int = 0, fidelities: tuple[float, ...] | list[float] | None = None,
                 eta: int = 3, mode: str = "hyperband") -> None:
        super().__init__(space, seed)
        if not fidelities:
            raise ValueError("hyperband: needs an evaluator with fidelities (budgets such as epochs), e.g. "
                             "evaluator 'training' with epochs=(1, 3, 9), or 'benchmark' with "
                             "fidelities=(22, 66, 200); pass fidelities=evaluator.fidelities")
        fid = tuple(sorted(float(f) for f in fidelities))
        if int(eta) < 2:
            raise ValueError(f"hyperband: eta must be an integer >= 2, got {eta!r} (e.g. eta=3)")
        if mode not in ("hyperband", "sh"):
            raise ValueError(f"hyperband: mode must be 'hyperband' or 'sh' (successive halving), got {mode!r}")
        self.fidelities, self.eta, self.mode = fid, int(eta), mode
        self._options = {"fidelities": list(fid), "eta": self.eta, "mode": mode}
        self.K = len(fid) - 1
        self.round = 0
        self.bracket = self.K
        self.rung = 0
        self.todo: list[Arch] = []
        self.results: dict[Arch, float] = {}
        self.rungs: list[dict[str, Any]] = []
        self._start_bracket(self.K)

    # ------------------------------------------------------------------ schedule
    def bracket_size(self, s: int) -> int:
        return math.ceil((self.K + 1) / (s + 1) * self.eta ** s)

    def _start_bracket(self, s: int) -> None:
        self.bracket, self.rung = s, 0
        n = self.bracket_size(s)
        picked: dict[Arch, None] = {}
        for _ in range(50 * n):  # distinct architectures where the space allows
            picked[self.cache.sample(self.rng)] = None
            if len(picked) >= n:
                break
        self.todo = list(picked)[::-1]
        self.results = {}

    def current_fidelity(self) -> float:
        return self.fidelities[self.K - self.bracket + self.rung]

    def _end_rung(self) -> None:
        ranked = sorted(self.results, key=self.results.__getitem__, reverse=True)
        last = self.rung == self.bracket
        keep = [] if last else ranked[: max(1, len(ranked) // self.eta)]
        self.rungs.append({"round": self.round, "bracket": self.bracket, "rung": self.rung,
                           "fidelity": self.current_fidelity(), "archs": [str(a) for a in ranked],
                           "acc": [float(self.results[a]) for a in ranked], "promoted": [str(a) for a in keep]})
        if len(self.rungs) > 200:
            del self.rungs[:-200]
        if not last:
            self.rung += 1
            self.todo = keep[::-1]
            self.results = {}
            return
        nxt = self.bracket - 1 if self.mode == "hyperband" else -1
        if nxt < 0:
            self.round += 1
            nxt = self.K
        self._start_bracket(nxt)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Arch:
        while not self.todo:
            self._end_rung()
        self.fidelity = self.current_fidelity()
        return self.todo[-1]

    def tell(self, arch: Arch, result: EvalResult | float) -> None:
        fid = result.fidelity if isinstance(result, EvalResult) else self.fidelity
        super().tell(arch, result)
        if self.todo and self.todo[-1] == arch and (fid is None or fid == self.current_fidelity()):
            self.todo.pop()
            self.results[arch] = float(result.acc if isinstance(result, EvalResult) else result)
            if not self.todo:
                self._end_rung()

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "bracket": self.bracket, "rung": self.rung,
                "fidelity": self.current_fidelity(), "rungs": self.rungs[-20:]}
