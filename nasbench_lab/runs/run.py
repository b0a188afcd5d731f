"""Run: a Job in a background thread, with controls, an event log, a store and checkpoints."""

from __future__ import annotations

import functools
import gc
import json
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
from nasbench_lab.runs.store import RunExists, RunOwned, RunReadOnly, RunStore

#: recorded statuses; readers also report "interrupted" for a live-marked run whose process died
STATUSES = ("created", "running", "paused", "finished", "failed", "stopped")
#: statuses after which the run's thread does no more work (the lease is given back)
TERMINAL = ("finished", "failed", "stopped")


class _Heartbeat:
    """One daemon thread per process that beats for every run whose lease this process holds, so
    readers of the store can tell a run whose process was killed from one that is working
    (store.liveness), and that frees the leases of Run objects that were dropped."""

    def __init__(self) -> None:
        self._runs: weakref.WeakSet[Run] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._releases: list[tuple[str, str, str]] = []

    def _ensure(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="nasbench-heartbeat", daemon=True)
            self._thread.start()

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs.add(run)
            self._ensure()

    def discard(self, run: Run) -> None:
        with self._lock:
            self._runs.discard(run)

    def release_later(self, path: str, run_id: str, owner: str) -> None:
        """Free a dropped Run object's lease from this thread (called by its finalizer, which may
        run inside any store transaction of any thread, so it writes nothing itself)."""
        if not store_mod.holds(owner):
            return  # given back already (the run ended)
        store_mod.drop(owner)  # judged dead in this process at once
        with self._lock:
            self._releases.append((path, run_id, owner))
            self._ensure()

    def _loop(self) -> None:
        while True:
            time.sleep(store_mod.HEARTBEAT_S)
            with self._lock:
                runs = list(self._runs)
                releases, self._releases = self._releases, []
            for run in runs:
                try:
                    run.store.beat([run.run_id], owner=run._owner)
                except Exception:  # noqa: BLE001 - a missed beat is not worth killing the thread
                    pass
            for path, run_id, owner in releases:
                try:
                    store_mod.release_lease(path, run_id, owner)
                except Exception:  # noqa: BLE001 - the lease then expires like a dead process's
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


def _lease_dropped(path: str, run_id: str, owner: str) -> None:
    _HEARTBEAT.release_later(path, run_id, owner)


#: the Run objects of this process by lease token (to name the one that holds a run)
_BY_OWNER: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()


def _in_this_process(call, *args):
    """``call(*args)``; when another Run object of this process holds the run, collect dropped
    objects (a notebook cell run again leaves one; it lets go when collected) and try once more,
    then name the holder and how to let go of it."""
    try:
        return call(*args)
    except RunOwned as exc:
        if not exc.this_process:
            raise
    gc.collect()
    try:
        return call(*args)
    except RunOwned as exc:
        holder = _BY_OWNER.get(exc.holder.get("owner") or "")
        if not exc.this_process or holder is None:
            raise
        raise RunOwned(f"{exc} It is {holder!r} of this process: call its stop() to let go of the run.",
                       exc.holder) from None


def _check_free(store: RunStore, run_id: str, owner: str | None = None) -> None:
    """RunOwned (naming the writer) while another live writer holds the run."""
    _in_this_process(store.check_free, run_id, owner)


