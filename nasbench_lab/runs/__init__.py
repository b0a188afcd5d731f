"""Background runs, their event log, the SQLite run store and checkpoints."""

from nasbench_lab.runs.events import Event, EventLog
from nasbench_lab.runs.job import Job
from nasbench_lab.runs.run import Run, RunFailed
from nasbench_lab.runs.store import RunExists, RunOwned, RunReadOnly, RunStore

__all__ = ["Event", "EventLog", "Job", "Run", "RunExists", "RunFailed", "RunOwned", "RunReadOnly", "RunStore"]
