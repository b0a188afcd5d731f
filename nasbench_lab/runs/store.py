"""The run store: one SQLite file (WAL mode) holding runs, per-step metrics and snapshots.

Each thread gets its own connection (sqlite3 connections are not shared across threads). Every
write is a committed transaction, so a killed process leaves every committed step readable.
"""

from __future__ import annotations

import json
import os
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
    summary TEXT
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


class RunStore:
    """SQLite-backed record of runs. ``RunStore()`` uses ``<workspace>/runs.sqlite``."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else config.workspace() / "runs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as con:
            con.executescript(_SCHEMA)

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
    def create_run(self, config_: Mapping[str, Any], kind: str = "", name: str | None = None,
                   total_steps: int | None = None, run_id: str | None = None) -> str:
        run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        with self._conn() as con:
            con.execute(
                "INSERT OR REPLACE INTO runs (id, name, kind, config, status, created, updated, step, total_steps)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, name or run_id, kind, dumps(dict(config_)), "created", now, now, 0, total_steps),
            )
        return run_id

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

    def log_snapshot(self, run_id: str, step: int, kind: str, data: Any) -> None:
        with self._conn() as con:
            con.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?)", (run_id, int(step), kind, dumps(data)))

    def delete_run(self, run_id: str) -> None:
        with self._conn() as con:
            for table, col in (("metrics", "run_id"), ("snapshots", "run_id"), ("runs", "id")):
                con.execute(f"DELETE FROM {table} WHERE {col}=?", (run_id,))

    # ------------------------------------------------------------------ reading
    def runs(self) -> pd.DataFrame:
        """One row per run, newest first."""
        df = pd.read_sql_query(
            "SELECT id, name, kind, status, step, total_steps, created, updated, error, checkpoint, config, summary"
            " FROM runs ORDER BY created DESC", self._conn())
        for col in ("created", "updated"):
            df[col] = pd.to_datetime(df[col], unit="s")
        return df

    def run(self, run_id: str) -> dict[str, Any]:
        cur = self._conn().execute("SELECT * FROM runs WHERE id=?", (run_id,))
        row = cur.fetchone()
        if row is None:
            known = [r[0] for r in self._conn().execute("SELECT id FROM runs ORDER BY created DESC LIMIT 5")]
            raise KeyError(f"no run {run_id!r} in {self.path}; recent runs: {known}")
        rec = dict(zip([d[0] for d in cur.description], row))
        rec["config"] = json.loads(rec["config"] or "{}")
        rec["summary"] = json.loads(rec["summary"]) if rec.get("summary") else None
        return rec

    def metrics(self, run_id: str) -> pd.DataFrame:
        """Wide table: one row per step, one column per metric."""
        long = pd.read_sql_query("SELECT step, key, value FROM metrics WHERE run_id=? ORDER BY step",
                                 self._conn(), params=(run_id,))
        if long.empty:
            return pd.DataFrame(index=pd.Index([], name="step"))
        wide = long.pivot_table(index="step", columns="key", values="value", aggfunc="last")
        wide.columns.name = None
        return wide

    def snapshots(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT step, kind, data FROM snapshots WHERE run_id=?"
        params: tuple = (run_id,)
        if kind is not None:
            sql += " AND kind=?"
            params += (kind,)
        rows = self._conn().execute(sql + " ORDER BY step", params).fetchall()
        return [{"step": s, "kind": k, "data": json.loads(d)} for s, k, d in rows]

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"
