"""Run: a Job in a background thread, with controls, an event log, a store and checkpoints."""

from __future__ import annotations

import functools
import os
import threading
import time
import traceback as tb
import weakref
from pathlib import Path
from typing import Any

from nasbench_lab import config
from nasbench_lab import validation as V
from nasbench_lab.runs import checkpoint as ckpt
from nasbench_lab.runs import store as store_mod
from nasbench_lab.runs.events import EventLog
from nasbench_lab.runs.job import Job, job_class_path, load_job_class
from nasbench_lab.runs.openmp import release_idle_team
from nasbench_lab.runs.store import RunStore

#: recorded statuses; readers also report "interrupted" for a live-marked run whose process died
STATUSES = ("created", "running", "paused", "finished", "failed", "stopped")


class _Heartbeat:
    """One daemon thread per process that beats for every live (running or paused) run, so readers
    of the store can tell a run whose process was killed from one that is working (store.liveness)."""

    def __init__(self) -> None:
        self._runs: weakref.WeakSet[Run] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs.add(run)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="nasbench-heartbeat", daemon=True)
                self._thread.start()

    def discard(self, run: Run) -> None:
        with self._lock:
            self._runs.discard(run)

    def _loop(self) -> None:
        while True:
            time.sleep(store_mod.HEARTBEAT_S)
            with self._lock:
                runs = list(self._runs)
            for run in runs:
                try:
                    run.store.beat([run.run_id])
                except Exception:  # noqa: BLE001 - a missed beat is not worth killing the thread
                    pass


_HEARTBEAT = _Heartbeat()


class _hybridmethod:
    """``Run.resume(path)`` on the class restores a run; ``run.resume()`` un-pauses one."""

    def __init__(self, on_class, on_instance):
        self.on_class, self.on_instance = on_class, on_instance
        functools.update_wrapper(self, on_instance)

    def __get__(self, obj, cls):
        if obj is None:
            return functools.partial(self.on_class, cls)
        return functools.partial(self.on_instance, obj)


class RunFailed(RuntimeError):
    """Raised by :meth:`Run.result` when the job raised inside the thread."""


