"""Run a thesis table: plan its runs, train each (resumably), judge it, assemble the table.

A table is a list of independent run specs (:func:`plan`); :func:`execute` turns one spec into a
result, idempotently: a run whose result file exists is read back, a run stopped mid-training
continues from its last checkpoint (``Run.resume``), a run whose training finished but whose
judging did not is judged from its final checkpoint. So an interrupted table continues with
``--resume`` without retraining anything that finished.

Where things live:

- the runs themselves (config, metrics, status, checkpoints) in the run store and the workspace,
  like every other run (``RunBrowser`` shows them). The run id is derived from the run's training
  config (space, data, sampler, options, budget, seed), so two tables with the same protocol
  share a run (Tables 5.1 and 4.3 share their uniform pooling runs at ``--scale cpu``);
- the table's results in ``--out``: ``runs/<key>.json`` (one per run: metrics, picks, timing),
  ``runs/<key>.ranking.csv``, and :mod:`nasbench_lab.reproduce.report` writes the table.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_lab.reproduce.tables import SHARED_BN_KEYS, Method, Protocol, Table

#: the result file format of one run (bumped when its fields change meaning)
RESULT_VERSION = 1


class Diverged(RuntimeError):
    """A run's training loss became NaN or infinite."""


@dataclass(frozen=True)
class RunSpec:
    """One (method, seed) of a table at one scale: plain data, so an executor can ship it anywhere."""

    table: str
    scale: str
    label: str
    method: str
    seed: int
    trainer: dict[str, Any]  # TrainerConfig fields
    rank_images: int
    rank_sample: int | None
    rank_seed: int
    bse_rounds_per_arch: int
    bse: bool
    truth: tuple[str, str]  # (space, dataset) of the ground truth

    @property
    def key(self) -> str:
        """The run id: readable, and unique to the training config (a hash of it)."""
        cfg = {k: v for k, v in self.trainer.items() if k not in ("device", "data_root")}
        digest = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:8]
        slug = "".join(c if c.isalnum() else "-" for c in self.method)
        return f"repro-{self.trainer['space']}-{self.trainer['dataset']}-{slug}-s{self.seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(table: Table, scale: str, seeds: Sequence[int], dataset: str | None = None,
         data_root: str | None = None, device: str = "auto") -> list[RunSpec]:
    """Every (method, seed) run of ``table`` at ``scale``, in the order they run (seed-major, so a
    stopped table has whole seeds of every method rather than every seed of the first method)."""
    proto: Protocol = table.protocol(scale)
    specs = []
    for seed in seeds:
        for m in table.methods:
            specs.append(_spec(table, scale, proto, m, int(seed), dataset or table.dataset, data_root, device))
    return specs


def _spec(table: Table, scale: str, proto: Protocol, m: Method, seed: int, dataset: str,
          data_root: str | None, device: str) -> RunSpec:
    from nasbench_lab.training.samplers.compare import budget_steps

    options = {**proto.method_options.get(m.method, {}), **m.options}
    trainer = {"space": table.space, "dataset": dataset, "method": m.method, "method_options": options,
               "steps": budget_steps(m.method, proto.steps, table.budget_rule, options), "batch_size": proto.batch_size,
               "val_batch_size": proto.val_batch_size, "lr": proto.lr, "weight_decay": proto.weight_decay,
               "schedule": proto.schedule, "seed": seed, "device": device, "rank_at_end": False,
               "rank_images": proto.rank_images}
    if data_root is not None:
        trainer["data_root"] = str(data_root)
    return RunSpec(table=table.name, scale=scale, label=m.label, method=m.method, seed=seed, trainer=trainer,
                   rank_images=proto.rank_images, rank_sample=proto.rank_sample, rank_seed=proto.rank_seed,
                   bse_rounds_per_arch=proto.bse_rounds_per_arch, bse="bse" in table.metrics,
                   truth=(table.space, table.truth_dataset))


# ---------------------------------------------------------------------------------------- judging
def ranked_archs(space_name: str, sample: int | None, seed: int) -> list[Any]:
    """The architectures a table ranks: the whole space, or a fixed seeded sample shared by every
    method and seed (distinct architectures, drawn uniformly)."""
    from nasbench_lab import spaces

    space = spaces.get(space_name)
    if sample is None:
        if not space.numerable:
            raise ValueError(f"rank_sample: {space_name!r} cannot be ranked whole; give a sample size")
        return list(space.enumerate())
    rng = np.random.default_rng(seed)
    seen: dict[Any, None] = {}
    limit = min(int(sample), int(space.size))
    while len(seen) < limit:
        seen[space.sample(rng)] = None
    return list(seen)


