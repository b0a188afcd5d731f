"""Run, EventLog, RunStore and checkpoints on a small real job (a seeded random walk)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from nasbench_lab.runs import EventLog, Job, Run, RunFailed, RunStore
from nasbench_lab.runs import checkpoint as ckpt


class Walk(Job):
    """A seeded random walk: enough state (an RNG and a position) to test resume exactly."""

    kind = "walk"

    def __init__(self, steps: int = 50, seed: int = 0, fail_at: int | None = None, delay: float = 0.0):
        self.total_steps = steps
        self.seed = seed
        self.fail_at = fail_at
        self.delay = delay
        self.rng = np.random.default_rng(seed)
        self.pos = 0.0

    def step(self):
        if self.fail_at is not None and self.step_count + 1 == self.fail_at:
            raise RuntimeError(f"boom at step {self.fail_at}")
        if self.delay:
            time.sleep(self.delay)
        self.pos += float(self.rng.normal())
        self.step_count += 1
        return {"pos": self.pos, "label": "x"}

    def config(self):
        return {"steps": self.total_steps, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(config["steps"], config["seed"])

    def meta(self):
        return {"kind": "walk"}

    def state_dict(self):
        return {**super().state_dict(), "rng": self.rng.bit_generator.state, "pos": self.pos}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.rng.bit_generator.state = state["rng"]
        self.pos = state["pos"]

    def snapshot(self):
        return {"pos": self.pos}

    def finish(self):
        return {"final": self.pos}


def test_event_log_since_and_bound():
    log = EventLog(max_events=5)
    for i in range(8):
        log.append("step", i, v=i)
    assert log.last_seq == 8
    assert [e.seq for e in log.since(5)] == [6, 7, 8]
    assert [e.seq for e in log.since(0)] == [4, 5, 6, 7, 8]  # oldest three dropped
    assert log.last("step").data == {"v": 7}


def test_event_log_concurrent_appends_keep_unique_sequence():
    log = EventLog()

    def worker():
        for _ in range(500):
            log.append("x")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [e.seq for e in log.since(0)]
    assert seqs == list(range(1, 2001))


def test_run_to_completion_records_metrics_and_summary(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run(Walk(40), store=store, checkpoint_every=10, snapshot_every=5)
    summary = run.start().result(timeout=30)
    assert run.status == "finished"
    ref = np.cumsum(np.random.default_rng(0).normal(size=40))
    assert summary["final"] == pytest.approx(ref[-1])
    m = store.metrics(run.run_id)
    assert list(m.index) == list(range(1, 41))
    assert np.allclose(m["pos"].to_numpy(), ref)
    rec = store.run(run.run_id)
    assert rec["status"] == "finished" and rec["step"] == 40 and rec["summary"]["final"] == pytest.approx(ref[-1])
    assert len(store.snapshots(run.run_id, "sampler")) >= 8
    steps = run.events.since(0, kinds="step")
    assert [e.step for e in steps] == list(range(1, 41))
    assert store.runs().iloc[0]["id"] == run.run_id


def test_step_pause_resume_and_stop(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run(Walk(10_000, delay=0.001), store=store)
    run.step(7)
    assert run.job.step_count == 7
    time.sleep(0.05)
    assert run.status == "paused" and run.job.step_count == 7
    run.resume()
    time.sleep(0.1)
    run.pause()
    time.sleep(0.05)
    frozen = run.job.step_count
    assert frozen > 7 and run.status == "paused"
    time.sleep(0.05)
    assert run.job.step_count == frozen
    run.stop()
    assert run.status == "stopped"
    # stopping loses no step: every step the job made is in the store, and a checkpoint exists
    assert store.metrics(run.run_id).index.max() == run.job.step_count
    assert run.checkpoint_path.is_file()


def test_failure_is_recorded_and_reraised(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run = Run(Walk(50, fail_at=13), store=store)
    run.start()
    with pytest.raises(RunFailed, match="boom at step 13"):
        run.result(timeout=30)
    assert run.status == "failed"
    rec = store.run(run.run_id)
    assert rec["status"] == "failed" and "RuntimeError: boom at step 13" in rec["error"]
    assert store.metrics(run.run_id).index.max() == 12  # the 12 good steps are kept
    assert run.events.last("error").data["error"] == "RuntimeError: boom at step 13"


def test_resume_continues_the_same_trajectory(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    full = Run(Walk(30, seed=3), store=store)
    full.start().result(timeout=30)
    ref = store.metrics(full.run_id)["pos"].to_numpy()

    part = Run(Walk(30, seed=3), store=store)
    part.step(11)
    part.stop()
    resumed = Run.resume(part.checkpoint_path, store=store)
    assert resumed.run_id == part.run_id and resumed.job.step_count == 11
    resumed.start().result(timeout=30)
    got = store.metrics(part.run_id)["pos"].to_numpy()
    assert np.allclose(got, ref)
    # resuming by run id through the store works too
    again = Run.resume(part.run_id, store=store)
    assert again.job.step_count == 30


def test_bad_checkpoints_give_clear_errors_and_keep_the_previous_one(tmp_path):
    path = tmp_path / "c" / "last.pt"
    ckpt.save(path, {"job": {"a": 1}})
    good = path.read_bytes()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ckpt.load(tmp_path / "nope.pt")
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ckpt.load(trunc)
    with pytest.raises(ValueError, match="space='nb201'"):
        ckpt.save(tmp_path / "s.pt", {"meta": {"space": "nb201"}})
        ckpt.load(tmp_path / "s.pt", expect={"space": "pooling"})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(ValueError, match=r"checkpoint\.job: .*Unpicklable is not plain data"):
        ckpt.save(path, {"job": Unpicklable()})  # refused before anything is written
    assert path.read_bytes() == good  # the failed write left the old checkpoint intact
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # and no temp file behind


def test_killed_process_leaves_committed_steps_readable(tmp_path):
    db = tmp_path / "runs.sqlite"
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_runs import Walk
        from nasbench_lab.runs import Run, RunStore
        run = Run(Walk(100000, delay=0.002), store=RunStore({str(db)!r}), flush_every_s=0.05)
        run.start()
        while True:
            time.sleep(0.05)
            if RunStore({str(db)!r}).metrics(run.run_id).shape[0] > 20:
                os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60, env={**os.environ})
    assert proc.returncode == -9
    store = RunStore(db)
    runs = store.runs()
    # the file still says "running"; readers see that its process is gone (see test_trust.py)
    assert len(runs) == 1 and runs.iloc[0]["recorded_status"] == "running"
    assert runs.iloc[0]["status"] == "interrupted"
    m = store.metrics(runs.iloc[0]["id"])
    assert m.shape[0] > 20
    assert list(m.index) == list(range(1, m.shape[0] + 1))  # a gap-free prefix of the steps


def test_a_forked_child_opens_its_own_connection_and_the_store_stays_whole(tmp_path):
    """SQLite forbids carrying a connection across fork(); a child that used (or closed) its
    parent's corrupted a WAL store once. The child gets a connection of its own, and the parent's
    and the child's writes both land in an intact file."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    store = RunStore(tmp_path / "r.sqlite")
    parent_run = store.create_run({"who": "parent"}, kind="test")
    store.log_metrics(parent_run, [(1, {"loss": 1.0})])
    parent_con = store._conn()
    pid = os.fork()
    if pid == 0:  # the child: write through the same RunStore object, then close it
        code = 1
        try:
            if store._conn() is not parent_con:
                child_run = store.create_run({"who": "child"}, kind="test")
                store.log_metrics(child_run, [(s, {"loss": float(s)}) for s in range(50)])
                store.close()
                code = 0
        finally:
            os._exit(code)
    for s in range(2, 50):  # the parent keeps writing meanwhile
        store.log_metrics(parent_run, [(s, {"loss": 1.0 / s})])
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.log_metrics(parent_run, [(50, {"loss": 0.02})])
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    whos = sorted(json.loads(c)["who"] for (c,) in con.execute("SELECT config FROM runs"))
    assert whos == ["child", "parent"]
    assert len(store.metrics(parent_run)) == 50


def test_a_second_store_object_keeps_the_wal_of_the_first_alive(tmp_path):
    """Opening the same store twice in one process must not drop the first connection's locks: a
    plain open()/close() of the database file does (POSIX), after which another process's close
    takes the database for unused and deletes the WAL the first connection still writes to. This
    corrupted a real store here (two reproduce processes and a notebook)."""
    path = tmp_path / "runs.sqlite"
    first = RunStore(path)
    rid = first.create_run({"x": 1}, kind="test")
    first.log_metrics(rid, [(1, {"loss": 1.0})])
    wal = tmp_path / "runs.sqlite-wal"
    assert wal.exists()
    RunStore(path)  # a second store object in this process (the CLI, a Run, a resume make one each)
    other = f"import sqlite3; c = sqlite3.connect({str(path)!r}); c.execute('SELECT count(*) FROM runs').fetchone(); c.close()"
    subprocess.run([sys.executable, "-c", other], check=True, timeout=120)
    assert wal.exists()  # the other process saw this one alive
    first.log_metrics(rid, [(2, {"loss": 0.5})])
    assert len(first.metrics(rid)) == 2
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
