"""The sweep driver: queue tasks on an executor, record what comes back, retry, resume, stop.

The driver is the only writer of the run store (DESIGN.md "Sweep"): workers stream messages
(:mod:`~nasbench_lab.sweep.worker`) and the driver turns them into run rows, metrics, checkpoint
files and statuses under its own lease (:mod:`~nasbench_lab.runs.store`, one token for the
whole sweep, with heartbeats), so ``RunBrowser`` shows a sweep's runs live like any other run.

Faults:

- a worker that dies (``crash``: killed, out of memory, a lost node) is retried, up to
  ``max_retries`` times, from its last checkpoint, which the driver wrote from the checkpoint
  bytes the worker streamed (or from scratch when it had none yet);
- a task that raises is recorded ``failed`` with its traceback, and the sweep goes on;
- a run already ``finished`` in the store with a sweep result is read back, not run again (an
  interrupted sweep continues where it stopped); a stopped or crashed one continues from its
  checkpoint;
- Ctrl-C (KeyboardInterrupt) cancels the running tasks, marks them ``stopped`` (their
  checkpoints stay) and re-raises; what finished is kept (``results``).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_lab import config
from nasbench_lab.runs import store as store_mod
from nasbench_lab.runs.store import RunStore
from nasbench_lab.sweep import executors
from nasbench_lab.sweep.spec import ExecutorConfig, Task

#: what the views show, in order
STATES = ("queued", "running", "done", "failed", "stopped")


@dataclass
class TaskState:
    task: Task
    status: str = "queued"
    attempts: int = 0
    step: int = 0
    total: int | None = None
    result: Any = None
    error: str | None = None
    retries: list[str] = field(default_factory=list)
    checkpoint: Path | None = None
    recorded: bool = False  # the driver holds this run's row (created or claimed)
    read_only: bool = False  # finished in the store before: nothing is written again
    started: float | None = None
    ended: float | None = None
    resumed_from: int = 0

    @property
    def run_id(self) -> str:
        return self.task.run_id or self.task.key


class Sweep:
    """Run ``tasks`` on ``executor`` and collect one result per task.

    ``store``: the run store (default the workspace's; ``False``: record nothing).
    ``checkpoint_dir``: where the driver writes the checkpoints workers stream back (default
    ``<workspace>/checkpoints``, the folder ``Run`` uses: ``<dir>/<run_id>/last.pt``).
    ``on_result(task, result)``: called in the driver as each result arrives (e.g. append it to
    a file), so an interrupted sweep has everything that finished on disk.
    ``resume``: read back runs finished in the store and continue stopped ones from their
    checkpoint (default); ``False`` raises when a run id is already in the store.

    ``run()`` blocks; ``start()`` runs it in a background thread for a live view
    (:meth:`table` is safe to call meanwhile), ``stop()`` ends it like Ctrl-C.
    """

    def __init__(self, tasks: Sequence[Task], executor: ExecutorConfig | str = "local", *,
                 store: RunStore | bool | None = None, name: str = "sweep", max_retries: int = 2,
                 checkpoint_dir: str | os.PathLike | None = None, resume: bool = True,
                 on_result: Callable[[Task, Any], None] | None = None, progress: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        tasks = list(tasks)
        if not tasks or not all(isinstance(t, Task) for t in tasks):
            raise ValueError(f"tasks: expected a non-empty list of sweep Tasks, got {tasks[:3]!r}")
        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"tasks: duplicate keys {dup[:5]}; every run of a sweep needs its own key")
        self.cfg = executor if isinstance(executor, ExecutorConfig) else ExecutorConfig(kind=executor)
        if int(max_retries) < 0:
            raise ValueError(f"max_retries: expected an integer >= 0, got {max_retries!r} (e.g. 2)")
        self.name = name
        self.max_retries = int(max_retries)
        self.store: RunStore | None = RunStore() if store is None or store is True else (store or None)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else config.workspace() / "checkpoints"
        self.resume = resume
        self.on_result = on_result
        self.progress = progress
        self.log = log or (lambda _msg: None)
        self.states: dict[str, TaskState] = {t.key: TaskState(t) for t in tasks}
        self.interrupted = False
        self.started: float | None = None
        self.ended: float | None = None
        self.startup_s: float | None = None  # the executor's start (Ray's start-up, shown apart)
        self._owner = store_mod.new_owner()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        #: bumped at every change (a view redraws when it moved)
        self.version = 0

    # ------------------------------------------------------------------ reading (any thread)
    def table(self) -> pd.DataFrame:
        """One row per run: status, attempts, progress, error, and the result's scalar fields."""
        with self._lock:
            rows = []
            for st in self.states.values():
                row = {"key": st.task.key, "name": st.task.label, "run_id": st.run_id if st.task.records else None,
                       "status": st.status, "attempts": st.attempts, "step": st.step, "total": st.total,
                       "seconds": round((st.ended or time.time()) - st.started, 1) if st.started else None,
                       "error": (st.error or "").strip().splitlines()[-1] if st.error else None}
                if isinstance(st.result, dict):
                    row.update({k: v for k, v in st.result.items()
                                if not k.startswith("_") and isinstance(v, int | float | str | bool | type(None))
                                and k not in row})
                rows.append(row)
        return pd.DataFrame(rows)

    def counts(self) -> dict[str, int]:
        with self._lock:
            out = dict.fromkeys(STATES, 0)
            for st in self.states.values():
                out[st.status] += 1
            return out

    @property
    def results(self) -> dict[str, Any]:
        """Results by task key, in task order (the tasks that finished)."""
        with self._lock:
            return {k: st.result for k, st in self.states.items() if st.status == "done"}

    @property
    def failed(self) -> dict[str, str]:
        with self._lock:
            return {k: st.error or "" for k, st in self.states.items() if st.status in ("failed", "stopped")}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ control
    def start(self) -> Sweep:
        """Run in a background thread (for notebooks: the view follows :meth:`table`)."""
        if self._thread is not None:
            raise RuntimeError("this sweep was started already; make a new Sweep to run it again")

        def body() -> None:
            try:
                self.run()
            except KeyboardInterrupt:
                pass
            except BaseException as exc:  # noqa: BLE001 - kept for the caller (wait() re-raises)
                self.error = exc

        self._thread = threading.Thread(target=body, name=f"nasbench-sweep-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like Ctrl-C: running tasks are cancelled and marked stopped; what finished stays."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> Sweep:
        if self._thread is not None:
            self._thread.join(timeout)
            if self.error is not None:
                raise self.error
        return self

    def run(self) -> dict[str, Any]:
        """Run every task not finished yet; returns :attr:`results`. Failed runs are in
        :attr:`failed` (with their tracebacks in :meth:`table`/the store); KeyboardInterrupt is
        re-raised after the running tasks are stopped and recorded."""
        self.started = time.time()
        self._read_back()
        todo = [st for st in self.states.values() if st.status == "queued"]
        if not todo:
            self.ended = time.time()
            return self.results
        t0 = time.perf_counter()
        ex = executors.make(self.cfg)
        ex.start()
        self.startup_s = time.perf_counter() - t0
        self.log(f"{self.name}: {len(todo)} runs on {self.cfg.describe()} "
                 f"({len(self.states) - len(todo)} finished before)")
        from nasbench_lab.progress import progress as tqdm

        bar = tqdm(total=len(self.states), initial=len(self.states) - len(todo), desc=self.name, unit="run",
                   disable=not self.progress, leave=False)
        pending = list(todo)
        running: set[str] = set()
        last_beat = 0.0
        try:
            while pending or running:
                if self._stop.is_set():
                    raise KeyboardInterrupt
                while pending and len(running) < ex.capacity:
                    st = pending.pop(0)
                    self._submit(ex, st)
                    running.add(st.task.key)
                for key, attempt, kind, payload in ex.poll(0.2):
                    st = self.states[key]
                    if attempt != st.attempts - 1 or st.status != "running":
                        continue  # a message of an attempt given up on
                    self._on_message(st, kind, payload)
                    if st.status == "queued":  # a crash to retry
                        running.discard(key)
                        pending.insert(0, st)
                    elif st.status != "running":
                        running.discard(key)
                        bar.update(1)
                if self.store is not None and time.monotonic() - last_beat > store_mod.HEARTBEAT_S:
                    ids = [self.states[k].run_id for k in running if self.states[k].recorded]
                    if ids:
                        self.store.beat(ids, owner=self._owner)
                    last_beat = time.monotonic()
        except KeyboardInterrupt:
            self.interrupted = True
            ex.stop()
            for key in running:
                st = self.states[key]
                at = f"its checkpoint at step {st.step}" if st.checkpoint is not None else "the start"
                self._finish(st, "stopped", error=f"stopped (Ctrl-C or Sweep.stop()); running the sweep again "
                                                  f"continues it from {at}")
            done = sum(st.status == "done" for st in self.states.values())
            self.log(f"{self.name}: stopped; {done} of {len(self.states)} runs finished are kept")
            raise
        else:
            ex.stop()
        finally:
            bar.close()
            self.ended = time.time()
        return self.results

    # ------------------------------------------------------------------ internals
    def _bump(self) -> None:
        self.version += 1

    def _read_back(self) -> None:
        """Runs already in the store: finished with a result (done), or to continue from a checkpoint."""
        if self.store is None:
            return
        for st in self.states.values():
            if not st.task.records:
                continue
            try:
                rec = self.store.run(st.run_id)
            except KeyError:
                continue
            if not self.resume:
                raise ValueError(f"run {st.run_id!r} is already in {self.store.path}; resume=True continues the "
                                 "sweep (finished runs are read back), or give the sweep other keys")
            summary = rec.get("summary") if isinstance(rec.get("summary"), dict) else {}
            if rec.get("status") == "finished" and "sweep_result" in summary:
                st.status, st.result = "done", summary["sweep_result"]
                st.step = st.total = rec.get("total_steps") or rec.get("step") or 0
                continue
            if rec.get("status") == "finished":
                st.read_only = True  # trained, not judged (e.g. reproduce): finished again from its checkpoint
            ck = rec.get("checkpoint")
            if ck and Path(ck).is_file():
                st.checkpoint = Path(ck)
                st.step = int(rec.get("step") or 0)

    def _submit(self, ex: executors.Executor, st: TaskState) -> None:
        resume = st.checkpoint.read_bytes() if st.checkpoint is not None and st.checkpoint.is_file() else None
        with self._lock:
            st.status, st.started, st.ended = "running", st.started or time.time(), None
            st.attempts += 1
            if resume is not None:
                st.resumed_from = st.step
            self._bump()
        ex.submit(st.task, st.attempts - 1, resume)

    def _ensure_row(self, st: TaskState, kind: str, cfg: dict[str, Any], total: int | None) -> None:
        """The run's row under the driver's lease: created, or taken over (a resumed sweep)."""
        if self.store is None or not st.task.records or st.recorded or st.read_only:
            return
        try:
            rec = self.store.run(st.run_id)
        except KeyError:
            rec = None
        if rec is None:
            self.store.create_run(cfg, kind=kind, name=st.task.label, total_steps=total, run_id=st.run_id,
                                  owner=self._owner)
        else:
            self.store.claim(st.run_id, self._owner)
        st.recorded = True
        self.store.update_run(st.run_id, owner=self._owner, status="running", **({"total_steps": total} if total else {}))

    def _on_message(self, st: TaskState, kind: str, payload: Any) -> None:
        generic = {"sweep": self.name, "task": st.task.fn, "args": st.task.args}
        try:
            if kind == "start":
                return
            if kind == "record":
                with self._lock:
                    st.total = payload["total_steps"]
                self._ensure_row(st, payload["kind"], payload["config"], payload["total_steps"])
            elif kind == "progress":
                self._ensure_row(st, "sweep", generic, payload["total"])
                with self._lock:
                    st.step, st.total = payload["step"], payload["total"]
                    self._bump()
                if st.recorded and payload["rows"]:
                    self.store.log_metrics(st.run_id, payload["rows"], owner=self._owner)
            elif kind == "checkpoint":
                if st.read_only:
                    return  # a finished run's checkpoint is never written again
                path = self._write_checkpoint(st, payload["data"])
                with self._lock:
                    st.checkpoint = path
                if st.recorded:
                    self.store.update_run(st.run_id, owner=self._owner, checkpoint=str(path), step=payload["step"])
            elif kind == "result":
                self._ensure_row(st, "sweep", generic, st.total)
                if self.on_result is not None:
                    self.on_result(st.task, payload)
                self._finish(st, "done", result=payload)
            elif kind == "error":
                self._ensure_row(st, "sweep", generic, st.total)
                self.log(f"{st.task.label}: failed: {payload['error']}")
                self._finish(st, "failed", error=payload["traceback"])
            elif kind == "crash":
                note = f"attempt {st.attempts}: {payload}"
                with self._lock:
                    st.retries.append(note)
                if st.attempts <= self.max_retries:
                    at = f"its checkpoint at step {st.step}" if st.checkpoint is not None else "the start (no checkpoint yet)"
                    self.log(f"{st.task.label}: {note}; retrying from {at}")
                    with self._lock:
                        st.status = "queued"
                        self._bump()
                else:
                    self._ensure_row(st, "sweep", generic, st.total)
                    self._finish(st, "failed", error="\n".join(st.retries) + f"\ngave up after {st.attempts} attempts")
        except Exception:  # noqa: BLE001 - a failing record (or on_result) fails this run, not the sweep
            self._finish(st, "failed", error=traceback.format_exc())

    def _write_checkpoint(self, st: TaskState, data: bytes) -> Path:
        path = self.checkpoint_dir / st.run_id / "last.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: a crash mid-write leaves the previous checkpoint
        return path

    def _finish(self, st: TaskState, status: str, result: Any = None, error: str | None = None) -> None:
        with self._lock:
            st.status, st.ended = status, time.time()
            if result is not None:
                st.result = result
            if error is not None:
                st.error = error
            self._bump()
        if self.store is None or not st.recorded:
            return
        store_status = {"done": "finished"}.get(status, status)
        fields: dict[str, Any] = {"status": store_status, "step": st.step}
        if status == "done":
            fields["summary"] = {"sweep": self.name, "attempts": st.attempts, "retries": st.retries,
                                 "sweep_result": result}
        if error is not None:
            fields["error"] = error
        try:
            self.store.update_run(st.run_id, owner=self._owner, release=True, **fields)
        except Exception:  # noqa: BLE001 - the in-memory state is right; the store says why in its own error
            with self._lock:
                st.error = (st.error or "") + f"\n(the run store could not record this: {traceback.format_exc()})"
