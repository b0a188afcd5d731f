"""Runs have owners (issue 23, section 1) and run state that cannot be lost (section 3).

A run id is created once; one writer at a time holds its lease (pid, host, heartbeat and a token
per Run object); a second writer is refused with the owner named; a finished run opens
read-only; a dead writer's lease is taken over by resume. The races of several processes for one
run id are in test_fuzz.py."""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasbench_lab.runs import Run, RunExists, RunOwned, RunReadOnly, RunStore
from nasbench_lab.runs import checkpoint as ckpt
from nasbench_lab.runs import store as store_mod

sys.path.insert(0, os.path.dirname(__file__))
from test_runs import Walk  # noqa: E402  (a seeded random walk: exact trajectories)

HOST = socket.gethostname()


def walk(seed: int, n: int) -> np.ndarray:
    """The positions Walk(seed) visits in its first n steps."""
    return np.cumsum(np.random.default_rng(seed).normal(size=n))


def _edit(db: Path, sql: str, *args) -> None:
    """Change a row behind the store's back (what another host's process would have written)."""
    con = sqlite3.connect(db)
    with con:
        con.execute(sql, args)
    con.close()


# ============================================================================ a run id is created once
def test_create_run_never_replaces_an_existing_run(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    store.create_run({"seed": 1}, kind="walk", run_id="exp")
    store.log_metrics("exp", [(1, {"pos": 0.5}), (2, {"pos": 0.7})])
    store.update_run("exp", status="finished", summary={"final": 0.7}, checkpoint="ck/exp/last.pt")
    with pytest.raises(RunExists, match=r"run 'exp' already exists in .*s\.sqlite \(finished, step 2\)"):
        store.create_run({"seed": 2}, kind="walk", run_id="exp")
    rec = store.run("exp")
    assert rec["status"] == "finished" and rec["summary"] == {"final": 0.7} and rec["config"] == {"seed": 1}
    assert rec["checkpoint"] == "ck/exp/last.pt"
    assert store.metrics("exp")["pos"].tolist() == [0.5, 0.7]


def test_a_finished_run_id_is_not_started_again(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    Run(Walk(20, seed=1), store=store, run_id="exp", checkpoint_dir=tmp_path / "ck").start().result(timeout=30)
    before = store.metrics("exp")
    for seed in (2, 1):  # another seed (the old identity check let it through), or the same job again
        with pytest.raises(RunExists, match=r"run 'exp' in .* is finished; a run id is created once"):
            Run(Walk(20, seed=seed), store=store, run_id="exp", checkpoint_dir=tmp_path / "ck").start().result(timeout=30)
    pd.testing.assert_frame_equal(store.metrics("exp"), before)
    rec = store.run("exp")
    assert rec["status"] == "finished" and rec["summary"]["final"] == pytest.approx(walk(1, 20)[-1])
    assert np.allclose(store.metrics("exp")["pos"], walk(1, 20))


def test_an_existing_run_id_is_continued_only_by_its_own_job(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    first = Run(Walk(20, seed=1), store=store, run_id="exp", checkpoint_dir=tmp_path / "ck")
    first.step(6)
    first.stop()
    with pytest.raises(RunExists, match=r"recorded for another job \(seed: 1 vs 2\)"):
        Run(Walk(20, seed=2), store=store, run_id="exp", checkpoint_dir=tmp_path / "ck")
    with pytest.raises(RunExists, match=r"already has 6 steps and this job starts at step 0.*Run\.resume\('exp'\)"):
        Run(Walk(20, seed=1), store=store, run_id="exp", checkpoint_dir=tmp_path / "ck")
    # the same job at the step it reached continues it (what RunDashboard's resumed-run view does)
    job = Walk(20, seed=1)
    job.load_state_dict(ckpt.load(first.checkpoint_path)["job"])
    again = Run(job, store=store, run_id="exp", checkpoint_dir=tmp_path / "ck")
    again.start().result(timeout=30)
    assert np.allclose(store.metrics("exp")["pos"], walk(1, 20))


# ============================================================================ one writer at a time
def _owner_process(db: Path, ck: Path, run_id: str) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_runs import Walk
        from nasbench_lab.runs import Run, RunStore
        store = RunStore({str(db)!r})
        run = Run(Walk(100000, delay=0.002), store=store, run_id={run_id!r}, flush_every_s=0.05,
                  checkpoint_every=10, checkpoint_dir={str(ck)!r})
        run.start()
        while not run.checkpoint_path.exists() or store.metrics(run.run_id).shape[0] < 20:
            time.sleep(0.02)
        print("ready", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_writer_is_refused_naming_the_owner_and_a_dead_one_is_taken_over(tmp_path):
    db, ck = tmp_path / "s.sqlite", tmp_path / "ck"
    proc = _owner_process(db, ck, "shared")
    try:
        store = RunStore(db)
        owner = rf"owned by pid {proc.pid} on host {re.escape(repr(HOST))}, last heartbeat \d+ s ago"
        with pytest.raises(RunOwned, match=owner + ".*one writer at a time"):
            Run(Walk(100000), store=store, run_id="shared", checkpoint_dir=ck)
        with pytest.raises(RunOwned, match=owner):  # the old code took it: both processes wrote
            Run.resume("shared", store=store)
        with pytest.raises(RunOwned, match=owner):
            Run.resume(ck / "shared" / "last.pt", store=store)
        with pytest.raises(RunOwned, match=owner):  # a caller of the store itself is refused too
            store.log_metrics("shared", [(1, {"pos": 99.0})])
        with pytest.raises(RunOwned, match=owner):
            store.delete_run("shared")
        with pytest.raises(RunExists, match="already exists"):
            store.create_run({}, run_id="shared")
        rec = store.run("shared")
        assert rec["recorded_status"] == "running" and rec["pid"] == proc.pid and rec["status"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        proc.kill()
    n = store.metrics("shared").shape[0]
    assert np.allclose(store.metrics("shared")["pos"], walk(0, n))  # none of the owner's rows was replaced
    assert store.run("shared")["status"] == "interrupted"
    back = Run.resume("shared", store=store)  # its process is gone: the lease is taken over, and it says so
    assert re.search(rf"took over the lease of pid {proc.pid} on host .*its process is gone", back.notice)
    assert back.events.last("lease").data["pid"] == proc.pid
    rec = store.run("shared")
    assert rec["pid"] == os.getpid() and rec["recorded_status"] == "paused" and rec["status"] == "paused"
    start = back.job.step_count
    back.step(5)
    back.stop()
    assert np.allclose(store.metrics("shared")["pos"].to_numpy()[: start + 5], walk(0, start + 5))


def test_a_lease_held_on_another_host_is_taken_over_only_after_its_heartbeat_stops(tmp_path):
    db = tmp_path / "s.sqlite"
    store = RunStore(db)
    run = Run(Walk(30, seed=4), store=store, run_id="r", checkpoint_dir=tmp_path / "ck")
    run.step(4)
    run.stop()
    _edit(db, "UPDATE runs SET status='running', owner='elsewhere', pid=4242, host='gpu-node-7', heartbeat=?",
          time.time() - 3)
    with pytest.raises(RunOwned, match=r"owned by pid 4242 on host 'gpu-node-7', last heartbeat [34] s ago"):
        Run.resume("r", store=store)
    _edit(db, "UPDATE runs SET heartbeat=?", time.time() - store_mod.STALE_S - 5)
    assert store.run("r")["status"] == "interrupted"
    back = Run.resume("r", store=store)
    assert re.search(r"took over the lease of pid 4242 on host 'gpu-node-7'.*no heartbeat for over 60 s", back.notice)
    back.start().result(timeout=30)
    assert np.allclose(store.metrics("r")["pos"], walk(4, 30))
    assert store.run("r")["status"] == "finished"


def test_a_live_writer_of_a_version_before_leases_is_not_taken_over(tmp_path):
    """A process started before leases existed writes no owner token; while its pid lives and it
    beats, it owns the run (a second process once resumed such a run and trained it twice)."""
    db = tmp_path / "s.sqlite"
    store = RunStore(db)
    run = Run(Walk(30, seed=4), store=store, run_id="r", checkpoint_dir=tmp_path / "ck")
    run.step(4)
    run.stop()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _edit(db, "UPDATE runs SET status='running', owner=NULL, pid=?, host=?, heartbeat=?",
              other.pid, store_mod.HOST, time.time())
        assert store.run("r")["status"] == "running"
        with pytest.raises(RunOwned, match=f"owned by pid {other.pid}"):
            Run.resume("r", store=store)
    finally:
        other.kill()
        other.wait()
    assert store.run("r")["status"] == "interrupted"  # its process is gone: taken over
    Run.resume("r", store=store).start().result(timeout=30)
    assert store.run("r")["status"] == "finished"


def test_a_writer_whose_lease_was_taken_writes_nothing_more_and_fails_with_the_cause(tmp_path):
    db = tmp_path / "s.sqlite"
    store = RunStore(db)
    run = Run(Walk(100000, delay=0.001), store=store, run_id="r", flush_every_s=0, checkpoint_dir=tmp_path / "ck")
    run.step(3)
    # another host judged this process dead and took the run over (e.g. it was suspended for minutes)
    _edit(db, "UPDATE runs SET owner='newcomer', pid=7, host='node-2', heartbeat=?", time.time())
    run.step(3, timeout=30)
    assert run.wait(30) == "failed" and isinstance(run.error, RunOwned)
    assert "owned by pid 7 on host 'node-2'" in str(run.error)
    rec = store.run("r")
    assert rec["owner"] == "newcomer" and rec["host"] == "node-2" and rec["recorded_status"] == "paused"
    assert store.metrics("r").index.tolist() == [1, 2, 3]  # its later steps were refused, not written


def test_two_run_objects_of_one_process_do_not_share_a_run(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    first = Run(Walk(100, seed=1), store=store, run_id="r", checkpoint_dir=tmp_path / "ck")
    first.step(3)
    for attempt in (lambda: Run.resume("r", store=store),
                    lambda: Run(Walk(100, seed=1), store=store, run_id="r", checkpoint_dir=tmp_path / "ck")):
        with pytest.raises(RunOwned, match=rf"owned by pid {os.getpid()} .*\(this process: another Run object\).*"
                                           rf"It is <Run r Walk paused 3/100> of this process: call its stop\(\)"):
            attempt()
    first.stop()
    Run.resume("r", store=store).stop()  # stopped: its lease was given back
    # a Run object that is dropped before it ran (a notebook cell run again) lets go when collected
    dropped = Run(Walk(100, seed=1), store=store, run_id="q", checkpoint_dir=tmp_path / "ck")
    del dropped
    again = Run(Walk(100, seed=1), store=store, run_id="q", checkpoint_dir=tmp_path / "ck")
    assert "took over" in again.notice and "recorded created" in again.notice
    again.step(2)
    again.stop()
    assert np.allclose(store.metrics("q")["pos"], walk(1, 2))


# ============================================================================ a finished run is read-only
def test_resuming_a_finished_run_opens_it_read_only(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    run = Run(Walk(20, seed=3), store=store, checkpoint_dir=tmp_path / "ck")
    run.start().result(timeout=30)
    before = store.run(run.run_id)
    seen = Run.resume(run.run_id, store=store)
    assert seen.read_only and seen.status == "finished" and seen.job.step_count == 20
    assert seen.summary["final"] == pytest.approx(walk(3, 20)[-1])
    assert "opened read-only" in seen.notice and "read-only" in repr(seen)
    for act in (seen.start, lambda: seen.step(1), seen.resume):
        with pytest.raises(RunReadOnly, match="is finished, so it was opened read-only"):
            act()
    assert seen.checkpoint() == run.checkpoint_path  # the final one, not written again
    seen.stop()
    seen = None
    gc.collect()
    after = store.run(run.run_id)
    assert after["recorded_status"] == "finished" and after["status"] == "finished"  # never "paused"/"interrupted"
    assert {k: after[k] for k in ("updated", "pid", "step")} == {k: before[k] for k in ("updated", "pid", "step")}
    with pytest.raises(RunReadOnly, match="is finished: a finished run is never written again"):
        store.update_run(run.run_id, status="running")


# ============================================================================ section 3: run state
def test_a_store_that_fails_inside_the_error_handler_still_ends_the_run_failed(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "s.sqlite")
    run = Run(Walk(100000, delay=0.001), store=store, flush_every_s=0, checkpoint_dir=tmp_path / "ck")
    run.step(2)
    update_run = store.update_run

    def locked(*args, **kwargs):
        raise ValueError(f"run store {store.path}: another program holds a lock on it (database is locked)")

    def update_run_until_failed(run_id, **fields):  # the store locks up while the run is running
        return locked() if fields.get("status") == "failed" else update_run(run_id, **fields)

    monkeypatch.setattr(store, "log_metrics", locked)
    monkeypatch.setattr(store, "log_snapshot", locked)
    monkeypatch.setattr(store, "update_run", update_run_until_failed)
    run.resume()
    assert run.wait(20) == "failed"  # the old handler failed too, its thread died, and the run stayed "running"
    assert "database is locked" in str(run.error)
    assert "the run store could not record this failure: ValueError" in run.traceback
    assert run.events.last("error").data["error"].startswith("ValueError: run store")
    monkeypatch.undo()
    rec = store.run(run.run_id)  # the file holds what it could, and its readers see that nobody writes it
    assert rec["recorded_status"] == "running" and rec["status"] == "interrupted" and rec["owner"] is None


def test_an_in_memory_store_is_refused_at_the_boundary():
    # a run's thread has its own connection, and ':memory:' is private to one: the thread failed, and
    # so did its error handler, leaving the run "running" forever
    with pytest.raises(ValueError, match=r"':memory:' cannot hold runs.*store=False"):
        RunStore(":memory:")


@pytest.mark.parametrize("n", [2.5, "3", True, None, np.float64(2.0), 0, -1])
def test_step_takes_a_positive_whole_number(n):
    run = Run(Walk(10), store=False)
    with pytest.raises((TypeError, ValueError), match=r"Run\.step\(n\): n .*(whole number|positive)"):
        run.step(n)
    assert run.job.step_count == 0 and not run.alive
    run.step(np.int64(2))  # numpy integers are whole numbers
    assert run.job.step_count == 2


def test_concurrent_steps_add_up(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    run = Run(Walk(1000, delay=0.002), store=store, checkpoint_dir=tmp_path / "ck")
    go = threading.Barrier(4)

    def ask():
        go.wait()
        run.step(5, timeout=60)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    time.sleep(0.05)
    assert run.job.step_count == 20 and run.status == "paused"  # the old code: 5 (each call reset the target)
    run.stop()
    assert store.metrics(run.run_id).index.tolist() == list(range(1, 21))
    assert run.checkpoint_path.is_file()


def test_a_checkpoint_path_in_the_store_outside_the_workspace_is_not_followed(tmp_path, _workspace):
    db = tmp_path / "st" / "s.sqlite"
    store = RunStore(db)
    run = Run(Walk(30, seed=2), store=store)  # checkpoints in the workspace
    run.step(4)
    run.stop()
    outside = tmp_path / "elsewhere" / run.run_id / "last.pt"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(run.checkpoint_path.read_bytes())  # a real checkpoint of that run: only the place is wrong
    for planted in (str(outside), str(_workspace / ".." / "elsewhere" / run.run_id / "last.pt")):
        _edit(db, "UPDATE runs SET checkpoint=?", planted)
        with pytest.raises(ValueError, match=r"lies outside the workspace .* so it is not followed"):
            Run.resume(run.run_id, store=store)
        assert store.runs()["resume_from"].isna().all() and store.run(run.run_id)["resume_from"] is None
    back = Run.resume(outside, store=store)  # the user may name that file: then it is theirs to trust
    assert back.job.step_count == 4
    back.stop()
    # the store's own folder is followed (a store copied with its checkpoints beside it)
    beside = db.parent / "ck" / run.run_id / "last.pt"
    beside.parent.mkdir(parents=True)
    beside.write_bytes(run.checkpoint_path.read_bytes())
    _edit(db, "UPDATE runs SET checkpoint=?", str(beside))
    again = Run.resume(run.run_id, store=store)
    assert again.job.step_count == 4 and again.checkpoint_path == beside
    again.stop()


def test_a_foreign_sqlite_file_is_refused_before_anything_is_written_to_it(tmp_path):
    for name, sql in (("notes.sqlite", "CREATE TABLE notes (id INTEGER, text TEXT)"),
                      ("half.sqlite", "CREATE TABLE runs (x INTEGER)")):
        foreign = tmp_path / name
        con = sqlite3.connect(foreign)
        con.execute(sql)
        con.commit()
        con.close()
        before = foreign.read_bytes()
        with pytest.raises(ValueError, match=r"not a nasbench_lab run store; nothing was written to it"):
            RunStore(foreign)
        assert foreign.read_bytes() == before  # the old code added its tables and WAL mode first
        assert not Path(f"{foreign}-wal").exists()
        con = sqlite3.connect(foreign)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert len(con.execute("SELECT name FROM sqlite_master").fetchall()) == 1
        con.close()


def test_a_healthy_store_on_a_full_or_read_only_disk_says_what_the_os_said(tmp_path):
    db = tmp_path / "s.sqlite"
    store = RunStore(db)
    store.create_run({}, run_id="r")
    con = store._conn()
    con.execute(f"PRAGMA max_page_count={con.execute('PRAGMA page_count').fetchone()[0]}")  # a full disk, as SQLite sees it
    rows = [(i, {f"m{k}": float(i) for k in range(40)}) for i in range(1, 300)]
    with pytest.raises(ValueError) as full:
        store.log_metrics("r", rows)
    msg = str(full.value)
    assert f"run store {db}: the disk (or the file system holding it) is full" in msg and "SQLITE" not in msg
    assert "a damaged file" not in msg and "is it a nasbench_lab run store" not in msg
    store.close()
    store._local.con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # a read-only file system, as SQLite sees it
    with pytest.raises(ValueError) as ro:
        store.update_run("r", name="renamed")
    msg = str(ro.value)
    assert "is read-only (attempt to write a readonly database)" in msg and "a damaged file" not in msg
    assert store.run("r")["name"] == "r"  # reading it still works