def bse_pick(trainer: Any, archs: Sequence[Any], rounds: int, seed: int, tau_start: float = 1.0,
             tau_end: float = 200.0) -> tuple[Any, dict[str, Any]]:
    """Boltzmann softmax exploration on a trained supernet (thesis eq 2.6, Table 5.1's "BSE").

    ``p(c) = softmax(tau * a_c)`` with ``a_c`` the running mean of the supernet's accuracy (in
    [0, 1]) of ``c`` on single validation minibatches (the reward of §3.3) and the inverse
    temperature ``tau`` increased linearly from ``tau_start`` (the thesis: "from 1") to
    ``tau_end`` over ``rounds`` draws (the thesis does not give the end: 200 makes a 1-point gap
    a factor e^2 by the end). Every architecture is evaluated once first. The pick is the best
    running mean among the architectures drawn at least 3 times (a single lucky minibatch cannot
    win). Returns the pick and its trace (draws per architecture, mean rewards)."""
    from scipy.special import softmax

    rng = np.random.default_rng(seed)
    n = len(archs)
    total = np.zeros(n)
    count = np.zeros(n)
    for i, a in enumerate(archs):
        total[i] += trainer.reward(a)
        count[i] += 1
    for t in range(max(0, int(rounds) - n)):
        tau = tau_start + (tau_end - tau_start) * t / max(1, int(rounds) - n - 1)
        p = softmax(tau * total / count)
        i = int(rng.choice(n, p=p))
        total[i] += trainer.reward(archs[i])
        count[i] += 1
    mean = total / count
    eligible = np.flatnonzero(count >= min(3, int(count.max())))
    best = int(eligible[np.argmax(mean[eligible])])
    return archs[best], {"draws": count.astype(int).tolist(), "mean_reward": mean.round(5).tolist()}


def judge(trainer: Any, spec: RunSpec) -> tuple[dict[str, Any], pd.DataFrame]:
    """Rank the table's architectures with the trained supernet and score the ranking."""
    from nasbench_lab import benchmarks
    from nasbench_lab.training.ranking import rank_supernet

    bench = benchmarks.get(spec.truth[0], dataset=spec.truth[1])
    archs = ranked_archs(spec.trainer["space"], spec.rank_sample, spec.rank_seed)
    # first: recalibrating a path overwrites the shared statistics this diagnostic reads
    shared = shared_bn_diagnostic(trainer, archs, bench, spec.rank_images)
    t0 = time.perf_counter()
    df = rank_supernet(trainer, archs, benchmark=bench, max_images=spec.rank_images)
    s = df.attrs.get("summary", {})
    truth = df["truth"].astype(float)  # sorted by the supernet's rank (est_rank)
    out: dict[str, Any] = {
        "kendall_tau": s.get("kendall_tau"), "kendall_tau_top10": s.get("kendall_tau_top10"),
        "spearman": s.get("spearman"), "n_ranked": int(len(df)),
        "top1": float(truth.iloc[0]), "top5": float(truth.head(5).mean()), "top10": float(truth.head(10).mean()),
        "top1_arch": str(df["arch"].iloc[0]), "top1_true_rank": int(bench.rank(df["arch"].iloc[0])),
        "rank_s": round(time.perf_counter() - t0, 1), **shared}
    if spec.bse:
        t1 = time.perf_counter()
        pick, trace = bse_pick(trainer, archs, spec.bse_rounds_per_arch * len(archs), seed=spec.seed)
        out.update({"bse": float(bench.query(pick)), "bse_arch": str(pick), "bse_true_rank": int(bench.rank(pick)),
                    "bse_s": round(time.perf_counter() - t1, 1)})
    return out, df


def shared_bn_diagnostic(trainer: Any, archs: Sequence[Any], bench: Any, rank_images: int | None) -> dict[str, Any]:
    """Kendall τ of the same ranking with the supernet's *shared* BN statistics (no per-path
    recalibration). The thesis does not say how it normalised a path when ranking; on the pooling
    space the choice moves uniform's τ from 0.57 (recalibrated, our default) to -0.08 (shared),
    more than any sampler does, so every table carries both."""
    from nasbench_lab.training.ranking import rank_supernet

    keep = trainer.cfg.bn_recalibration
    trainer.cfg.bn_recalibration = False
    try:
        s = rank_supernet(trainer, archs, benchmark=bench, max_images=rank_images).attrs.get("summary", {})
    finally:
        trainer.cfg.bn_recalibration = keep
    return {"kendall_tau_shared_bn": s.get("kendall_tau"), "kendall_tau_top10_shared_bn": s.get("kendall_tau_top10")}


