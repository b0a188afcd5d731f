"""The run store: one SQLite file (WAL mode) holding runs, per-step metrics and snapshots.

Each thread gets its own connection (sqlite3 connections are not shared across threads). Every
write is a committed transaction, so a killed process leaves every committed step readable.

Dead runs: a run records the process that owns it (``pid``, ``host``) and that process beats a
``heartbeat`` every :data:`HEARTBEAT_S` seconds while the run is live (running or paused). A
process killed by SIGTERM or ``kill -9`` cannot write "stopped", so readers judge it instead:
a run still marked running/paused whose owner is gone (same host: no such pid; any host: no
heartbeat for :data:`STALE_S` seconds) is reported as ``interrupted``, with ``resume_from`` the
checkpoint it can be resumed from (or None). The recorded status itself is left as it is.

Ownership (DESIGN.md, "Ownership"), the way trusted run stores do it: a run id is created once
(``create_run`` never replaces a row; MLflow never reuses a run id) and a run has one writer at a
time (Optuna's RDB storage: a trial has one owner and a state machine). The writer holds a lease:
the ``owner`` column (a token per Run object) with the ``pid``, ``host`` and ``heartbeat`` above.
Every write names its owner and is refused (:class:`RunOwned`) unless the row's lease is that
owner's, inside the same transaction, so no code path replaces another writer's rows. A lease
whose holder is dead (same host: no such pid, or a token this process no longer holds; any host:
no heartbeat for :data:`STALE_S` seconds) may be taken over by :meth:`RunStore.claim` (what
``Run.resume`` does). A finished run is never written again (:class:`RunReadOnly`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_lab import config
from nasbench_lab import validation as V

#: seconds between heartbeats of a live run's owning process
HEARTBEAT_S = 5.0
#: a live-marked run whose owner has not beaten for this long is reported interrupted
STALE_S = 60.0
#: recorded statuses that mean "some process is working on it"
LIVE_STATUSES = ("running", "paused")
HOST = socket.gethostname()


class RunOwned(RuntimeError):
    """Another writer holds the run's lease (the message names it: pid, host, last heartbeat).

    ``holder`` is a dict of the holder's ``pid``, ``host`` and ``heartbeat``; ``this_process``
    says whether it is another Run object of this very process."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}
        self.this_process = self.holder.get("host") == HOST and self.holder.get("pid") == os.getpid()


class RunExists(ValueError):
    """A run id already in the store was given for a new run or another job (ids are created once)."""


class RunReadOnly(RuntimeError):
    """A write to a finished run: a finished run is never written again (it opens read-only)."""


#: lease tokens held by Run objects of this process; a lease of this pid whose token is not here
#: belongs to a Run object that was dropped, so it is dead
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()


def new_owner() -> str:
    """A fresh lease token (one per Run object)."""
    return uuid.uuid4().hex


def _hold(owner: str | None) -> None:
    if owner:
        with _HELD_LOCK:
            _HELD.add(owner)


def holds(owner: str | None) -> bool:
    """Whether a Run object of this process holds the lease ``owner``."""
    return owner in _HELD


def drop(owner: str | None) -> None:
    """This process no longer holds ``owner``'s lease (in memory; the row is released separately)."""
    with _HELD_LOCK:
        _HELD.discard(owner)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    kind TEXT,
    config TEXT,
    status TEXT,
    created REAL,
    updated REAL,
    step INTEGER DEFAULT 0,
    total_steps INTEGER,
    error TEXT,
    checkpoint TEXT,
    summary TEXT,
    pid INTEGER,
    host TEXT,
    heartbeat REAL,
    owner TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT, step INTEGER, key TEXT, value REAL,
    PRIMARY KEY (run_id, step, key)
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT, step INTEGER, kind TEXT, data TEXT,
    PRIMARY KEY (run_id, step, kind)
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, step);
"""


def _jsonable(obj: Any) -> Any:
    """JSON default: numpy scalars/arrays, tensors, sets, objects with __str__ (architectures)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_jsonable)


