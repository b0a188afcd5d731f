"""One factor for every wait in the tests that waits on a real process (JupyterLab, a kernel, Chromium).

A test's waits are sized for an idle 2-core machine; on a busy one (a laptop doing other work, a
shared CI box) they must stretch, or a correct run fails on its deadline. ``NASBENCH_LAB_WAIT_FACTOR``
sets the factor; without it the factor follows the machine's load when the tests start (the
1-minute load average per core, at least 1, at most 4). No test asserts a time: these are limits.
"""

from __future__ import annotations

import os


def _factor() -> float:
    text = os.environ.get("NASBENCH_LAB_WAIT_FACTOR")
    if text:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"NASBENCH_LAB_WAIT_FACTOR: expected a number >= 1, got {text!r} (e.g. 3)") from None
        if not value >= 1:
            raise ValueError(f"NASBENCH_LAB_WAIT_FACTOR: expected a number >= 1, got {text!r} (e.g. 3)")
        return value
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 1.0
    return min(4.0, max(1.0, load))


FACTOR = _factor()


def seconds(s: float) -> float:
    """A wait of ``s`` seconds on an idle machine, stretched by :data:`FACTOR`."""
    return s * FACTOR


def ms(s: float) -> int:
    """The same in milliseconds (Playwright's unit)."""
    return int(s * 1000 * FACTOR)
