"""Multi-objective search in the arena: accuracy against FLOPs, params or latency, judged by the
anytime hypervolume of what each strategy has found.

:class:`ParetoArena` is an :class:`~nasbench_lab.search.arena.Arena` (same streams, round robin,
regret columns, checkpoints) that also keeps, per (strategy, seed), the objective vectors of the
queried architectures and after every query the hypervolume of their Pareto front. Objectives are
the ground-truth accuracy of the table (as regret uses it) and the space's cost models; each is
scaled to [0, 1] over the whole space (accuracy over the table, a cost over its model's bounds),
reference point ``(1, ..., 1)``. The table gives the *true* front and its hypervolume, so the
"hypervolume gap" ``HV(true front) - HV(found)`` plays the part regret plays for one objective:
0 means the strategy has found the whole front.

Random search "with Pareto filtering" is the plain ``random`` strategy: its front is the
non-dominated subset of its samples. Strategies that accept an ``objectives`` option (``nsga2``)
are given the arena's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from nasbench_lab.search import strategies as st_mod
from nasbench_lab.search.arena import Arena, p_vs_random, regret_curves
from nasbench_lab.search.evaluators import Evaluator
from nasbench_lab.search.pareto import Objectives, hypervolume, nondominated
from nasbench_lab.spaces.cost import cost_model

__all__ = ["ParetoArena", "true_front"]


def _costs(space: Any, names: tuple[str, ...], options: dict[str, dict[str, Any]] | None = None) -> list:
    options = options or {}
    return [cost_model(space, n, **options.get(n, {})) for n in names if n != "acc"]


def true_front(benchmark: Any, names: tuple[str, ...], cost_options: dict[str, dict[str, Any]] | None = None,
               ) -> pd.DataFrame:
    """Every table row's objective values (``arch`` and one column per objective) and the
    ``on_front`` mask of the non-dominated ones (accuracy maximised, costs minimised)."""
    space = benchmark.search_space
    archs = benchmark.archs()
    genes = np.array([a.genes for a in archs], dtype=np.int64)
    cols: dict[str, Any] = {"arch": [str(a) for a in archs]}
    models = iter(_costs(space, names, cost_options))
    for n in names:
        cols[n] = (np.array([benchmark.query(a) for a in archs], dtype=float) if n == "acc"
                   else np.asarray(next(models).many(genes), dtype=float))
    df = pd.DataFrame(cols)
    F = np.column_stack([-df[n].to_numpy() if n == "acc" else df[n].to_numpy() for n in names])
    df["on_front"] = nondominated(F)
    return df


class ParetoArena(Arena):
    """S strategies x N seeds x a budget, scored by anytime hypervolume (module docstring).

    ``objectives``: ``"acc,flops"`` (default), ``"acc,params"``, ``"acc,latency"`` or more;
    ``cost_options`` go to the cost models, e.g. ``{"latency": {"device": "cpu"}}``. Needs a
    complete tabular benchmark (the true front).
    """

    kind = "search-mo"

    def __init__(self, space: str = "nb201", dataset: str | None = "cifar10",
                 strategies: str | list[str] | tuple[str, ...] = ("random", "nsga2"),
                 seeds: int | list[int] | tuple[int, ...] | range = 10, budget: int = 300,
                 objectives: str | list[str] | tuple[str, ...] = "acc,flops",
                 evaluator: str | Evaluator = "benchmark", evaluator_options: dict[str, Any] | None = None,
                 strategy_options: dict[str, dict[str, Any]] | None = None,
                 cost_options: dict[str, dict[str, Any]] | None = None) -> None:
        names = Objectives.parse(objectives)
        if "acc" not in names:
            raise ValueError(f"objectives: the arena scores accuracy against costs; include 'acc', got {names}")
        self.cost_options = {k: dict(v) for k, v in (cost_options or {}).items()}
        opts = {k: dict(v) for k, v in (strategy_options or {}).items()}
        for name in dict.fromkeys(s.strip() for item in ([strategies] if isinstance(strategies, str) else strategies)
                                  for s in str(item).split(",") if s.strip()):
            if name in st_mod.names() and "objectives" in st_mod.option_names(name):
                opts.setdefault(name, {}).setdefault("objectives", ",".join(names))
        super().__init__(space, dataset, strategies, seeds, budget, evaluator, evaluator_options, opts or None)
        bm = self.benchmark
        if bm is None or len(bm) < self.space.size:
            raise ValueError(f"ParetoArena: {space!r}/{dataset!r} has no complete table; the hypervolume gap "
                             "needs the true front (e.g. space='nb201', dataset='cifar10')")
        self.names_obj = names
        self._cost_models = _costs(self.space, names, self.cost_options)
        self.table_front = true_front(bm, names, self.cost_options)
        lows, highs = [], []
        models = iter(self._cost_models)
        for n in names:
            if n == "acc":
                v = self.table_front["acc"]
                lows.append(float(v.min()))
                highs.append(float(v.max()))
            else:
                m = next(models)
                lows.append(float(m.lower))
                highs.append(float(m.upper))
        self.objectives = Objectives(names, tuple(lows), tuple(highs))
        front = self.table_front[self.table_front["on_front"]]
        self.true_hv = hypervolume(self.objectives.scale(front[list(names)].to_numpy()))
        self._points: dict[tuple[str, int], list[list[float]]] = {(s.strategy_name, s.seed): [] for s in self.streams}
        self._hv: dict[tuple[str, int], list[float]] = {k: [] for k in self._points}

    # ------------------------------------------------------------------ Job contract
    def config(self) -> dict[str, Any]:
        return {**super().config(), "objectives": ",".join(self.names_obj), "cost_options": self.cost_options}

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "objectives": ",".join(self.names_obj)}

    def vector(self, arch: Any, acc: float) -> list[float]:
        """Raw objective values of ``arch`` (accuracy ``acc``, then its costs) in objective order."""
        models = iter(self._cost_models)
        return [float(acc) if n == "acc" else float(next(models)(arch.genes)) for n in self.names_obj]

    def step(self) -> dict[str, Any]:
        stream = self.streams[self.step_count % len(self.streams)]
        out = super().step()
        key = (stream.strategy_name, stream.seed)
        arch = self.space.parse(out["arch"])
        vec = self.vector(arch, self._records["truth"][-1])
        pts = self._points[key]
        pts.append(vec)
        hv = hypervolume(self.objectives.scale(pts))
        self._hv[key].append(hv)
        return {**out, "objectives": vec, "hv": hv, "hv_gap": self.true_hv - hv}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "points": {f"{k[0]}|{k[1]}": v for k, v in self._points.items()},
                "hv": {f"{k[0]}|{k[1]}": v for k, v in self._hv.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for store, name in ((self._points, "points"), (self._hv, "hv")):
            for k, v in state[name].items():
                strategy, _, seed = k.rpartition("|")
                store[(strategy, int(seed))] = list(v)

    def snapshot(self) -> dict[str, Any]:
        """The Pareto view's data: every point and the front of the first seed of each strategy,
        the true front, and the mean hypervolume gap per query for each strategy."""
        base = super().snapshot()
        seed0 = self.seeds[0]
        front = self.table_front[self.table_front["on_front"]].sort_values(self.names_obj[1])
        gaps = {}
        for name in self.names:
            runs = [self._hv[(name, s)] for s in self.seeds]
            n = min(len(r) for r in runs)
            gaps[name] = (self.true_hv - np.mean([r[:n] for r in runs], axis=0)).tolist() if n else []
        return {**base, "panel": "nasbench_lab.viz.pareto:pareto_panel", "objectives": list(self.names_obj),
                "points": {name: self._points[(name, seed0)] for name in self.names},
                "true_front": front[list(self.names_obj)].to_numpy().tolist(), "true_hv": self.true_hv,
                "mean_hv_gap": gaps}

    def finish(self) -> dict[str, Any] | None:
        return {"hypervolume": self.hv_table().to_dict("records"), "queries": self.step_count}

    # ------------------------------------------------------------------ results
    def points(self, strategy: str, seed: int) -> pd.DataFrame:
        """One stream's queried architectures with their objective values and the ``on_front`` mask."""
        pts = np.asarray(self._points[(strategy, int(seed))], dtype=float).reshape(-1, len(self.names_obj))
        df = pd.DataFrame(pts, columns=list(self.names_obj))
        res = self.results()
        df.insert(0, "arch", res[(res["strategy"] == strategy) & (res["seed"] == int(seed))]["arch"].to_numpy())
        F = np.column_stack([-df[n] if n == "acc" else df[n] for n in self.names_obj]) if len(df) else np.zeros((0, 2))
        df["on_front"] = nondominated(F)
        return df

    def hv_series(self) -> dict[tuple[str, int], tuple[list[float], list[float]]]:
        """Per stream: (cumulative simulated times, hypervolume gap after each query)."""
        times = {(s.strategy_name, s.seed): s.times for s in self.streams}
        return {k: (times[k], [self.true_hv - h for h in v]) for k, v in self._hv.items()}

    def hv_curves(self, by: str = "query", points: int = 100, confidence: float = 0.95) -> pd.DataFrame:
        """Anytime hypervolume gap per strategy (mean and t band over seeds), as ``Arena.curves``."""
        return regret_curves(self.hv_series(), self.names, by=by, points=points, confidence=confidence)

    def hv_table(self, at: int | None = None) -> pd.DataFrame:
        """Hypervolume after ``at`` queries (default: the last every seed reached): strategy, queries,
        seeds, hv_mean, hv_sem, gap_mean, front_size_mean, and p_vs_random (one-sided Mann-Whitney U
        that the strategy's hypervolumes are larger than random search's)."""
        rows, finals = [], {}
        for name in self.names:
            runs = [self._hv[(name, s)] for s in self.seeds]
            n = min(len(r) for r in runs) if at is None else int(at)
            if n < 1 or any(len(r) < n for r in runs):
                rows.append({"strategy": name, "queries": 0, "seeds": len(runs)})
                continue
            hv = np.array([r[n - 1] for r in runs])
            finals[name] = hv
            fronts = [int(self._front_size(name, s, n)) for s in self.seeds]
            rows.append({"strategy": name, "queries": n, "seeds": len(runs), "hv_mean": float(hv.mean()),
                         "hv_sem": float(stats.sem(hv)) if len(hv) > 1 else float("nan"),
                         "gap_mean": float(self.true_hv - hv.mean()), "front_size_mean": float(np.mean(fronts))})
        out = pd.DataFrame(rows)
        if "random" in finals:
            out["p_vs_random"] = p_vs_random(out["strategy"], finals, "greater")
        return out

    def _front_size(self, strategy: str, seed: int, n: int) -> int:
        pts = np.asarray(self._points[(strategy, seed)][:n], dtype=float)
        F = np.column_stack([-pts[:, i] if nm == "acc" else pts[:, i] for i, nm in enumerate(self.names_obj)])
        return int(nondominated(F).sum())

    def __repr__(self) -> str:
        return (f"<ParetoArena {self.space_name}/{self.dataset} {','.join(self.names_obj)} {self.names} x "
                f"{len(self.seeds)} seeds x {self.budget}: {self.step_count}/{self.total_steps}>")
