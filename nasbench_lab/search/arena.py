"""The strategy arena: S strategies x N seeds x a query budget on one evaluator, as a Job.

Every step is one query of one (strategy, seed) stream; streams take turns (round robin), so
all regret curves grow together in a live view. Each query is recorded (strategy, seed, query
index, architecture, accuracy seen, fidelity, cost, simulated time, best so far, ground truth
of the incumbent and its regret), and the arena summarises them as

- :meth:`Arena.results`: the tidy table, one row per query;
- :meth:`Arena.regret_table`: final regret mean +- standard error per strategy (with a
  one-sided Mann-Whitney p-value against random search when it is in the arena);
- :meth:`Arena.curves`: anytime regret (mean and a t confidence band over seeds) against the
  number of queries or against simulated time;
- :meth:`Arena.reference`: the *exact* expected regret of uniform random sampling (with
  replacement) from the benchmark table, via order statistics (:func:`expected_best_of_n`),
  the line every strategy is compared with (004 §3.1).

Regret is always ``optimum - truth(incumbent)``, the incumbent being the architecture with the
best accuracy *seen by the strategy*; on a table that is the best accuracy itself, on a proxy or
a supernet it is the real accuracy of the architecture the strategy would pick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from nasbench_lab import spaces
from nasbench_lab import validation as V
from nasbench_lab.runs.job import Job
from nasbench_lab.search import evaluators as ev_mod
from nasbench_lab.search import strategies as st_mod
from nasbench_lab.search.evaluators import BenchmarkEvaluator, Evaluator
from nasbench_lab.search.strategies.base import Strategy

COLUMNS = ("strategy", "seed", "query", "arch", "acc", "fidelity", "cost_s", "sim_time", "best_so_far",
           "truth", "incumbent", "incumbent_truth", "regret")


def expected_best_of_n(values: np.ndarray | list[float], n: int | np.ndarray) -> np.ndarray | float:
    """Exact E[max of ``n`` uniform draws with replacement] from the empirical ``values``.

    With the values sorted ``v_(1) <= ... <= v_(N)``, ``P(max <= v_(i)) = (i / N)^n``, so
    ``E[max] = sum_i v_(i) * ((i / N)^n - ((i - 1) / N)^n)`` (ties need no special care).
    """
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0:
        raise ValueError("expected_best_of_n: values is empty; pass the table's accuracies")
    ns = np.atleast_1d(np.asarray(n))
    if np.any(ns < 1):
        raise ValueError(f"expected_best_of_n: n must be >= 1, got {n!r}")
    q = np.arange(v.size + 1) / v.size  # CDF at each order statistic, 0 first
    # (m, N+1) powers; differences are the probabilities that the max is v_(i)
    w = np.diff(q[None, :] ** ns[:, None].astype(float), axis=1)
    out = w @ v
    return float(out[0]) if np.ndim(n) == 0 else out


@dataclass
class Stream:
    """One (strategy, seed) search inside the arena."""

    strategy_name: str
    seed: int
    strategy: Strategy
    queries: int = 0
    sim_time: float = 0.0
    best: float = -np.inf
    incumbent: str = ""
    incumbent_truth: float = float("nan")
    regrets: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        return {"strategy": self.strategy.state_dict(), "queries": self.queries, "sim_time": self.sim_time,
                "best": self.best, "incumbent": self.incumbent, "incumbent_truth": self.incumbent_truth,
                "regrets": list(self.regrets), "times": list(self.times)}

    def load(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state["strategy"])
        self.queries, self.sim_time, self.best = int(state["queries"]), float(state["sim_time"]), float(state["best"])
        self.incumbent, self.incumbent_truth = state["incumbent"], float(state["incumbent_truth"])
        self.regrets = list(state["regrets"])
        self.times = list(state["times"])


def _parse_strategies(strategies: str | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(strategies, str):
        strategies = [strategies]
    out: list[str] = []
    for item in strategies:
        for name in str(item).split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    if not out:
        raise ValueError(f"strategies: expected at least one of {', '.join(st_mod.names())}, got none")
    bad = [s for s in out if s not in st_mod.names()]
    if bad:
        raise ValueError(f"strategies: unknown {bad}; valid names: {', '.join(st_mod.names())} (e.g. ['random', 'rea'])")
    return out


def _parse_seeds(seeds: int | list[int] | tuple[int, ...] | range) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds: expected a number of seeds or a list of seeds, got {seeds!r} (e.g. 10 or [0, 1, 2])")
    if isinstance(seeds, int | np.integer):
        if seeds < 1:
            raise ValueError(f"seeds: expected a positive number of seeds, got {seeds!r} (e.g. seeds=10)")
        return list(range(int(seeds)))
    if isinstance(seeds, str | bytes) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds: expected a number of seeds or a list of seeds, got {seeds!r} (e.g. 10 or [0, 1, 2])")
    out = [V.seed("seeds", s) for s in seeds]  # 2.5 or -1 is an error, never truncated
    if not out:
        raise ValueError("seeds: the seed list is empty; pass a number of seeds or a list such as [0, 1, 2]")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds: duplicate seeds in {out}")
    return out


class Arena(Job):
    """Compare black-box strategies over seeds on one evaluator (a :class:`Job`: run it in a
    :class:`~nasbench_lab.runs.Run`, or call :meth:`run` to do it all in the foreground).

    ``evaluator`` is a name (``"benchmark"``, ``"proxy"``, ``"training"``, ``"supernet"``, see
    :func:`nasbench_lab.search.evaluators.get`, with ``evaluator_options``) or an
    :class:`Evaluator`; ``dataset`` names the ground-truth column used for regret (and, for
    ``"benchmark"``, the table searched). ``strategy_options`` maps a strategy name to its
    options, e.g. ``{"rea": {"population_size": 50}}``. A checkpointed arena is rebuilt from its
    config, so a supernet evaluator resumes only when given as
    ``evaluator_options={"checkpoint": <the one-shot run's checkpoint>}``.
    """

    kind = "search"

    def __init__(self, space: str = "nb201", dataset: str | None = "cifar10",
                 strategies: str | list[str] | tuple[str, ...] = ("random", "rea"),
                 seeds: int | list[int] | tuple[int, ...] | range = 10, budget: int = 300,
                 evaluator: str | Evaluator = "benchmark", evaluator_options: dict[str, Any] | None = None,
                 strategy_options: dict[str, dict[str, Any]] | None = None) -> None:
        if space not in spaces.names():
            raise ValueError(f"space: unknown {space!r}; valid names: {', '.join(spaces.names())}")
        self.names = _parse_strategies(strategies)
        self.seeds = _parse_seeds(seeds)
        if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
            raise ValueError(f"budget: expected a positive number of queries per search, got {budget!r} (e.g. budget=300)")
        self.budget = int(budget)
        self.space_name = space
        self.space = spaces.get(space)
        self.dataset = dataset
        self.evaluator_options = dict(evaluator_options or {})
        self.strategy_options = {k: dict(v) for k, v in (strategy_options or {}).items()}
        bad = sorted(set(self.strategy_options) - set(self.names))
        if bad:
            raise ValueError(f"strategy_options: {bad} are not in the arena's strategies {self.names}")
        if isinstance(evaluator, Evaluator):
            self.evaluator = evaluator
            self.evaluator_name = evaluator.name
            self.evaluator_options = evaluator.options()  # what rebuilds it when a run resumes
            if evaluator.space.name != space:
                raise ValueError(f"evaluator: it searches space {evaluator.space.name!r}, the arena {space!r}")
        else:
            if evaluator not in ev_mod.names():
                raise ValueError(f"evaluator: unknown {evaluator!r}; valid names: {', '.join(ev_mod.names())}")
            if evaluator == "benchmark":
                ev_mod.get_benchmark(space, dataset)  # clear error for a missing dataset column
            self.evaluator_name = evaluator
            self.evaluator = ev_mod.get(evaluator, space, dataset, **self.evaluator_options)
        ev = self.evaluator
        if isinstance(ev, BenchmarkEvaluator) and len(ev.benchmark) < self.space.size:
            raise ValueError(f"evaluator: the {ev.benchmark.space}/{ev.benchmark.dataset} table covers only "
                             f"{len(ev.benchmark)} of the {self.space.size} architectures of {space!r}; "
                             "searching it needs a complete table")
        for name in self.names:
            cls = st_mod.strategy_class(name)
            if cls.needs_fidelity and not ev.fidelities:
                raise ValueError(
                    f"strategies: {name!r} needs an evaluator with fidelities, and {ev.name!r} has none; use "
                    "evaluator 'training' (epochs=(1, 3, 9)) or 'benchmark' with evaluator_options="
                    "{'fidelities': (22, 66, 200)} (simulated low fidelities), or drop it")
        self.streams: list[Stream] = []
        for name in self.names:
            opts = dict(self.strategy_options.get(name, {}))
            if st_mod.strategy_class(name).needs_fidelity:
                opts.setdefault("fidelities", list(ev.fidelities))
            if "budget" in st_mod.option_names(name):
                opts.setdefault("budget", self.budget)  # REA sizes its population to the budget
            for seed in self.seeds:
                self.streams.append(Stream(name, seed, st_mod.get(name, self.space, seed=seed, **opts)))
        self.total_steps = len(self.streams) * self.budget
        self.step_count = 0
        # ground truth for regret: the evaluator's, else the dataset column's (when it exists)
        self.benchmark = ev.benchmark if ev.benchmark is not None else (
            ev_mod.find_benchmark(space, dataset) if dataset else None)
        if ev.benchmark is not None:
            self._truth = ev.truth
        else:
            bm = self.benchmark
            self._truth = lambda a: float(bm.query(a)) if bm is not None and a in bm else float("nan")
        self.optimum = float(self.benchmark.optimum[1]) if self.benchmark is not None else float("nan")
        self._records: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        self._reference: np.ndarray | None = None
        self._mean_cost: float | None = None

    # ------------------------------------------------------------------ Job contract
    def config(self) -> dict[str, Any]:
        return {"space": self.space_name, "dataset": self.dataset, "strategies": list(self.names),
                "seeds": list(self.seeds), "budget": self.budget, "evaluator": self.evaluator_name,
                "evaluator_options": _plain(self.evaluator_options), "strategy_options": _plain(self.strategy_options)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Arena:
        return cls(**config)

    def meta(self) -> dict[str, Any]:
        return {"space": self.space_name, "dataset": self.dataset, "evaluator": self.evaluator_name}

    def step(self) -> dict[str, Any]:
        if self.done:
            raise ValueError(f"Arena.step: all {self.total_steps} queries are done")
        stream = self.streams[self.step_count % len(self.streams)]
        s = stream.strategy
        arch = s.ask()
        res = self.evaluator.evaluate(arch, s.fidelity)
        s.tell(arch, res)
        stream.queries += 1
        stream.sim_time += res.cost_s
        truth = self._truth(arch)
        if res.acc > stream.best:
            stream.best, stream.incumbent, stream.incumbent_truth = res.acc, str(arch), truth
        regret = self.optimum - stream.incumbent_truth
        stream.regrets.append(regret)
        stream.times.append(stream.sim_time)
        row = (stream.strategy_name, stream.seed, stream.queries, str(arch), res.acc, res.fidelity, res.cost_s,
               stream.sim_time, stream.best, truth, stream.incumbent, stream.incumbent_truth, regret)
        for col, val in zip(COLUMNS, row):
            self._records[col].append(val)
        self.step_count += 1
        return {"strategy": stream.strategy_name, "seed": stream.seed, "query": stream.queries, "arch": str(arch),
                "acc": res.acc, "best_so_far": stream.best, "regret": regret, "sim_time": stream.sim_time}

    def run(self, progress: bool = False, executor: Any = None, store: Any = False) -> Arena:
        """Do every remaining query in the foreground (scripts, the CLI, tests).

        ``executor`` None or ``"local"``: the streams take turns in this process. Else (an
        :class:`~nasbench_lab.sweep.ExecutorConfig` of a process pool or Ray) every (strategy,
        seed) stream is a task of a sweep (:mod:`nasbench_lab.sweep`), searched to its budget
        on its own and merged back here in the order the turns would have given; each stream
        owns its strategy and seed, so the numbers are the same (:func:`stream_task`)."""
        from nasbench_lab.progress import progress as tqdm
        from nasbench_lab.sweep import ExecutorConfig

        cfg = ExecutorConfig(kind=executor) if isinstance(executor, str) else executor
        if cfg is not None and (cfg.kind != "local" or cfg.workers > 1):
            return self._run_sweep(cfg, progress, store)
        for _ in tqdm(range(self.total_steps - self.step_count), desc="arena", disable=not progress, leave=False):
            self.step()
        return self

    def _run_sweep(self, cfg: Any, progress: bool, store: Any) -> Arena:
        from nasbench_lab.sweep import Sweep, Task
        from nasbench_lab.sweep.spec import task_key

        if self.step_count:
            raise ValueError("Arena.run(executor=...): the arena has started in this process; run it to the end "
                             "without an executor")
        base = self.config()
        tasks = []
        for stream in self.streams:
            name = stream.strategy_name
            conf = {**base, "strategies": [name], "seeds": [stream.seed],
                    "strategy_options": {k: v for k, v in base["strategy_options"].items() if k == name}}
            tasks.append(Task(task_key("search", f"{name}-s{stream.seed}", conf), "nasbench_lab.search.arena:stream_task",
                              {"config": conf}, name=f"{name} seed {stream.seed}"))
        sweep = Sweep(tasks, cfg, store=store, name="search", progress=progress)
        sweep.run()
        if sweep.failed:
            key, why = next(iter(sweep.failed.items()))
            raise RuntimeError(f"search: {len(sweep.failed)} of {len(tasks)} searches failed; {key}: {why}")
        parts = [sweep.results[t.key] for t in tasks]
        for stream, part in zip(self.streams, parts):
            stream.load(part["stream"])
        # the rows in the order the turns give: query by query, stream by stream
        merged: list[tuple[int, int, tuple[Any, ...]]] = []
        for j, part in enumerate(parts):
            rec = part["records"]
            for i in range(len(rec["query"])):
                merged.append((int(rec["query"][i]), j, tuple(rec[c][i] for c in COLUMNS)))
        merged.sort(key=lambda t: (t[0], t[1]))
        self._records = {c: [row[k] for _, _, row in merged] for k, c in enumerate(COLUMNS)}
        self.step_count = self.total_steps
        return self

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "streams": [s.state() for s in self.streams],
                "records": {k: list(v) for k, v in self._records.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for stream, st in zip(self.streams, state["streams"]):
            stream.load(st)
        self._records = {k: list(v) for k, v in state["records"].items()}

    def snapshot(self) -> dict[str, Any]:
        """Mean regret per query so far for each strategy (the live arena view), the random
        expectation, and the view data of the first seed of every strategy."""
        mean: dict[str, list[float]] = {}
        for name in self.names:
            runs = [s.regrets for s in self.streams if s.strategy_name == name]
            n = min(len(r) for r in runs)
            mean[name] = np.mean([r[:n] for r in runs], axis=0).tolist() if n else []
        ref = self.reference()
        return {"panel": "nasbench_lab.viz.search:arena_panel", "step": self.step_count, "total": self.total_steps,
                "strategies": list(self.names), "mean_regret": mean,
                "reference": ref["regret"].tolist() if ref is not None else None,
                "streams": {s.strategy_name: s.strategy.snapshot() for s in self.streams if s.seed == self.seeds[0]}}

    def finish(self) -> dict[str, Any] | None:
        table = self.regret_table()
        return {"regret": table.to_dict("records"), "queries": self.step_count}

    # ------------------------------------------------------------------ results
    def results(self) -> pd.DataFrame:
        """One row per query: strategy, seed, query (1-based), arch, acc, fidelity, cost_s,
        sim_time, best_so_far, truth, incumbent, incumbent_truth, regret."""
        return pd.DataFrame(self._records, columns=list(COLUMNS))

    def regret_table(self, at: int | None = None) -> pd.DataFrame:
        """Regret after ``at`` queries (default: the last query every seed has reached).

        Columns: strategy, queries, seeds, regret_mean, regret_sem, regret_median, best_acc_mean
        (the ground-truth accuracy of the incumbent, %), found_optimum (share of seeds),
        sim_time_mean, and p_vs_random (one-sided Mann-Whitney U that the strategy's regrets are
        lower than random search's, when random is present). When the strategies saw something
        other than the table's accuracy (a proxy score, a supernet estimate, a trained or
        low-fidelity accuracy), the best value they saw gets its own, named column
        (:meth:`score_column`, e.g. ``best_naswot_score_mean``): a naswot score is no accuracy.
        """
        df = self.results()
        score = self.score_column()
        rows = []
        finals: dict[str, np.ndarray] = {}
        for name in self.names:
            streams = [s for s in self.streams if s.strategy_name == name]
            n = min(s.queries for s in streams) if at is None else int(at)
            if n < 1 or any(s.queries < n for s in streams):
                rows.append({"strategy": name, "queries": 0, "seeds": len(streams)})
                continue
            last = df[(df["strategy"] == name) & (df["query"] == n)]
            reg = last["regret"].to_numpy(float)
            finals[name] = reg
            rows.append({"strategy": name, "queries": n, "seeds": len(streams), "regret_mean": float(reg.mean()),
                         "regret_sem": float(stats.sem(reg)) if len(reg) > 1 else float("nan"),
                         "regret_median": float(np.median(reg)),
                         "best_acc_mean": float(last["incumbent_truth"].mean()),
                         **({score: float(last["best_so_far"].mean())} if score else {}),
                         "found_optimum": float(np.mean(reg <= 1e-9)),
                         "sim_time_mean": float(last["sim_time"].mean())})
        out = pd.DataFrame(rows)
        if "random" in finals:
            out["p_vs_random"] = p_vs_random(out["strategy"], finals, "less")
        return out

    def score_column(self) -> str | None:
        """The regret table's column for what the strategies saw, when it is not the table's
        accuracy: ``best_<proxy>_score_mean``, ``best_supernet_acc_mean``, ``best_trained_acc_mean``
        or ``best_observed_acc_mean`` (simulated low fidelities); None for a plain benchmark."""
        ev = self.evaluator
        name = getattr(ev, "name", "")
        if name == "proxy":
            return f"best_{getattr(ev, 'proxy_name', 'proxy')}_score_mean"
        if name == "supernet":
            return "best_supernet_acc_mean"
        if name == "training":
            return "best_trained_acc_mean"
        if getattr(ev, "fidelities", None):
            return "best_observed_acc_mean"
        return None

    def _stream_data(self) -> dict[tuple[str, int], tuple[list[float], list[float]]]:
        return {(s.strategy_name, s.seed): (s.times, s.regrets) for s in self.streams}

    def curves(self, by: str = "query", points: int = 100, confidence: float = 0.95,
               grid: np.ndarray | None = None) -> pd.DataFrame:
        """Anytime regret per strategy (see :func:`regret_curves`): strategy, x, mean, lo, hi, n.
        ``grid``: simulated times to evaluate at (``by="time"``; default a log grid)."""
        return regret_curves(self._stream_data(), self.names, by=by, points=points, confidence=confidence,
                             grid=grid)

    def reference(self, by: str = "query", points: int = 100, grid: np.ndarray | None = None) -> pd.DataFrame | None:
        """Exact expected regret of uniform random sampling from the table (None without one).

        ``by="query"``: x = 1..budget. ``by="time"``: x on the grid of :meth:`curves` (or
        ``grid``), the number of queries done by time x being taken as ``x / mean cost`` over the
        table (an approximation: random search's cost per query varies around that mean).
        """
        bm = self.benchmark
        if bm is None or len(bm) < self.space.size:
            return None
        if self._reference is None:
            values = bm.table["acc"].to_numpy(float)
            self._reference = self.optimum - expected_best_of_n(values, np.arange(1, self.budget + 1))
        if by == "query":
            return pd.DataFrame({"x": np.arange(1, self.budget + 1), "regret": self._reference})
        if grid is None:
            grid = time_grid(self._stream_data(), points)
        if grid is None or not len(grid):
            return None
        if self._mean_cost is None:
            self._mean_cost = float(bm.costs().mean())
        n = np.clip(np.floor(np.asarray(grid, float) / self._mean_cost).astype(int), 0, self.budget)
        reg = np.where(n >= 1, self._reference[np.clip(n - 1, 0, None)], np.nan)
        return pd.DataFrame({"x": grid, "regret": reg})

    def __repr__(self) -> str:
        return (f"<Arena {self.space_name}/{self.dataset} {self.names} x {len(self.seeds)} seeds x {self.budget} "
                f"on {self.evaluator_name}: {self.step_count}/{self.total_steps}>")


def time_grid(streams: Mapping[tuple[str, int], tuple[Sequence[float], Sequence[float]]], points: int = 100,
              ) -> np.ndarray | None:
    """A log-spaced grid of simulated times spanning every stream's queries (None before any)."""
    t = np.concatenate([np.asarray(times, float) for times, _ in streams.values()]) if streams else np.array([])
    t = t[t > 0]
    if not len(t):
        return None
    lo, hi = float(t.min()), float(t.max())
    return np.geomspace(lo, hi, points) if hi > lo else np.array([lo])


def regret_curves(streams: Mapping[tuple[str, int], tuple[Sequence[float], Sequence[float]]],
                  strategies: Sequence[str] | None = None, by: str = "query", points: int = 100,
                  confidence: float = 0.95, grid: np.ndarray | None = None) -> pd.DataFrame:
    """Anytime regret per strategy from per-stream series, the one computation behind the
    arena's curves and the live widget.

    ``streams`` maps ``(strategy, seed)`` to ``(cumulative simulated times, regrets)``, one value
    per query. ``by="query"``: x = 1..n, n the number of queries every seed of the strategy has
    done. ``by="time"``: x on ``grid`` (default: :func:`time_grid`); a seed's regret at time x is
    that of its last query finished by x, and seeds with no query yet are left out of the mean.
    The band is the t confidence interval of the mean over seeds. Columns: strategy, x, mean,
    lo, hi, n (seeds).
    """
    if by not in ("query", "time"):
        raise ValueError(f"curves: by must be 'query' or 'time', got {by!r}")
    if strategies is None:
        strategies = list(dict.fromkeys(k[0] for k in streams))
    if by == "time" and grid is None:
        grid = time_grid(streams, points)
    out = []
    for name in strategies:
        runs = [v for k, v in streams.items() if k[0] == name]
        if not runs:
            continue
        if by == "query":
            n = min(len(r) for _, r in runs)
            if n == 0:
                continue
            mat = np.array([np.asarray(r[:n], float) for _, r in runs])
            x = np.arange(1, n + 1)
        else:
            if grid is None:
                continue
            rows = []
            for t, r in runs:
                t, r = np.asarray(t, float), np.asarray(r, float)
                k = np.searchsorted(t, grid, side="right") - 1
                rows.append(np.where(k >= 0, r[np.clip(k, 0, None)], np.nan) if len(r) else np.full(len(grid), np.nan))
            mat, x = np.array(rows), np.asarray(grid, float)
        out.append(_band(name, x, mat, confidence))
    if not out:
        return pd.DataFrame(columns=["strategy", "x", "mean", "lo", "hi", "n"])
    return pd.concat(out, ignore_index=True)


def final_regret(streams: Mapping[tuple[str, int], tuple[Sequence[float], Sequence[float]]],
                 strategies: Sequence[str] | None = None) -> pd.DataFrame:
    """Regret after the last query every seed of a strategy has done: strategy, queries, seeds,
    regret_mean, regret_sem (the live widget's table; :meth:`Arena.regret_table` has more)."""
    if strategies is None:
        strategies = list(dict.fromkeys(k[0] for k in streams))
    rows = []
    for name in strategies:
        runs = [r for k, (_, r) in streams.items() if k[0] == name]
        n = min((len(r) for r in runs), default=0)
        reg = np.array([r[n - 1] for r in runs], float) if n else np.array([])
        rows.append({"strategy": name, "queries": n, "seeds": len(runs),
                     "regret_mean": float(reg.mean()) if len(reg) else float("nan"),
                     "regret_sem": float(stats.sem(reg)) if len(reg) > 1 else float("nan")})
    return pd.DataFrame(rows, columns=["strategy", "queries", "seeds", "regret_mean", "regret_sem"])


def _band(name: str, x: np.ndarray, mat: np.ndarray, confidence: float) -> pd.DataFrame:
    """Mean over the rows of ``mat`` (NaN = missing) and the t confidence band of that mean."""
    missing = np.isnan(mat)
    n = (~missing).sum(axis=0)
    mean = np.where(n > 0, np.where(missing, 0.0, mat).sum(axis=0) / np.maximum(n, 1), np.nan)
    dev = np.where(missing, 0.0, mat - mean)
    var = np.where(n > 1, (dev ** 2).sum(axis=0) / np.maximum(n - 1, 1), 0.0)
    half = np.where(n > 1, stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * np.sqrt(var / np.maximum(n, 1)), 0.0)
    return pd.DataFrame({"strategy": name, "x": x, "mean": mean, "lo": mean - half, "hi": mean + half, "n": n})


def _plain(obj: Any) -> Any:
    """Tuples to lists, a DataBundle to its dataset name, so the config is plain JSON-friendly data."""
    if hasattr(obj, "train_x") and hasattr(obj, "name"):
        return obj.name  # data.get(name) rebuilds the same bundle
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def p_vs_random(strategies: Sequence[str], finals: dict[str, np.ndarray], alternative: str) -> list[float]:
    """One-sided Mann-Whitney U p-value of each strategy's final values against random search's
    (``alternative``: "less" for regrets, "greater" for hypervolumes); NaN for random itself and
    for a strategy with no final values, 1.0 when every value is the same constant."""
    out = []
    for name in strategies:
        if name == "random" or name not in finals:
            out.append(float("nan"))
        elif np.ptp(np.concatenate([finals[name], finals["random"]])) == 0:
            out.append(1.0)  # identical constants: no evidence either way
        else:
            out.append(float(stats.mannwhitneyu(finals[name], finals["random"], alternative=alternative).pvalue))
    return out


def stream_task(ctx: Any, config: dict[str, Any]) -> Any:
    """One (strategy, seed) of an arena as a sweep task: an arena of that one stream, searched to
    its budget (a Job: streamed progress and checkpoints); its stream state and query rows."""
    from nasbench_lab.sweep import train_job

    arena = Arena(**config)
    yield from train_job(ctx, arena)
    return {"stream": arena.streams[0].state(), "records": {k: list(v) for k, v in arena._records.items()}}