def _fill_diagnostics(out: Path, spec: RunSpec, res: dict[str, Any], store: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """A result judged before the shared-BN diagnostic existed gets it from the run's final
    checkpoint (no retraining); without a checkpoint it stays as it is."""
    if all(k in res for k in SHARED_BN_KEYS):
        return res
    from nasbench_lab import benchmarks
    from nasbench_lab.runs import RunStore

    store = store if store is not None else RunStore()
    try:
        ck = store.run(res.get("run_id") or spec.key).get("checkpoint")
    except KeyError:
        ck = None
    if not ck or not Path(ck).is_file():
        return res
    log(f"{spec.key}: adding the shared-BN diagnostic from its checkpoint")
    job = _load_trained(Path(ck))
    bench = benchmarks.get(spec.truth[0], dataset=spec.truth[1])
    res = {**res, **shared_bn_diagnostic(job, ranked_archs(spec.trainer["space"], spec.rank_sample, spec.rank_seed),
                                         bench, spec.rank_images)}
    _write_json(_result_path(out, spec), res)
    return res


# ---------------------------------------------------------------------------------------- running
def _result_path(out: Path, spec: RunSpec) -> Path:
    return out / "runs" / f"{spec.key}.json"


def read_result(out: Path, spec: RunSpec) -> dict[str, Any] | None:
    p = _result_path(out, spec)
    if not p.is_file():
        return None
    try:
        res = json.loads(p.read_text())
    except (OSError, ValueError):
        return None  # a torn or foreign file: judged again
    return res if res.get("version") == RESULT_VERSION and res.get("key") == spec.key else None


def finished_seeds(out: Path, scale: str) -> set[int]:
    """The seeds with a finished run at ``scale`` in ``out`` (any call's)."""
    seeds: set[int] = set()
    for p in (out / "runs").glob("*.json"):
        try:
            res = json.loads(p.read_text())
        except (OSError, ValueError):
            continue  # a torn or foreign file is not a finished run
        # a run another table shares (same training, same key) counts: read_result checks the key
        if isinstance(res, dict) and res.get("scale") == scale and isinstance(res.get("seed"), int):
            seeds.add(res["seed"])
    return seeds


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def _load_trained(path: Path) -> Any:
    """The job of a finished run, from its final checkpoint (read as data, see runs.checkpoint)."""
    from nasbench_lab.runs import checkpoint as ckpt
    from nasbench_lab.runs.job import load_job_class

    data = ckpt.load(path)
    job = load_job_class(data["job_class"]).from_config(data["config"])
    job.load_state_dict(data["job"])
    return job


class OutOfTime(RuntimeError):
    """The caller's wall-clock deadline came before the run finished (it is stopped, resumable)."""


def _follow(run: Any, total: int, desc: str, progress: bool, deadline: float | None = None) -> None:
    """A progress bar from the run's events; a NaN or infinite loss stops the run (Diverged), and
    so does the deadline (``time.monotonic()`` value; OutOfTime): both leave a checkpoint."""
    from nasbench_lab.progress import progress as tqdm

    seq = 0
    with tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False) as bar:
        bar.n = run.job.step_count
        while True:
            evs = run.events.since(seq, kinds="step")
            if evs:
                seq = evs[-1].seq
                for e in evs:
                    loss = e.data.get("loss")
                    if isinstance(loss, float) and not math.isfinite(loss):
                        run.stop()
                        raise Diverged(f"the training loss became {loss} at step {e.step} (lr too high for this "
                                       f"batch size?); the run is kept, stopped, in the run store")
                bar.n = evs[-1].step
                bar.refresh()
            if run.status in ("finished", "failed", "stopped"):
                break
            if deadline is not None and time.monotonic() > deadline:
                run.stop()
                raise OutOfTime(f"out of time at step {run.job.step_count}/{total}; the run is stopped with a "
                                f"checkpoint and continues with --resume")
            time.sleep(0.25)