#: columns added after the first release, with their SQL type (old stores are migrated on open)
_ADDED_COLUMNS = {"pid": "INTEGER", "host": "TEXT", "heartbeat": "REAL", "owner": "TEXT"}
_REQUIRED = {"runs": {"id", "name", "kind", "config", "status", "created", "updated", "step", "total_steps",
                      "error", "checkpoint", "summary"},
             "metrics": {"run_id", "step", "key", "value"}, "snapshots": {"run_id", "step", "kind", "data"}}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # someone else's process / nonsense pid
        return isinstance(pid, int) and 0 < pid < 2**31
    return True


def _is_pid(pid: Any) -> bool:
    return isinstance(pid, int) and not isinstance(pid, bool) and pid > 0


def owner_alive(owner: Any, pid: Any, host: Any, heartbeat: Any, now: float | None = None) -> bool:
    """Whether the writer holding a lease is alive.

    No token: nobody holds it. This process: the token must be held by one of its Run objects.
    Same host: the pid must exist. Any host: a heartbeat within :data:`STALE_S` seconds (Optuna's
    heartbeat rule: a running trial whose heartbeat is older than the grace period is dead).
    """
    if not isinstance(owner, str) or not owner:
        return False
    if host == HOST and _is_pid(pid):
        if pid == os.getpid():
            return owner in _HELD
        if not pid_alive(pid):
            return False
    now = time.time() if now is None else now
    return _finite(heartbeat) and now - float(heartbeat) <= STALE_S


_LEGACY = object()


def liveness(status: Any, pid: Any, host: Any, heartbeat: Any, updated: Any, now: float | None = None,
             owner: Any = _LEGACY) -> str:
    """The status to show: ``interrupted`` for a live-marked run whose owning process is gone.

    With ``owner`` (the lease token column) the lease decides (:func:`owner_alive`); without it
    (a caller that does not know the column) the pid, host and heartbeat do, as before leases.
    """
    if status not in LIVE_STATUSES:
        return str(status)
    if owner is not _LEGACY and owner:
        return str(status) if owner_alive(owner, pid, host, heartbeat, now) else "interrupted"
    # no token on a live-marked run: a writer of a version before leases; its pid and heartbeat decide
    # (never this process: it writes every live run under a token)
    if owner is not _LEGACY and host == HOST and pid == os.getpid():
        return "interrupted"
    now = time.time() if now is None else now
    if host == HOST and isinstance(pid, int) and pid > 0:
        if not pid_alive(pid):
            return "interrupted"
        if pid == os.getpid():
            return str(status)
    beat = heartbeat if isinstance(heartbeat, int | float) else updated  # rows older than heartbeats
    if not isinstance(beat, int | float) or now - beat > STALE_S:
        return "interrupted"
    return str(status)


def describe_holder(pid: Any, host: Any, heartbeat: Any, now: float | None = None) -> str:
    """``pid 123 on host 'gpu1' (last heartbeat 2 s ago)``: who holds a lease, in words."""
    now = time.time() if now is None else now
    who = f"pid {pid} on host {host!r}"
    if host == HOST and pid == os.getpid():
        who += " (this process: another Run object)"
    if _finite(heartbeat):
        who += f", last heartbeat {max(0.0, now - float(heartbeat)):.0f} s ago"
    return who


def release_lease(path: str | os.PathLike, run_id: str, owner: str) -> None:
    """Free a lease in the file through a short-lived connection (the heartbeat thread calls this
    for a Run object that was dropped: a finalizer must not write through a connection that may be
    in the middle of a transaction)."""
    con = sqlite3.connect(path, timeout=5)
    try:
        with con:
            con.execute("UPDATE runs SET owner=NULL WHERE id=? AND owner=?", (run_id, owner))
    finally:
        con.close()


#: what an sqlite error code says about the file system or the OS (not about the file's content):
#: these are reported as such, never as "a damaged file"
_OS_TROUBLE = {
    "SQLITE_READONLY": ("it cannot be written: the file, its folder or its disk is read-only",
                        "open a copy in a writable folder"),
    "SQLITE_FULL": ("the disk (or the file system holding it) is full", "free some space and retry"),
    "SQLITE_PERM": ("permission denied", "check the file's and its folder's permissions"),
    "SQLITE_AUTH": ("permission denied", "check the file's and its folder's permissions"),
    "SQLITE_CANTOPEN": ("the file cannot be opened (a missing or read-only folder, or no permission)",
                        "check that its folder exists and can be written"),
    "SQLITE_IOERR": ("the operating system reported an I/O error", "check the disk"),
    "SQLITE_BUSY": ("another program holds a lock on it", "close the other program (or wait) and retry"),
    "SQLITE_LOCKED": ("another connection holds a lock on it", "retry when it is done"),
    "SQLITE_NOMEM": ("out of memory", "free some memory and retry"),
}