class Run:
    """Execute ``job`` in a background thread.

    Controls: ``start()``, ``pause()``, ``resume()``, ``step(n)``, ``stop()``; ``status``,
    ``error``/``traceback``; ``events`` (read with ``events.since(seq)``); ``result()`` waits and
    re-raises a failure. Metrics and snapshots go to ``store`` (pass ``store=False`` for none);
    checkpoints every ``checkpoint_every`` steps and at stop/finish go to
    ``<workspace>/checkpoints/<run_id>/last.pt``.
    """

    def __init__(self, job: Job, store: RunStore | None | bool = None, name: str | None = None,
                 checkpoint_every: int | None = None, snapshot_every: int | None = None,
                 flush_every_s: float = 0.5, run_id: str | None = None,
                 checkpoint_dir: str | os.PathLike | None = None) -> None:
        if not isinstance(job, Job):
            raise TypeError(f"Run(job): expected a nasbench_lab Job (Trainer, search experiment...), got {type(job).__name__}")
        self.job = job
        self.store: RunStore | None = RunStore() if store is None or store is True else (store or None)
        self.events = EventLog()
        total = max(1, job.total_steps)
        self.checkpoint_every = checkpoint_every if checkpoint_every is not None else max(50, total // 5)
        self.snapshot_every = snapshot_every if snapshot_every is not None else max(1, total // 100)
        self.flush_every_s = flush_every_s
        self.status = "created"
        self.error: BaseException | None = None
        self.traceback: str | None = None
        self.summary: dict[str, Any] | None = None
        self._cond = threading.Condition()
        self._paused = False
        self._stop = False
        self._target: int | None = None
        self._thread: threading.Thread | None = None
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._last_flush = time.monotonic()
        self._ckpt_requested = False

        if run_id is not None:
            V.run_id(run_id)  # it names <checkpoints>/<run_id>/: never a path out of that folder
        for name_, every in (("checkpoint_every", checkpoint_every), ("snapshot_every", snapshot_every)):
            V.nonnegative_int(name_, every, example=50, none=True)
        V.number("flush_every_s", flush_every_s, min=0, example=0.5)
        cfg = {"job_class": job_class_path(job), **job.config()}
        if self.store is not None:
            rec = None
            if run_id is not None:
                try:
                    rec = self.store.run(run_id)
                except KeyError:
                    pass
            if rec is not None:
                _check_same_job(rec, cfg, job, f"run {run_id!r} in {self.store.path}")
            self.run_id = run_id if rec is not None else self.store.create_run(
                cfg, kind=job.kind, name=name, total_steps=job.total_steps, run_id=run_id)
        else:
            self.run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + f"{id(self):x}"[-6:]
        self.name = name or self.run_id
        root = Path(checkpoint_dir) if checkpoint_dir is not None else config.workspace() / "checkpoints"
        self.checkpoint_path = root / self.run_id / "last.pt"
        self._claimed = False
        job.bind(self._emit)

    # ------------------------------------------------------------------ controls
    def start(self) -> Run:
        """Start the thread (running freely until the job is done, or paused/stopped)."""
        release_idle_team()  # the caller's idle OpenMP team would slow every op of the run's thread
        with self._cond:
            if self._thread is not None:
                if self.status == "paused":
                    self._paused = False
                    self._target = None
                    self._cond.notify_all()
                return self
            self._thread = threading.Thread(target=self._loop, name=f"nasbench-run-{self.run_id}", daemon=True)
            self._set_status("running")
            self._thread.start()
        return self

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def _resume(self) -> Run:
        release_idle_team()
        with self._cond:
            self._paused = False
            self._target = None
            self._cond.notify_all()
        if self._thread is None:
            self.start()
        return self

    def step(self, n: int = 1, wait: bool = True, timeout: float | None = None) -> Run:
        """Advance exactly ``n`` steps, then pause (``wait`` blocks until they are done)."""
        if int(n) < 1:
            raise ValueError(f"Run.step(n): n must be a positive number of steps, got {n!r}")
        release_idle_team()
        with self._cond:
            self._target = self.job.step_count + int(n)
            self._paused = False
            self._cond.notify_all()
        if self._thread is None:
            with self._cond:
                self._thread = threading.Thread(target=self._loop, name=f"nasbench-run-{self.run_id}", daemon=True)
                self._set_status("running")
                self._thread.start()
        if wait:
            target = self._target
            with self._cond:
                self._cond.wait_for(lambda: self.job.step_count >= target or self.status in ("finished", "failed", "stopped"),
                                    timeout)
        return self

    def stop(self, wait: bool = True, timeout: float | None = 60) -> None:
        """Stop after the current step; records and a final checkpoint are kept."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is None:
            self._set_status("stopped")
        elif wait:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> str:
        """Wait until the run is finished, failed or stopped (not merely paused); return the status."""
        with self._cond:
            self._cond.wait_for(lambda: self.status in ("finished", "failed", "stopped"), timeout)
        return self.status

    def result(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait for the end; return the job's summary or re-raise its failure."""
        self.wait(timeout)
        if self.error is not None:
            raise RunFailed(f"run {self.run_id} failed:\n{self.traceback}") from self.error
        return self.summary

    def checkpoint(self) -> Path:
        """Write a checkpoint now (from the thread at the next step boundary if it is running)."""
        if self._thread is not None and self._thread.is_alive() and self.status == "running":
            with self._cond:
                self._ckpt_requested = True
                self._cond.wait_for(lambda: not self._ckpt_requested or self.status != "running", 60)
            return self.checkpoint_path
        return self._write_checkpoint()

    @property
    def progress(self) -> tuple[int, int]:
        return self.job.step_count, self.job.total_steps

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ restore
    @classmethod
    def _restore(cls, path_or_id: str | os.PathLike, store: RunStore | None | bool = None, **kwargs: Any) -> Run:
        """Rebuild a run from its checkpoint (a path, or a run id in the store) and continue it.

        The checkpoint must belong to the run asked for: resuming run B from a file that run A
        wrote (e.g. A's ``last.pt`` copied over B's) is refused, as is a checkpoint whose job class,
        space, method or dataset differ from the store's record of that run.
        """
        if not isinstance(path_or_id, str | os.PathLike) or not str(path_or_id):
            raise ValueError(f"Run.resume: expected a checkpoint path or a run id, got {path_or_id!r}")
        st = RunStore() if store is None or store is True else (store or None)
        path = Path(path_or_id)
        wanted: str | None = None  # the run id asked for, when resuming by id
        allow_unsigned = bool(kwargs.pop("allow_unsigned", False))  # checkpoint.load's opt-in, passed on
        if not path.exists() or path.is_dir():  # a FIFO or a device is read, and refused, as a file
            rec = None
            if st is not None and isinstance(path_or_id, str) and V._ID.fullmatch(path_or_id):
                try:
                    rec = st.run(path_or_id)
                except KeyError:
                    rec = None
            if rec is None:
                where = f"a run id in {st.path}" if st is not None else "a run id (no store given)"
                raise FileNotFoundError(f"Run.resume: {str(path_or_id)!r} is neither a checkpoint file nor {where}; "
                                        "pass Run.checkpoint_path or an id listed by `nasbench-lab runs`")
            wanted = rec["id"]
            if not rec.get("checkpoint"):
                raise FileNotFoundError(f"Run.resume: run {wanted!r} ({rec['status']}) has no checkpoint yet; it "
                                        "cannot be resumed (start it again instead)")
            path = Path(rec["checkpoint"])
        data = ckpt.load(path, allow_unsigned=allow_unsigned)
        run_id = data.get("run_id")
        try:
            V.run_id(run_id, name=f"checkpoint {path}: run_id")
        except ValueError as exc:
            raise ValueError(f"{exc}; the file is refused") from None
        if wanted is not None and run_id != wanted:
            raise ValueError(f"Run.resume: checkpoint {path} belongs to run {run_id!r}, not to run {wanted!r}; "
                             "refusing to resume the wrong run")
        folder = path.parent.name
        if path.name == "last.pt" and folder != run_id and V._ID.fullmatch(folder) and st is not None:
            try:
                st.run(folder)
                raise ValueError(f"Run.resume: {path} sits in the folder of run {folder!r} but was written by run "
                                 f"{run_id!r}; refusing to resume the wrong run (copy it elsewhere to resume {run_id!r})")
            except KeyError:
                pass
        for key in ("job_class", "config", "job", "rng"):
            if key not in data:
                raise ValueError(f"checkpoint {path} lacks {key!r}; it is not a run checkpoint")
        job_cls = load_job_class(data["job_class"])
        if not isinstance(data["config"], dict):
            raise ValueError(f"checkpoint {path}: config is a {type(data['config']).__name__}, expected a dict")
        if st is not None:
            try:
                rec = st.run(run_id)
            except KeyError:
                rec = None
            if rec is not None:
                _check_same_job(rec, {"job_class": data["job_class"], **data["config"]}, None,
                                f"checkpoint {path} vs the record of run {run_id!r} in {st.path}")
        job = job_cls.from_config(data["config"])
        ckpt.check_step(path, data, job.total_steps)  # a negative step or one past the total is refused
        expect = job.meta()
        for key, want in expect.items():
            if data.get("meta", {}).get(key) != want:
                raise ValueError(f"checkpoint {path}: {key}={data.get('meta', {}).get(key)!r} does not match the job ({want!r})")
        job.load_state_dict(data["job"])
        ckpt.set_rng_state(data["rng"])
        run = cls(job, store=st if st is not None else False, run_id=run_id,
                  checkpoint_dir=path.parent.parent, **kwargs)
        run.checkpoint_path = path
        run._set_status("paused")
        return run

    resume = _hybridmethod(_restore.__func__, _resume)

    # ------------------------------------------------------------------ internals
    def _emit(self, kind: str, step: int | None = None, **data: Any) -> None:
        self.events.append(kind, step, **data)
        if kind == "snapshot" and self.store is not None:
            self.store.log_snapshot(self.run_id, step or 0, data.get("name", "sampler"), data.get("data"))

    def _set_status(self, status: str, **extra: Any) -> None:
        # Record first, then wake waiters: whoever waits on the status finds the store up to date.
        if self.store is not None:
            if status in store_mod.LIVE_STATUSES and not self._claimed:
                self.store.claim(self.run_id)  # this process owns the run now (pid, host, heartbeat)
                self._claimed = True
            self.store.update_run(self.run_id, status=status, step=self.job.step_count, **extra)
            if status in store_mod.LIVE_STATUSES:
                _HEARTBEAT.add(self)
            else:
                _HEARTBEAT.discard(self)
        self.events.append("status", self.job.step_count, status=status, **{k: v for k, v in extra.items() if k != "summary"})
        with self._cond:
            self.status = status
            self._cond.notify_all()

    def _flush(self, force: bool = False) -> None:
        if self.store is None or not self._pending:
            return
        if force or time.monotonic() - self._last_flush >= self.flush_every_s:
            rows, self._pending = self._pending, []
            self.store.log_metrics(self.run_id, rows)
            self._last_flush = time.monotonic()

    def _write_checkpoint(self) -> Path:
        payload = {"job_class": job_class_path(self.job), "config": self.job.config(), "meta": self.job.meta(),
                   "job": self.job.state_dict(), "run_id": self.run_id, "step": self.job.step_count}
        path = ckpt.save(self.checkpoint_path, payload)
        if self.store is not None:
            self.store.update_run(self.run_id, checkpoint=str(path))
        self.events.append("checkpoint", self.job.step_count, path=str(path))
        return path

    def _snapshot(self) -> None:
        snap = self.job.snapshot()
        if snap is not None:
            self._emit("snapshot", self.job.step_count, name="sampler", data=snap)

    def _loop(self) -> None:
        job = self.job
        try:
            while True:
                with self._cond:
                    while not self._stop and (self._paused or (self._target is not None and job.step_count >= self._target)):
                        if self.status != "paused":
                            self._flush(force=True)
                            self._set_status("paused")
                        self._cond.wait()
                    if self._stop:
                        break
                    if self.status != "running":
                        self._set_status("running")
                if job.done:
                    break
                metrics = job.step()
                step = job.step_count
                self.events.append("step", step, **metrics)
                self._pending.append((step, metrics))
                self._flush()
                if step % self.snapshot_every == 0:
                    self._snapshot()
                if self._ckpt_requested or (self.checkpoint_every and step % self.checkpoint_every == 0):
                    self._flush(force=True)
                    self._write_checkpoint()
                    with self._cond:
                        self._ckpt_requested = False
                        self._cond.notify_all()
                with self._cond:
                    self._cond.notify_all()
            self._flush(force=True)
            if job.done and not self._stop:
                self._snapshot()
                # The trained state is saved before finish() (the final ranking can fail or be
                # killed): a failed finish leaves a checkpoint at the last step to resume from.
                self._write_checkpoint()
                self.summary = job.finish()
                self._write_checkpoint()
                self._set_status("finished", summary=self.summary)
            else:
                self._write_checkpoint()
                self._set_status("stopped")
        except BaseException as exc:  # the thread must never die silently
            self.error = exc
            self.traceback = tb.format_exc()
            try:
                self._flush(force=True)
            except Exception:  # noqa: BLE001 - the original failure is what matters
                pass
            self.events.append("error", job.step_count, error=f"{type(exc).__name__}: {exc}", traceback=self.traceback)
            self._set_status("failed", error=self.traceback)
        finally:
            with self._cond:
                self._ckpt_requested = False
                self._cond.notify_all()

    def __repr__(self) -> str:
        step, total = self.progress
        return f"<Run {self.run_id} {type(self.job).__name__} {self.status} {step}/{total}>"


#: the parts of a run's config that say which run it is (a job of another kind, space, method or
#: dataset is another run)
IDENTITY_KEYS = ("job_class", "space", "space_name", "method", "dataset")


def _check_same_job(rec: dict[str, Any], cfg: dict[str, Any], job: Job | None, what: str) -> None:
    have = rec.get("config") or {}
    diff = [f"{k}: {have.get(k)!r} vs {cfg.get(k)!r}" for k in IDENTITY_KEYS
            if k in have and k in cfg and have.get(k) != cfg.get(k)]
    if job is not None and rec.get("kind") and rec["kind"] != job.kind:
        diff.append(f"kind: {rec['kind']!r} vs {job.kind!r}")
    if diff:
        raise ValueError(f"{what}: the recorded job and this one differ ({'; '.join(diff)}); refusing to mix "
                         "two runs (use another run id)")
