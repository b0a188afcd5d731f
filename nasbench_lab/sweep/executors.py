"""Executors: where a sweep's tasks run. One interface, three places.

- :class:`InProcess`: one task at a time in this process (today's behaviour, the default);
- :class:`ProcessPool`: N worker processes of this machine (``--workers N``);
- :class:`RayExecutor`: a Ray cluster (a local one, or ``--ray-address``), one Ray generator task
  per run with its CPUs/GPUs reserved.

Every executor hands the driver the same messages (:mod:`~nasbench_lab.sweep.worker`) as
``(key, attempt, kind, payload)``, plus ``crash`` when the process running a task died (the
driver retries it from its last checkpoint). Executors never touch the run store.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from nasbench_lab.sweep.spec import RAY_MISSING, ExecutorConfig, Task
from nasbench_lab.sweep.worker import run_task

Item = tuple[str, int, str, Any]


class Executor:
    """Base: ``capacity`` tasks at once; ``submit``; ``poll`` returns the messages that came."""

    capacity: int = 1

    def start(self) -> None:
        """Get ready (start processes, connect to Ray)."""

    def submit(self, task: Task, attempt: int, resume: bytes | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def poll(self, timeout: float) -> list[Item]:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        """Cancel what runs and let go of processes (the driver keeps what finished)."""


class InProcess(Executor):
    """One task at a time, in this process: each poll advances it by one message."""

    def __init__(self, cfg: ExecutorConfig) -> None:
        self.cfg = cfg
        self._current: tuple[str, int, Iterator[Any]] | None = None

    def submit(self, task: Task, attempt: int, resume: bytes | None) -> None:
        assert self._current is None, "InProcess runs one task at a time"
        self._current = (task.key, attempt, run_task(task, attempt, resume, self.cfg.threads))

    def poll(self, timeout: float) -> list[Item]:
        if self._current is None:
            return []
        key, attempt, gen = self._current
        try:
            kind, payload = next(gen)
        except StopIteration:  # pragma: no cover - run_task always ends with result or error
            self._current = None
            return []
        if kind in ("result", "error"):
            gen.close()
            self._current = None
        return [(key, attempt, kind, payload)]

    def stop(self) -> None:
        if self._current is not None:
            self._current[2].close()
            self._current = None


def _pool_worker(conn: Connection, threads: int | None) -> None:
    """A pool process: run the tasks it is sent, one at a time, sending every message back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops the pool
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or 1))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        task, attempt, resume = job
        for kind, payload in run_task(task, attempt, resume, threads):
            conn.send((task.key, attempt, kind, payload))  # synchronous: a later crash loses nothing sent


class ProcessPool(Executor):
    """``workers`` long-lived processes; a process that dies mid-task is reported as ``crash``
    and replaced. A script that uses it needs the ``if __name__ == "__main__":`` guard (the
    workers import the main module, as with any multiprocessing start method but fork)."""

    def __init__(self, cfg: ExecutorConfig) -> None:
        self.cfg = cfg
        self.capacity = cfg.workers
        # forkserver: workers fork from a clean single-threaded server that imported torch and the
        # engine once (spawn would import them again in every worker; fork would copy this
        # process's threads' locks)
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["torch", "nasbench_lab.sweep.worker", "nasbench_lab.training"])
        self._slots: list[dict[str, Any]] = []

    def _spawn(self) -> dict[str, Any]:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_pool_worker, args=(child, self.cfg.threads), daemon=True,
                                 name="nasbench-sweep-worker")
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "busy": None}

    def start(self) -> None:
        self._slots = [self._spawn() for _ in range(self.capacity)]

    def submit(self, task: Task, attempt: int, resume: bytes | None) -> None:
        slot = next(s for s in self._slots if s["busy"] is None)
        slot["busy"] = (task.key, attempt)
        slot["conn"].send((task, attempt, resume))

    def poll(self, timeout: float) -> list[Item]:
        out: list[Item] = []
        conns = {id(s["conn"]): s for s in self._slots if s["busy"] is not None}
        if not conns:
            return out
        for conn in wait([s["conn"] for s in conns.values()], timeout=timeout):
            slot = conns[id(conn)]
            while slot["busy"] is not None:
                try:
                    if not conn.poll():
                        break
                    item = conn.recv()
                except (EOFError, OSError):
                    break  # the process died: reported below
                out.append(item)
                if item[2] in ("result", "error"):
                    slot["busy"] = None
        for i, slot in enumerate(self._slots):
            if slot["busy"] is not None and not slot["proc"].is_alive():
                key, attempt = slot["busy"]
                code = slot["proc"].exitcode
                out.append((key, attempt, "crash", f"worker process {slot['proc'].pid} died (exit code {code})"))
                slot["conn"].close()
                self._slots[i] = self._spawn()
        return out

    def stop(self) -> None:
        for slot in self._slots:
            try:
                if slot["busy"] is None:
                    slot["conn"].send(None)
            except (OSError, BrokenPipeError):
                pass
        for slot in self._slots:
            if slot["busy"] is not None:
                slot["proc"].terminate()
            slot["proc"].join(timeout=10)
            if slot["proc"].is_alive():
                slot["proc"].kill()
            slot["conn"].close()
        self._slots = []