def execute(spec: RunSpec, out: Path, store: Any = None, progress: bool = True,
            log: Callable[[str], None] = print, deadline: float | None = None) -> dict[str, Any]:
    """The result of one run: read back (a missing shared-BN diagnostic added from its checkpoint),
    or trained (resuming where it stopped) and judged.
    ``deadline`` (a ``time.monotonic()`` value) stops the training there (OutOfTime)."""
    from nasbench_lab.runs import Run, RunStore
    from nasbench_lab.training import Trainer

    done = read_result(out, spec)
    if done is not None:
        return _fill_diagnostics(out, spec, done, store, log)
    store = store if store is not None else RunStore()
    key = spec.key
    try:
        rec = store.run(key)
    except KeyError:
        rec = None
    t0 = time.perf_counter()
    resumed_from = 0
    if rec is not None and rec.get("status") == "finished" and rec.get("checkpoint") and Path(rec["checkpoint"]).is_file():
        log(f"{key}: trained earlier ({rec.get('total_steps')} steps); judging it")
        job = _load_trained(Path(rec["checkpoint"]))
        run_id = key
    else:
        if rec is not None and rec.get("checkpoint") and Path(rec["checkpoint"]).is_file():
            run = Run.resume(key, store=store)
            resumed_from = run.job.step_count
            log(f"{key}: resuming at step {resumed_from}/{run.job.total_steps}")
        else:
            run_id = key if rec is None else f"{key}-a{int(time.time())}"  # a record without a checkpoint stays as it is
            job = Trainer(**spec.trainer)
            run = Run(job, store=store, name=f"{spec.table}/{spec.label}/seed{spec.seed}", run_id=run_id,
                      checkpoint_every=max(50, job.total_steps // 20))
        run.start()
        try:
            _follow(run, run.job.total_steps, f"{spec.label} seed {spec.seed}", progress, deadline)
        except KeyboardInterrupt:
            run.stop()
            raise
        if run.status == "failed":
            raise RuntimeError(f"run {run.run_id} ({spec.label}, seed {spec.seed}) failed: "
                               f"{type(run.error).__name__}: {run.error}")
        if run.status != "finished":
            raise KeyboardInterrupt
        job, run_id = run.job, run.run_id
    train_s = time.perf_counter() - t0
    metrics, ranking = judge(job, spec)
    res = {"version": RESULT_VERSION, "key": key, "run_id": run_id, "table": spec.table, "scale": spec.scale,
           "label": spec.label, "method": spec.method, "seed": spec.seed, "steps": spec.trainer["steps"],
           "resumed_from": resumed_from, "train_s": round(train_s, 1), **metrics, "spec": spec.to_dict()}
    (out / "runs").mkdir(parents=True, exist_ok=True)
    ranking.to_csv(out / "runs" / f"{key}.ranking.csv", index=False)
    _write_json(_result_path(out, spec), res)  # last: its presence means the run is done
    return res


# ---------------------------------------------------------------------------------------- as a sweep
def execute_task(ctx: Any, spec: RunSpec, out: Path, store: Any = None, progress: bool = True,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """:func:`execute` as a sweep task of the local executor (in this process: ``spec``, ``store``
    and ``log`` are objects; the run records itself through :class:`~nasbench_lab.runs.Run`)."""
    return execute(spec, Path(out), store=store, progress=progress, log=log)


def remote_task(ctx: Any, spec: dict[str, Any]) -> Any:
    """One run of a table in a sweep worker (a process pool, Ray): train ``spec``'s supernet with
    streamed metrics and checkpoints (the driver records them under the run id ``spec.key``, in
    the run store and checkpoint folder :func:`execute` uses, so either continues the other's
    run), then judge it; the result of :func:`execute` plus ``_ranking`` (records), which
    :func:`keep_result` writes in the driver. A NaN or infinite loss raises :class:`Diverged`."""
    from nasbench_lab.sweep import train_job
    from nasbench_lab.training import Trainer

    spec_ = RunSpec(**{**spec, "truth": tuple(spec["truth"])})
    job = Trainer(**spec_.trainer)
    t0 = time.perf_counter()
    gen = train_job(ctx, job, checkpoint_every=max(50, job.total_steps // 20))
    resumed_from = None
    try:
        msg = next(gen)
        while True:
            if msg[0] == "progress":
                resumed_from = msg[1]["step"] if resumed_from is None else resumed_from
                for step, m in msg[1]["rows"]:
                    loss = m.get("loss")
                    if loss is not None and not math.isfinite(loss):
                        raise Diverged(f"the training loss became {loss} at step {step} (lr too high for this "
                                       "batch size?); its last checkpoint is kept")
            yield msg
            msg = gen.send(None)
    except StopIteration:
        pass
    train_s = time.perf_counter() - t0
    metrics, ranking = judge(job, spec_)
    return {"version": RESULT_VERSION, "key": spec_.key, "run_id": spec_.key, "table": spec_.table,
            "scale": spec_.scale, "label": spec_.label, "method": spec_.method, "seed": spec_.seed,
            "steps": spec_.trainer["steps"], "resumed_from": int(resumed_from or 0), "train_s": round(train_s, 1),
            **metrics, "spec": spec_.to_dict(), "_ranking": ranking.to_dict("records")}


def keep_result(spec: RunSpec, out: Path, res: dict[str, Any]) -> None:
    """Write a worker's result as :func:`execute` does: the ranking CSV, then the result file
    (last: its presence means the run is done)."""
    ranking = pd.DataFrame(res.pop("_ranking"))
    (out / "runs").mkdir(parents=True, exist_ok=True)
    ranking.to_csv(out / "runs" / f"{spec.key}.ranking.csv", index=False)
    _write_json(_result_path(out, spec), res)
