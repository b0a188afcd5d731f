"""A run's progress on a terminal: tqdm bars on stderr fed from its event log (the CLI commands
``run`` and ``darts`` follow their runs with it)."""

from __future__ import annotations

import time
from typing import Any

from nasbench_lab.progress import progress as tqdm


def follow(run: Any, total: int, desc: str, leave: bool = True) -> None:
    """Progress bars fed from the run's event log (the training thread never waits for them):
    the steps, then the ranking phase (the supernet scoring every architecture, which on a CPU can
    take longer than the training), each on stderr with tqdm's rate and remaining time."""
    seq = 0
    bar = tqdm(total=total, desc=desc, unit="step", leave=leave)
    ranking = None
    try:
        while True:
            evs = run.events.since(seq)
            if evs:
                seq = evs[-1].seq
                steps = [e for e in evs if e.kind == "step"]
                if steps:
                    last = steps[-1]
                    bar.n = last.step
                    post = {k: f"{v:.3f}" for k, v in last.data.items() if isinstance(v, float)}
                    bar.set_postfix(post, refresh=False)
                    bar.refresh()
                phases = [e for e in evs if e.kind == "phase" and e.data.get("phase") == "ranking"]
                if phases:
                    done, n = int(phases[-1].data.get("done", 0)), int(phases[-1].data.get("total", 0))
                    if ranking is None or ranking.total != n or done < ranking.n:
                        if ranking is not None:
                            ranking.close()
                        what = "periodic ranking" if phases[-1].data.get("periodic") else "ranking"
                        ranking = tqdm(total=n, desc=f"{desc}: {what}", unit="arch", leave=False)
                    ranking.n = done
                    ranking.refresh()
            if run.status in ("finished", "failed", "stopped"):
                break
            time.sleep(0.2)
    finally:
        if ranking is not None:
            ranking.close()
        bar.close()


def eta_text(remaining: float, rate: float | None) -> str | None:
    """Time left at ``rate`` units per second for ``remaining`` units, as ``m:ss`` (``h:mm:ss``
    from an hour on); None while the rate is unknown or zero (a speed alone says nothing of the end)."""
    if rate is None or not rate > 0 or remaining < 0:
        return None
    seconds = int(round(remaining / rate))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