def _ray_task(task: Task, attempt: int, resume: bytes | None, threads: int | None) -> Iterator[tuple[str, Any]]:
    """The Ray generator task: every message is streamed to the driver as soon as it is yielded."""
    yield from run_task(task, attempt, resume, threads)


class RayExecutor(Executor):
    """Ray: ``ray.init`` on this machine (no dashboard) or joining ``ray_address``; each task a
    generator task with ``num_cpus=cpus_per_run``, ``num_gpus=gpus_per_run`` and no Ray-level
    retry (the driver retries from the checkpoint instead of from scratch)."""

    def __init__(self, cfg: ExecutorConfig) -> None:
        self.cfg = cfg
        self.capacity = 1
        self._q: queue.Queue[Item] = queue.Queue()
        self._running: dict[tuple[str, int], Any] = {}
        self._started_ray = False

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError(f"--executor ray: {RAY_MISSING}") from None
        if not ray.is_initialized():
            opts: dict[str, Any] = {"include_dashboard": False, "configure_logging": False, **self.cfg.ray_init}
            if self.cfg.ray_address is not None:
                opts["address"] = self.cfg.ray_address
            try:
                ray.init(**opts)
            except Exception as exc:  # noqa: BLE001 - Ray raises bare Exceptions on a failed start
                ray.shutdown()
                where = f"the Ray cluster at {self.cfg.ray_address}" if self.cfg.ray_address else "a local Ray"
                raise RuntimeError(f"--executor ray: {where} did not start or answer ({type(exc).__name__}: "
                                   f"{str(exc)[:300]}); on a heavily loaded machine Ray's start-up deadlines can "
                                   "pass: retry, or start it once with `ray start --head` and pass --ray-address "
                                   "HOST:6379") from exc
            self._started_ray = True
        self._remote = ray.remote(_ray_task).options(num_returns="streaming", max_retries=0,
                                                     num_cpus=self.cfg.cpus, num_gpus=self.cfg.gpus_per_run)
        cpus = ray.cluster_resources().get("CPU", 1.0)
        gpus = ray.cluster_resources().get("GPU", 0.0)
        fit = int(cpus // self.cfg.cpus)
        if self.cfg.gpus_per_run:
            fit = min(fit, int(gpus // self.cfg.gpus_per_run + 1e-9))
            if fit < 1:
                raise RuntimeError(f"--gpus-per-run {self.cfg.gpus_per_run:g}: the Ray cluster has {gpus:g} GPU(s); "
                                   "no run fits (use --gpus-per-run 0 or join a cluster with GPUs)")
        self.capacity = max(1, fit)

    def _follow(self, key: str, attempt: int, gen: Any) -> None:
        import ray

        try:
            for ref in gen:
                kind, payload = ray.get(ref)
                self._q.put((key, attempt, kind, payload))
        except Exception as exc:  # noqa: BLE001 - the worker died or Ray lost the task: retried from the checkpoint
            self._q.put((key, attempt, "crash", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))

    def submit(self, task: Task, attempt: int, resume: bytes | None) -> None:
        gen = self._remote.remote(task, attempt, resume, self.cfg.threads)
        self._running[(task.key, attempt)] = gen
        threading.Thread(target=self._follow, args=(task.key, attempt, gen), daemon=True,
                         name=f"nasbench-sweep-{task.key}").start()

    def poll(self, timeout: float) -> list[Item]:
        out: list[Item] = []
        try:
            out.append(self._q.get(timeout=timeout))
            while True:
                out.append(self._q.get_nowait())
        except queue.Empty:
            pass
        for key, attempt, kind, _ in out:
            if kind in ("result", "error", "crash"):
                self._running.pop((key, attempt), None)
        return out

    def stop(self) -> None:
        import ray

        for gen in list(self._running.values()):
            try:
                ray.cancel(gen, force=True)
            except Exception:  # noqa: BLE001 - it may have ended meanwhile
                pass
        self._running.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def make(cfg: ExecutorConfig) -> Executor:
    if cfg.kind == "ray":
        return RayExecutor(cfg)
    return InProcess(cfg) if cfg.workers == 1 else ProcessPool(cfg)
