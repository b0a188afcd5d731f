"""The run store: one SQLite file (WAL mode) holding runs, per-step metrics and snapshots.

Each thread gets its own connection (sqlite3 connections are not shared across threads). Every
write is a committed transaction, so a killed process leaves every committed step readable.

Dead runs: a run records the process that owns it (``pid``, ``host``) and that process beats a
``heartbeat`` every :data:`HEARTBEAT_S` seconds while the run is live (running or paused). A
process killed by SIGTERM or ``kill -9`` cannot write "stopped", so readers judge it instead:
a run still marked running/paused whose owner is gone (same host: no such pid; any host: no
heartbeat for :data:`STALE_S` seconds) is reported as ``interrupted``, with ``resume_from`` the
checkpoint it can be resumed from (or None). The recorded status itself is left as it is.
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
    heartbeat REAL
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
_ADDED_COLUMNS = {"pid": "INTEGER", "host": "TEXT", "heartbeat": "REAL"}
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


def liveness(status: Any, pid: Any, host: Any, heartbeat: Any, updated: Any, now: float | None = None) -> str:
    """The status to show: ``interrupted`` for a live-marked run whose owning process is gone."""
    if status not in LIVE_STATUSES:
        return str(status)
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


def _sqlite_errors(method):
    """sqlite (and pandas' wrapper of it) errors -> ValueError naming the store file."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            raise ValueError(f"run store {self.path}: {exc} (is it a nasbench_lab run store? a damaged file "
                             "can be moved aside; RunStore(path) then starts a new one)") from None
    return wrapper


class RunStore:
    """SQLite-backed record of runs. ``RunStore()`` uses ``<workspace>/runs.sqlite``.

    A path that is a folder, or a file that is not an SQLite database with the run store's tables,
    is a ValueError naming it (nothing is written into a foreign file).
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        if path is not None and not isinstance(path, str | os.PathLike):
            raise ValueError(f"store: expected a file path such as 'runs.sqlite', got {path!r}")
        self.path = Path(path).expanduser() if path is not None else config.workspace() / "runs.sqlite"
        if self.path.is_dir():
            raise ValueError(f"store: {self.path} is a folder; expected an SQLite file such as "
                             f"{self.path / 'runs.sqlite'}")
        if self.path.exists() and not self.path.is_file():  # a FIFO or a device: never opened
            raise ValueError(f"store: {self.path} is not a regular file; expected an SQLite file such as runs.sqlite")
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                head = fh.read(16)
            if head != b"SQLite format 3\x00":
                raise ValueError(f"store: {self.path} is not an SQLite database (a run store is one, e.g. "
                                 "runs.sqlite); pass another path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._open()

    @_sqlite_errors
    def _open(self) -> None:
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
        if con is None:
            con = sqlite3.connect(self.path, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------ writing
    @_sqlite_errors
    def create_run(self, config_: Mapping[str, Any], kind: str = "", name: str | None = None,
                   total_steps: int | None = None, run_id: str | None = None) -> str:
        run_id = V.run_id(run_id) if run_id is not None else time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        with self._conn() as con:
            con.execute(
                "INSERT OR REPLACE INTO runs (id, name, kind, config, status, created, updated, step, total_steps,"
                " pid, host, heartbeat) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, name or run_id, kind, dumps(dict(config_)), "created", now, now, 0, total_steps,
                 os.getpid(), HOST, now),
            )
        return run_id

    @_sqlite_errors
    def claim(self, run_id: str) -> None:
        """This process owns the run now (set when a run starts or is resumed)."""
        with self._conn() as con:
            con.execute("UPDATE runs SET pid=?, host=?, heartbeat=? WHERE id=?", (os.getpid(), HOST, time.time(), run_id))

    @_sqlite_errors
    def beat(self, run_ids: Iterable[str]) -> None:
        """Heartbeat of the runs this process is working on."""
        now = time.time()
        # a short-lived connection: the heartbeat thread keeps no store file open between beats
        con = sqlite3.connect(self.path, timeout=5)
        try:
            with con:
                con.executemany("UPDATE runs SET heartbeat=? WHERE id=? AND pid=?",
                                [(now, r, os.getpid()) for r in run_ids])
        finally:
            con.close()

    @_sqlite_errors
    def update_run(self, run_id: str, **fields: Any) -> None:
        allowed = {"status", "step", "error", "checkpoint", "summary", "total_steps", "name"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"update_run: unknown fields {sorted(bad)}; allowed: {sorted(allowed)}")
        if "summary" in fields and not isinstance(fields["summary"], str):
            fields["summary"] = dumps(fields["summary"])
        cols = ", ".join(f"{k}=?" for k in fields) + ", updated=?"
        with self._conn() as con:
            con.execute(f"UPDATE runs SET {cols} WHERE id=?", (*fields.values(), time.time(), run_id))

    @_sqlite_errors
    def log_metrics(self, run_id: str, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        """Write ``(step, {key: number})`` rows in one transaction (non-numbers are skipped)."""
        flat = []
        last = None
        for step, values in rows:
            last = step
            for k, v in values.items():
                if isinstance(v, bool | int | float | np.number) and v == v:  # drop NaN
                    flat.append((run_id, int(step), k, float(v)))
        if not flat and last is None:
            return
        with self._conn() as con:
            con.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?)", flat)
            if last is not None:
                con.execute("UPDATE runs SET step=MAX(step, ?), updated=? WHERE id=?", (int(last), time.time(), run_id))

    @_sqlite_errors
    def log_snapshot(self, run_id: str, step: int, kind: str, data: Any) -> None:
        with self._conn() as con:
            con.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?)", (run_id, int(step), kind, dumps(data)))

    @_sqlite_errors
    def delete_run(self, run_id: str) -> None:
        with self._conn() as con:
            for table, col in (("metrics", "run_id"), ("snapshots", "run_id"), ("runs", "id")):
                con.execute(f"DELETE FROM {table} WHERE {col}=?", (run_id,))

    # ------------------------------------------------------------------ reading
    @_sqlite_errors
    def runs(self) -> pd.DataFrame:
        """One row per run, newest first.

        ``status`` is the recorded one, except ``interrupted`` for a run whose owning process died
        without recording an end (see the module docstring); ``recorded_status`` keeps what the
        file says and ``resume_from`` is the checkpoint to continue from (None when there is none).
        """
        df = pd.read_sql_query(
            "SELECT id, name, kind, status, step, total_steps, created, updated, error, checkpoint, config, summary,"
            " pid, host, heartbeat FROM runs ORDER BY created DESC", self._conn())
        now = time.time()
        df["recorded_status"] = df["status"]
        df["status"] = [liveness(*row, now=now) for row in zip(
            df["status"], _ints(df["pid"]), df["host"], _floats(df["heartbeat"]), _floats(df["updated"]))]
        df["resume_from"] = [_resumable(c) for c in df["checkpoint"]]
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
        rec["status"] = liveness(rec["status"], rec.get("pid"), rec.get("host"), rec.get("heartbeat"), rec.get("updated"))
        rec["resume_from"] = _resumable(rec.get("checkpoint"))
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


def _resumable(path: Any) -> str | None:
    """The checkpoint path when that file is there."""
    try:
        return str(path) if isinstance(path, str) and path and Path(path).is_file() else None
    except (OSError, ValueError):
        return None
