"""A thread-safe, append-only event log with sequence numbers.

The training thread appends; any number of readers ask for "everything after seq k". Appending
takes a lock for a list append only, and readers copy a slice under the same lock, so a reader
never holds the training thread for longer than that copy.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run. ``data`` holds plain, JSON-friendly values."""

    seq: int
    kind: str
    step: int | None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0


class EventLog:
    """Append-only log; ``since(seq)`` returns the events with a larger sequence number.

    ``max_events`` bounds memory for very long runs: the oldest events are dropped (readers that
    fall that far behind simply get what is left; the run store keeps the full record).
    """

    def __init__(self, max_events: int = 200_000) -> None:
        self._events: list[Event] = []
        self._first_seq = 1  # seq of self._events[0]
        self._next = 1
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.max_events = max_events

    def append(self, kind: str, step: int | None = None, **data: Any) -> Event:
        with self._lock:
            ev = Event(self._next, kind, step, data, time.time())
            self._next += 1
            self._events.append(ev)
            if len(self._events) > self.max_events:
                drop = len(self._events) - self.max_events
                del self._events[:drop]
                self._first_seq += drop
            self._cond.notify_all()
        return ev

    def since(self, seq: int = 0, kinds: str | tuple[str, ...] | None = None, limit: int | None = None) -> list[Event]:
        """Events with sequence number > ``seq`` (optionally only some kinds, at most ``limit``)."""
        with self._lock:
            start = max(0, seq + 1 - self._first_seq)
            out = self._events[start:]
        if kinds is not None:
            kinds = (kinds,) if isinstance(kinds, str) else kinds
            out = [e for e in out if e.kind in kinds]
        if limit is not None:
            out = out[:limit]
        return out

    def wait(self, seq: int, timeout: float | None = None) -> bool:
        """Block until an event after ``seq`` exists (for scripts; the UI polls instead)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._next - 1 > seq, timeout)

    def last(self, kind: str | None = None) -> Event | None:
        with self._lock:
            for ev in reversed(self._events):
                if kind is None or ev.kind == kind:
                    return ev
        return None

    @property
    def last_seq(self) -> int:
        return self._next - 1

    def __len__(self) -> int:
        return self._next - 1