def store_error(path: Path, exc: BaseException) -> ValueError:
    """An sqlite (or pandas-wrapped sqlite) error as a ValueError naming the store and the cause:
    what the OS said (read-only, disk full, permission, lock) for a healthy file, else that the
    file is not a run store or is damaged."""
    base = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ is not None else exc
    name = getattr(base, "sqlite_errorname", None) or ""
    for prefix, (what, todo) in _OS_TROUBLE.items():
        if name.startswith(prefix):
            return ValueError(f"run store {path}: {what} ({base}); {todo} (the store's content is not the problem)")
    return ValueError(f"run store {path}: {exc} (is it a nasbench_lab run store? a damaged file can be moved aside; "
                      "RunStore(path) then starts a new one)")


def _sqlite_errors(method):
    """sqlite (and pandas' wrapper of it) errors -> ValueError naming the store file."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            raise store_error(self.path, exc) from None
    return wrapper


#: connections a forked child inherited: never used nor closed in the child (see RunStore._conn)
_INHERITED: list[sqlite3.Connection] = []


class RunStore:
    """SQLite-backed record of runs. ``RunStore()`` uses ``<workspace>/runs.sqlite``.

    A path that is a folder, or a file that is not an SQLite database with the run store's tables,
    is a ValueError naming it; a foreign SQLite file is refused before anything is written to it
    (no table added, its journal mode left as it is). ``":memory:"`` is refused: a run's thread
    writes through its own connection, and an in-memory database is private to one connection.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        if path is not None and not isinstance(path, str | os.PathLike):
            raise ValueError(f"store: expected a file path such as 'runs.sqlite', got {path!r}")
        if path is not None and os.fspath(path) == ":memory:":
            raise ValueError("store: ':memory:' cannot hold runs: a run's thread writes through its own connection and "
                             "an in-memory SQLite database is private to the connection that made it; pass a file "
                             "(e.g. a temporary one: RunStore(tempfile.mkdtemp() + '/runs.sqlite')), or store=False "
                             "to keep no records")
        self.path = Path(path).expanduser() if path is not None else config.workspace() / "runs.sqlite"
        if self.path.is_dir():
            raise ValueError(f"store: {self.path} is a folder; expected an SQLite file such as "
                             f"{self.path / 'runs.sqlite'}")
        if self.path.exists() and not self.path.is_file():  # a FIFO or a device: never opened
            raise ValueError(f"store: {self.path} is not a regular file; expected an SQLite file such as runs.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._open()

    @_sqlite_errors
    def _check_foreign(self) -> None:
        """Refuse an existing database that is not a run store, before anything is written to it."""
        if not (self.path.exists() and self.path.stat().st_size):
            return
        # Asked through SQLite, never by open()ing the file: closing a plain descriptor drops every
        # POSIX lock this process holds on it, its live connections' included (sqlite.org/howtocorrupt.html
        # §2.2), and another process's next close then deletes the WAL still in use (it corrupted a store here).
        con = sqlite3.connect(self.path, timeout=30)  # no PRAGMA here: reading the schema writes nothing
        try:
            try:
                tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            except sqlite3.DatabaseError as exc:
                if "not a database" not in str(exc) and "encrypted" not in str(exc):
                    raise
                raise ValueError(f"store: {self.path} is not an SQLite database (a run store is one, e.g. "
                                 "runs.sqlite); pass another path") from None
            if tables and "runs" not in tables:
                raise ValueError(f"store: {self.path} is an SQLite database of another program (tables: "
                                 f"{', '.join(tables[:8])}{', ...' if len(tables) > 8 else ''}), not a nasbench_lab "
                                 "run store; nothing was written to it. Pass another path")
            for table, cols in _REQUIRED.items():
                if table in tables:
                    missing = cols - {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                    if missing:
                        raise ValueError(f"store: {self.path} has a table {table!r} without the column(s) "
                                         f"{sorted(missing)}: it is not a nasbench_lab run store; nothing was "
                                         "written to it")
        finally:
            con.close()

    @_sqlite_errors
    def _open(self) -> None:
        self._check_foreign()
        with self._conn() as con:
            con.executescript(_SCHEMA)
            have = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
            for col, kind in _ADDED_COLUMNS.items():
                if col not in have:
                    try:
                        con.execute(f"ALTER TABLE runs ADD COLUMN {col} {kind}")
                    except sqlite3.OperationalError as exc:  # another process migrated it first
                        if "duplicate column" not in str(exc):
                            raise
            for table, cols in _REQUIRED.items():
                missing = cols - {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                if missing:
                    raise ValueError(f"store: {self.path} has a table {table!r} without the column(s) "
                                     f"{sorted(missing)}: it is not a nasbench_lab run store")

    def _conn(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) != os.getpid():
            # a forked child inherited the parent's connection: SQLite forbids using it across fork,
            # and closing it here could checkpoint and delete the WAL the parent still writes to
            # (a corrupted store). Keep it referenced and unclosed; open a connection of our own.
            _INHERITED.append(con)
            con = None
        if con is None:
            con = sqlite3.connect(self.path, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
            self._local.pid = os.getpid()
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None and getattr(self._local, "pid", None) != os.getpid():
            _INHERITED.append(con)  # the parent's: closing it in a fork is what corrupts a WAL store
            self._local.con = None
        elif con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------ ownership
    def _lease_row(self, con: sqlite3.Connection, run_id: str) -> tuple[Any, ...]:
        row = con.execute("SELECT status, owner, pid, host, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r} in {self.path}")
        return row

    def _owned(self, run_id: str, pid: Any, host: Any, heartbeat: Any, now: float | None = None,
               owner: Any = None) -> RunOwned:
        return RunOwned(
            f"run {run_id!r} in {self.path} is owned by {describe_holder(pid, host, heartbeat, now)}; a run has one "
            f"writer at a time, so nothing was written. Stop it there, or use another run id. (A lease whose process "
            f"is gone - no such pid on this host, or no heartbeat for {STALE_S:.0f} s - is taken over by "
            f"Run.resume({run_id!r}).)", {"pid": pid, "host": host, "heartbeat": heartbeat, "owner": owner})

    def _finished(self, run_id: str) -> RunReadOnly:
        return RunReadOnly(f"run {run_id!r} in {self.path} is finished: a finished run is never written again "
                           f"(Run.resume({run_id!r}) opens it read-only); start a new run to train more")

    @_sqlite_errors
    def check_free(self, run_id: str, owner: str | None = None) -> None:
        """Raise :class:`RunOwned` (naming the holder) when a live writer other than ``owner`` holds the run."""
        row = self._conn().execute("SELECT owner, pid, host, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is not None and row[0] and row[0] != owner and owner_alive(*row):
            raise self._owned(run_id, *row[1:], owner=row[0])

    @_sqlite_errors
    def claim(self, run_id: str, owner: str) -> dict[str, Any] | None:
        """Take the run's lease for ``owner`` (a :func:`new_owner` token), atomically.

        Refused with :class:`RunOwned` while another live writer holds it and with
        :class:`RunReadOnly` for a finished run. Returns the previous writer (``pid``, ``host``,
        ``heartbeat``, ``status``) when a live-marked run or a dead writer's lease was taken over,
        else None.
        """
        if not isinstance(owner, str) or not owner:
            raise ValueError(f"claim: owner must be a lease token from new_owner(), got {owner!r}")
        now = time.time()
        con = self._conn()
        with con:
            con.execute("BEGIN IMMEDIATE")  # the write lock: two claimers cannot both see the lease free
            status, cur, pid, host, beat = self._lease_row(con, run_id)
            if status == "finished":
                raise self._finished(run_id)
            if cur and cur != owner and owner_alive(cur, pid, host, beat, now):
                raise self._owned(run_id, pid, host, beat, now, owner=cur)
            if not cur and status in LIVE_STATUSES and liveness(status, pid, host, beat, beat, now) in LIVE_STATUSES:
                # a live writer of a version before leases holds no token: it owns the run all the same
                raise self._owned(run_id, pid, host, beat, now, owner=None)
            took = ({"pid": pid, "host": host, "heartbeat": beat, "status": status}
                    if cur != owner and (cur or status in LIVE_STATUSES) else None)
            con.execute("UPDATE runs SET owner=?, pid=?, host=?, heartbeat=? WHERE id=?",
                        (owner, os.getpid(), HOST, now, run_id))
        _hold(owner)
        return took

    @_sqlite_errors
    def release(self, run_id: str, owner: str) -> None:
        """Give the lease back (only ``owner``'s own lease is touched)."""
        try:
            with self._conn() as con:
                con.execute("UPDATE runs SET owner=NULL WHERE id=? AND owner=?", (run_id, owner))
        finally:
            drop(owner)

    def _refuse(self, con: sqlite3.Connection, run_id: str, owner: str | None) -> None:
        """A guarded write matched no row: raise why (inside the transaction, so it rolls back)."""
        status, cur, pid, host, beat = self._lease_row(con, run_id)
        if cur != owner:
            if cur:
                raise self._owned(run_id, pid, host, beat, owner=cur)
            raise RunOwned(f"run {run_id!r} in {self.path}: this writer does not hold its lease (it was released, or "
                           "taken over after this writer was judged dead); nothing was written")
        raise self._finished(run_id)

    # ------------------------------------------------------------------ writing
    @_sqlite_errors
    def create_run(self, config_: Mapping[str, Any], kind: str = "", name: str | None = None,
                   total_steps: int | None = None, run_id: str | None = None, owner: str | None = None) -> str:
        """Record a new run and return its id; ``owner`` (a lease token) becomes its writer.

        A run id is created once: an id already in the store is :class:`RunExists` (its row, metrics
        and checkpoint are left as they are), never replaced."""
        given = run_id is not None
        if given:
            V.run_id(run_id)
        now = time.time()
        con = self._conn()
        for _ in range(8):
            rid = run_id if given else time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
            try:
                with con:
                    con.execute(
                        "INSERT INTO runs (id, name, kind, config, status, created, updated, step, total_steps,"
                        " pid, host, heartbeat, owner) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (rid, name or rid, kind, dumps(dict(config_)), "created", now, now, 0, total_steps,
                         os.getpid(), HOST, now, owner),
                    )
            except sqlite3.IntegrityError:
                if not given:
                    continue  # a generated id that is taken: draw another
                row = con.execute("SELECT status, step FROM runs WHERE id=?", (rid,)).fetchone()
                what = f"{row[0]}, step {row[1]}" if row else "just created by another writer"
                raise RunExists(f"run {rid!r} already exists in {self.path} ({what}); a run id is created once and "
                                f"never replaced: use another run id, or continue it with Run.resume({rid!r})") from None
            _hold(owner)
            return rid
        raise RuntimeError(f"create_run: no free run id after 8 tries in {self.path}")  # pragma: no cover

    @_sqlite_errors
    def beat(self, run_ids: Iterable[str], owner: str | None = None) -> None:
        """Heartbeat of the runs this process is working on (of ``owner``'s lease when given)."""
        now = time.time()
        # a short-lived connection: the heartbeat thread keeps no store file open between beats
        con = sqlite3.connect(self.path, timeout=5)
        try:
            with con:
                if owner is not None:
                    con.executemany("UPDATE runs SET heartbeat=? WHERE id=? AND owner=?", [(now, r, owner) for r in run_ids])
                else:
                    con.executemany("UPDATE runs SET heartbeat=? WHERE id=? AND pid=?",
                                    [(now, r, os.getpid()) for r in run_ids])
        finally:
            con.close()

    #: the guard of every write: the row's lease is the writer's (None: nobody's) and it is not finished
    _GUARD = "id=? AND owner IS ? AND status IS NOT 'finished'"

    @_sqlite_errors
    def update_run(self, run_id: str, owner: str | None = None, release: bool = False, **fields: Any) -> None:
        """Set fields of a run; ``owner`` is the writer's lease token (None for a caller without a
        lease: allowed while nobody holds the run). ``release=True`` gives the lease back in the same
        write (a run that ends). Refused (:class:`RunOwned`, :class:`RunReadOnly`) otherwise."""
        allowed = {"status", "step", "error", "checkpoint", "summary", "total_steps", "name"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"update_run: unknown fields {sorted(bad)}; allowed: {sorted(allowed)}")
        if "summary" in fields and not isinstance(fields["summary"], str):
            fields["summary"] = dumps(fields["summary"])
        cols = ", ".join(f"{k}=?" for k in fields) + ", updated=?" + (", owner=NULL" if release else "")
        with self._conn() as con:
            cur = con.execute(f"UPDATE runs SET {cols} WHERE {self._GUARD}",
                              (*fields.values(), time.time(), run_id, owner))
            if cur.rowcount == 0:
                self._refuse(con, run_id, owner)
        if release:
            drop(owner)

    @_sqlite_errors
    def log_metrics(self, run_id: str, rows: Iterable[tuple[int, Mapping[str, Any]]], owner: str | None = None) -> None:
        """Write ``(step, {key: number})`` rows in one transaction (non-numbers are skipped), as the
        writer ``owner`` (see :meth:`update_run`)."""
        flat = []
        last = None
        for step, values in rows:
            last = step
            for k, v in values.items():
                if isinstance(v, bool | int | float | np.number) and v == v:  # drop NaN
                    flat.append((run_id, int(step), k, float(v)))
        if last is None:
            return
        with self._conn() as con:
            # the lease is checked in the same transaction as the rows it lets in
            cur = con.execute(f"UPDATE runs SET step=MAX(step, ?), updated=? WHERE {self._GUARD}",
                              (int(last), time.time(), run_id, owner))
            if cur.rowcount == 0:
                self._refuse(con, run_id, owner)
            con.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?)", flat)

    @_sqlite_errors
    def log_snapshot(self, run_id: str, step: int, kind: str, data: Any, owner: str | None = None) -> None:
        with self._conn() as con:
            cur = con.execute(f"UPDATE runs SET updated=? WHERE {self._GUARD}", (time.time(), run_id, owner))
            if cur.rowcount == 0:
                self._refuse(con, run_id, owner)
            con.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?)", (run_id, int(step), kind, dumps(data)))

    @_sqlite_errors
    def delete_run(self, run_id: str, owner: str | None = None) -> None:
        """Delete a run and its rows; refused (:class:`RunOwned`) while another live writer holds it."""
        con = self._conn()
        with con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT owner, pid, host, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is not None and row[0] and row[0] != owner and owner_alive(*row):
                raise self._owned(run_id, *row[1:], owner=row[0])
            for table, col in (("metrics", "run_id"), ("snapshots", "run_id"), ("runs", "id")):
                con.execute(f"DELETE FROM {table} WHERE {col}=?", (run_id,))

    # ------------------------------------------------------------------ reading
    def checkpoint_file(self, path: Any) -> Path:
        """A checkpoint path read from this store, if it may be followed: it must lie in the
        workspace or in the store's own folder (after resolving ``..`` and links). A store is data
        from outside; its paths are not followed anywhere else (ValueError naming both)."""
        if not isinstance(path, str) or not path:
            raise ValueError(f"run store {self.path}: the recorded checkpoint {path!r} is not a path")
        try:
            real = Path(path).expanduser().resolve()
            roots = [config.workspace().resolve(), self.path.parent.resolve()]
        except (OSError, RuntimeError, ValueError) as exc:
            raise ValueError(f"run store {self.path}: the recorded checkpoint {path!r} cannot be resolved ({exc})") from None
        if not any(real.is_relative_to(r) for r in roots):
            raise ValueError(f"run store {self.path}: the recorded checkpoint {path!r} lies outside the workspace "
                             f"({roots[0]}) and the store's folder ({roots[1]}), so it is not followed (a store is "
                             f"data, not a pointer to any file); if you trust that file, pass its path yourself: "
                             f"Run.resume({path!r})")
        return Path(path)

    def _resumable(self, path: Any) -> str | None:
        """The checkpoint path when that file is there and may be followed."""
        if not isinstance(path, str) or not path:
            return None
        try:
            return path if self.checkpoint_file(path).is_file() else None
        except (OSError, ValueError):
            return None

    @_sqlite_errors
    def runs(self) -> pd.DataFrame:
        """One row per run, newest first.

        ``status`` is the recorded one, except ``interrupted`` for a run whose owning process died
        without recording an end (see the module docstring); ``recorded_status`` keeps what the
        file says and ``resume_from`` is the checkpoint to continue from (None when there is none,
        or when the recorded path lies outside the workspace and the store's folder).
        """
        df = pd.read_sql_query(
            "SELECT id, name, kind, status, step, total_steps, created, updated, error, checkpoint, config, summary,"
            " pid, host, heartbeat, owner FROM runs ORDER BY created DESC", self._conn())
        now = time.time()
        df["recorded_status"] = df["status"]
        df["status"] = [liveness(s, p, h, b, u, now=now, owner=o) for s, p, h, b, u, o in zip(
            df["status"], _ints(df["pid"]), df["host"], _floats(df["heartbeat"]), _floats(df["updated"]),
            df["owner"])]
        df = df.drop(columns="owner")
        df["resume_from"] = [self._resumable(c) for c in df["checkpoint"]]
        for col in ("created", "updated"):
            df[col] = pd.to_datetime(pd.to_numeric(df[col], errors="coerce"), unit="s", errors="coerce")
        return df

    @_sqlite_errors
    def run(self, run_id: str) -> dict[str, Any]:
        """The record of one run (``status`` judged like :meth:`runs`; ``recorded_status`` as stored)."""
        if not isinstance(run_id, str):
            raise ValueError(f"run_id: expected a run id string, got {run_id!r}")
        cur = self._conn().execute("SELECT * FROM runs WHERE id=?", (run_id,))
        row = cur.fetchone()
        if row is None:
            known = [r[0] for r in self._conn().execute("SELECT id FROM runs ORDER BY created DESC LIMIT 5")]
            raise KeyError(f"no run {run_id!r} in {self.path}; recent runs: {known}")
        rec = dict(zip([d[0] for d in cur.description], row))
        try:
            where = f"run store {self.path}: run {run_id!r}"  # bounded: length and depth checked first
            rec["config"] = V.json_loads(f"{where} config", rec["config"] or "{}")
            rec["summary"] = V.json_loads(f"{where} summary", rec["summary"]) if rec.get("summary") else None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"run store {self.path}: run {run_id!r} has a damaged record ({exc})") from None
        rec["recorded_status"] = rec["status"]
        rec["status"] = liveness(rec["status"], rec.get("pid"), rec.get("host"), rec.get("heartbeat"), rec.get("updated"),
                                 owner=rec.get("owner"))
        rec["resume_from"] = self._resumable(rec.get("checkpoint"))
        return rec

    @_sqlite_errors
    def metrics(self, run_id: str) -> pd.DataFrame:
        """Wide table: one row per step, one column per metric."""
        long = pd.read_sql_query("SELECT step, key, value FROM metrics WHERE run_id=? ORDER BY step",
                                 self._conn(), params=(run_id,))
        if long.empty:
            return pd.DataFrame(index=pd.Index([], name="step"))
        wide = long.pivot_table(index="step", columns="key", values="value", aggfunc="last")
        wide.columns.name = None
        return wide

    @_sqlite_errors
    def snapshots(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT step, kind, data FROM snapshots WHERE run_id=?"
        params: tuple = (run_id,)
        if kind is not None:
            sql += " AND kind=?"
            params += (kind,)
        rows = self._conn().execute(sql + " ORDER BY step", params).fetchall()
        return [{"step": s, "kind": k, "data": V.json_loads(f"run store {self.path}: snapshot", d)} for s, k, d in rows]

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"


def _finite(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool) and math.isfinite(float(v))


def _ints(col: pd.Series) -> list[Any]:
    # a damaged row can hold anything: what is not a finite number counts as unknown
    return [int(v) if _finite(v) and abs(float(v)) < 2**63 else None for v in col]


def _floats(col: pd.Series) -> list[Any]:
    return [float(v) if _finite(v) else None for v in col]