class Run:
    """Execute ``job`` in a background thread.

    Controls: ``start()``, ``pause()``, ``resume()``, ``step(n)``, ``stop()``; ``status``,
    ``error``/``traceback``; ``events`` (read with ``events.since(seq)``); ``result()`` waits and
    re-raises a failure. Metrics and snapshots go to ``store`` (pass ``store=False`` for none);
    checkpoints every ``checkpoint_every`` steps and at stop/finish go to
    ``<workspace>/checkpoints/<run_id>/last.pt``.

    Ownership (see :mod:`nasbench_lab.runs.store`): a Run with a store holds its run's lease from
    construction until the run ends (finished, failed, stopped) or the object is dropped; every
    store write names that lease. ``run_id`` of a run already in the store continues it only when
    nobody else is writing it (:class:`RunOwned` names the writer), it is not finished, and the
    job is the same one (same config) at a step it has reached (else :class:`RunExists`).
    ``notice`` says, in words, when a dead writer's lease was taken over.
    """

    def __init__(self, job: Job, store: RunStore | None | bool = None, name: str | None = None,
                 checkpoint_every: int | None = None, snapshot_every: int | None = None,
                 flush_every_s: float = 0.5, run_id: str | None = None,
                 checkpoint_dir: str | os.PathLike | None = None, *, _restoring: bool = False,
                 _read_only: bool = False) -> None:
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
        #: a finished run opened by Run.resume to inspect it: nothing of it is written again
        self.read_only = bool(_read_only)
        #: what the run's opening did that the caller should know (a lease taken over, read-only)
        self.notice: str | None = None
        self._owner = store_mod.new_owner()  # this object's lease token
        _BY_OWNER[self._owner] = self
        self._held = False
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
        if self.store is not None and self.read_only:
            self.run_id = str(run_id)
        elif self.store is not None:
            if run_id is None:
                self.run_id = self.store.create_run(cfg, kind=job.kind, name=name, total_steps=job.total_steps,
                                                    owner=self._owner)
                self._held = True
            else:
                self.run_id = run_id
                self._create_or_continue(cfg, name, check=not _restoring)
        else:
            self.run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + f"{id(self):x}"[-6:]
        self.name = name or self.run_id
        root = Path(checkpoint_dir) if checkpoint_dir is not None else config.workspace() / "checkpoints"
        self.checkpoint_path = root / self.run_id / "last.pt"
        if self._held:
            _HEARTBEAT.add(self)
        if self.store is not None and not self.read_only:
            # a dropped Run object gives its lease back (the heartbeat thread writes it)
            weakref.finalize(self, _lease_dropped, str(self.store.path), self.run_id, self._owner).atexit = False
        job.bind(self._emit)

    def _create_or_continue(self, cfg: dict[str, Any], name: str | None, check: bool) -> None:
        """Create run ``self.run_id``, or continue the recorded one if this job may write it."""
        try:
            self.store.create_run(cfg, kind=self.job.kind, name=name, total_steps=self.job.total_steps,
                                  run_id=self.run_id, owner=self._owner)
            self._held = True
            return
        except RunExists:
            pass
        rid, where = self.run_id, f"run {self.run_id!r} in {self.store.path}"
        if check:  # Run(job, run_id=...) by hand; Run.resume made its own checks against the checkpoint
            self._check_free()  # the writer, if there is one, is named first
            rec = self.store.run(rid)
            if rec["recorded_status"] == "finished":
                raise RunExists(f"{where} is finished; a run id is created once and a finished run is never written "
                                f"again: use another run id (Run.resume({rid!r}) opens it read-only)")
            _check_same_job(rec, cfg, self.job, where)
            have = json.loads(store_mod.dumps(cfg))
            diff = [f"{k}: {rec['config'].get(k)!r} vs {have.get(k)!r}" for k in sorted(set(have) | set(rec["config"]))
                    if rec["config"].get(k) != have.get(k)]
            if diff:
                raise RunExists(f"{where} was recorded for another job ({'; '.join(diff[:6])}); a run id belongs to one "
                                "job: use another run id")
            done = int(rec.get("step") or 0)
            if self.job.step_count == 0 and done > 0:
                raise RunExists(f"{where} already has {done} steps and this job starts at step 0, which would rewrite "
                                f"them: continue it with Run.resume({rid!r}) (it restores the job's state), or use "
                                "another run id")
        self._claim()

    def _check_free(self) -> None:
        _check_free(self.store, self.run_id, self._owner)

    def _claim(self) -> None:
        """Take the run's lease (refused while another live writer holds it); say so if a dead one's was taken."""
        took = _in_this_process(self.store.claim, self.run_id, self._owner)
        self._held = True
        _HEARTBEAT.add(self)
        if took:
            pid, host, beat = took.get("pid"), took.get("host"), took.get("heartbeat")
            gone = ("its process is gone" if host == store_mod.HOST else
                    f"no heartbeat for over {store_mod.STALE_S:.0f} s")
            self.notice = (f"run {self.run_id!r}: took over the lease of {store_mod.describe_holder(pid, host, beat)} "
                           f"(recorded {took.get('status')}; {gone}); this process writes the run now")
            self.events.append("lease", self.job.step_count, message=self.notice, pid=pid, host=host)

    def _release(self) -> None:
        """Give the lease back (memory first, so a failing store cannot keep it held here)."""
        if not self._held:
            return
        self._held = False
        _HEARTBEAT.discard(self)
        store_mod.drop(self._owner)
        if self.store is not None:
            try:
                self.store.release(self.run_id, self._owner)
            except Exception:  # noqa: BLE001 - the lease of a writer that let go expires on its own
                pass

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise RunReadOnly(f"Run.{what}: {self.notice or f'run {self.run_id!r} was opened read-only'}")

    # ------------------------------------------------------------------ controls
    def _ensure_thread(self) -> None:
        # called with self._cond held: two callers cannot both start a thread
        if self._thread is None:
            self._set_status("running")  # claims the lease again after a stop; may refuse: no thread then
            self._thread = threading.Thread(target=self._loop, name=f"nasbench-run-{self.run_id}", daemon=True)
            self._thread.start()

    def start(self) -> Run:
        """Start the thread (running freely until the job is done, or paused/stopped)."""
        self._writable("start()")
        release_idle_team()  # the caller's idle OpenMP team would slow every op of the run's thread
        with self._cond:
            if self._thread is not None:
                # run freely from here (also when the thread has reached a step() target but not yet
                # recorded "paused": checking the status here would leave it paused for good)
                if self.status not in TERMINAL:
                    self._paused = False
                    self._target = None
                    self._cond.notify_all()
                return self
            self._ensure_thread()
        return self

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def _resume(self) -> Run:
        self._writable("resume()")
        release_idle_team()
        with self._cond:
            self._paused = False
            self._target = None
            self._cond.notify_all()
        if self._thread is None:
            self.start()
        return self

    def step(self, n: int = 1, wait: bool = True, timeout: float | None = None) -> Run:
        """Advance exactly ``n`` more steps, then pause (``wait`` blocks until they are done).

        Requests add up: steps asked for and not yet done are kept, so four concurrent
        ``step(5)`` calls advance 20 steps."""
        if not V.is_int(n):
            raise TypeError(f"Run.step(n): n is a whole number of steps (an int), got {type(n).__name__} {n!r} "
                            "(e.g. run.step(5))")
        if n < 1:
            raise ValueError(f"Run.step(n): n must be a positive number of steps, got {n!r} (e.g. run.step(5))")
        self._writable("step()")
        release_idle_team()
        with self._cond:
            done = self.job.step_count
            target = (max(self._target, done) if self._target is not None else done) + int(n)
            self._ensure_thread()
            self._target = target
            self._paused = False
            self._cond.notify_all()
        if wait:
            with self._cond:
                self._cond.wait_for(lambda: self.job.step_count >= target or self.status in TERMINAL, timeout)
        return self

    def stop(self, wait: bool = True, timeout: float | None = 60) -> None:
        """Stop after the current step; records and a final checkpoint are kept."""
        if self.read_only:
            return
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is None:
            if self.status not in TERMINAL:
                self._set_status("stopped")
        elif wait:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> str:
        """Wait until the run is finished, failed or stopped (not merely paused); return the status."""
        with self._cond:
            self._cond.wait_for(lambda: self.status in TERMINAL, timeout)
        return self.status

    def result(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait for the end; return the job's summary or re-raise its failure."""
        self.wait(timeout)
        if self.error is not None:
            raise RunFailed(f"run {self.run_id} failed:\n{self.traceback}") from self.error
        return self.summary

    def checkpoint(self) -> Path:
        """Write a checkpoint now (from the thread at the next step boundary if it is running).

        A finished run recorded in a store is not written again: its final checkpoint is returned."""
        if self.read_only or (self.status == "finished" and self.store is not None):
            if self.checkpoint_path.is_file():
                return self.checkpoint_path
            self._writable("checkpoint()")
            raise RunReadOnly(f"Run.checkpoint(): run {self.run_id!r} is finished and has no checkpoint file at "
                              f"{self.checkpoint_path}; a finished run is not written again")
        if self._thread is not None and self._thread.is_alive() and self.status == "running":
            with self._cond:
                self._ckpt_requested = True
                self._cond.wait_for(lambda: not self._ckpt_requested or self.status != "running", 60)
            return self.checkpoint_path
        if self.store is not None and not self._held:  # an ended run: hold the lease for this one write
            self._claim()
            try:
                return self._write_checkpoint()
            finally:
                self._release()
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
        space, method or dataset differ from the store's record of that run. A checkpoint path read
        from the store is followed only inside the workspace or the store's folder.

        Ownership: a run another live writer is working on is refused (:class:`RunOwned`, naming
        it); the lease of a dead writer (its process gone, or no heartbeat for ``STALE_S`` seconds
        from another host) is taken over, and ``notice`` says so. A finished run opens read-only
        (``read_only``, status ``finished``; nothing is written, its controls raise
        :class:`RunReadOnly`).
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
            if rec["recorded_status"] != "finished":
                _check_free(st, wanted)  # before anything is loaded: name the writer that is still at work
            if not rec.get("checkpoint"):
                raise FileNotFoundError(f"Run.resume: run {wanted!r} ({rec['status']}) has no checkpoint yet; it "
                                        "cannot be resumed (start it again instead)")
            path = st.checkpoint_file(rec["checkpoint"])
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
        rec = None
        if st is not None:
            try:
                rec = st.run(run_id)
            except KeyError:
                rec = None
            if rec is not None:
                _check_same_job(rec, {"job_class": data["job_class"], **data["config"]}, None,
                                f"checkpoint {path} vs the record of run {run_id!r} in {st.path}")
        finished = rec is not None and rec["recorded_status"] == "finished"
        if rec is not None and not finished:
            _check_free(st, run_id)
        job = job_cls.from_config(data["config"])
        ckpt.check_step(path, data, job.total_steps)  # a negative step or one past the total is refused
        expect = job.meta()
        for key, want in expect.items():
            if data.get("meta", {}).get(key) != want:
                raise ValueError(f"checkpoint {path}: {key}={data.get('meta', {}).get(key)!r} does not match the job ({want!r})")
        job.load_state_dict(data["job"])
        if finished:  # opened to inspect: the process's random state is left alone too
            run = cls(job, store=st, run_id=run_id, checkpoint_dir=path.parent.parent, _read_only=True, **kwargs)
            run.checkpoint_path = path
            run.status, run.summary = "finished", rec.get("summary")
            run.notice = (f"run {run_id!r} is finished, so it was opened read-only (to inspect its job state, summary "
                          "and records); a finished run is never written again: start a new run to train more")
            return run
        ckpt.set_rng_state(data["rng"])
        run = cls(job, store=st if st is not None else False, run_id=run_id,
                  checkpoint_dir=path.parent.parent, _restoring=True, **kwargs)
        run.checkpoint_path = path
        run._set_status("paused")
        return run

    resume = _hybridmethod(_restore.__func__, _resume)

    # ------------------------------------------------------------------ internals
    def _emit(self, kind: str, step: int | None = None, **data: Any) -> None:
        self.events.append(kind, step, **data)
        if kind == "snapshot" and self.store is not None and not self.read_only:
            self.store.log_snapshot(self.run_id, step or 0, data.get("name", "sampler"), data.get("data"),
                                    owner=self._owner)
        elif (kind == "ranking" and data.get("table") and not data.get("periodic") and self.store is not None
              and not self.read_only):
            # the final ranking table, so a run browser can draw its scatter after the kernel is gone
            self.store.log_snapshot(self.run_id, step or 0, "ranking",
                                    {"table": data["table"], "summary": data.get("summary")}, owner=self._owner)

    def _set_status(self, status: str, **extra: Any) -> None:
        """Record the status, then wake waiters (whoever waits on it finds the store up to date).

        It never fails for ``failed``: the error handler calls it, and a store that cannot record
        the failure (locked, full, read-only, the lease lost) must not leave the run "running"
        forever; the in-memory status ends failed and the traceback says what the store said."""
        if self.store is not None and not self.read_only:
            try:
                if status in store_mod.LIVE_STATUSES and not self._held:
                    self._claim()  # a run started again after a stop writes under a fresh lease
                self.store.update_run(self.run_id, owner=self._owner, release=status in TERMINAL, status=status,
                                      step=self.job.step_count, **extra)
            except Exception as exc:
                if status != "failed":
                    raise
                note = f"\n(the run store could not record this failure: {type(exc).__name__}: {exc})"
                self.traceback = (self.traceback or "") + note
            finally:
                if status in TERMINAL:
                    self._release()
        self.events.append("status", self.job.step_count, status=status, **{k: v for k, v in extra.items() if k != "summary"})
        with self._cond:
            self.status = status
            self._cond.notify_all()

    def _flush(self, force: bool = False) -> None:
        if self.store is None or not self._pending:
            return
        if force or time.monotonic() - self._last_flush >= self.flush_every_s:
            rows, self._pending = self._pending, []
            self.store.log_metrics(self.run_id, rows, owner=self._owner)
            self._last_flush = time.monotonic()

    def _write_checkpoint(self) -> Path:
        if self.store is not None:
            # the lease is checked before the file is replaced: a writer that lost it (taken over
            # after it was judged dead) leaves the new writer's checkpoint alone
            self.store.check_free(self.run_id, self._owner)
            if not self._held:
                raise RunOwned(f"run {self.run_id!r}: this Run object no longer holds the run's lease; the checkpoint "
                               "was not written")
        payload = {"job_class": job_class_path(self.job), "config": self.job.config(), "meta": self.job.meta(),
                   "job": self.job.state_dict(), "run_id": self.run_id, "step": self.job.step_count}
        path = ckpt.save(self.checkpoint_path, payload)
        if self.store is not None:
            self.store.update_run(self.run_id, owner=self._owner, checkpoint=str(path))
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
            # nothing in here may raise: a handler that fails leaves the run "running" forever
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
        ro = " (read-only)" if self.read_only else ""
        return f"<Run {self.run_id} {type(self.job).__name__} {self.status}{ro} {step}/{total}>"


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
