"""Keep a Run's thread at main-thread speed on CPU: release the caller's idle OpenMP team.

Why (issue 15, measured on 2 cores): once a thread has run a torch op with more than one intra-op
thread, libgomp keeps a team of worker threads for it (a "pool", one per thread that starts
parallel regions). A Run's thread gets a second pool. libgomp counts every pooled thread, idle or
not, and once that count exceeds the cores it cuts its spin-wait from 300,000 to 100 spins (the
"throttled" count, see GOMP_SPINCOUNT in the libgomp manual), so every parallel region of the
Run's thread ends in a futex sleep and a wake-up: 0.81-0.83 of a plain loop's speed.

The attempt: ``omp_pause_resource_all(omp_pause_soft)`` (OpenMP 5.0, libgomp >= 9) called in the
thread that starts the run (the notebook's main thread) ends *that* thread's idle pool and lowers
the count, so the Run's pool is the only one and keeps the normal spin-wait. Nothing else changes:
the main thread's next torch op builds a new pool (microseconds), other threads' pools are left
alone, and the call is refused by libgomp (returns -1) inside a parallel region. Where libgomp is
not the OpenMP runtime in this process (macOS, a build with another runtime) this is a no-op.

What it is worth, measured after it landed (2 cores, best ms/step of 30, pooling/NB-201): main
thread 130/427, Run thread 198/511, Run thread after the release 208/477: within the noise, so
the second team is not the whole story and the thread's overhead stays (the bench's
``*_trainer_vs_channels_last_loop``, 0.72-0.77). It is kept because it is cheap and harmless; the
Run thread meets its target through the layout instead (``TrainerConfig.channels_last``). A
design that removes the overhead (the run's steps on the kernel's main thread between cells, or
in a subprocess) is open.

``GOMP_SPINCOUNT``/``OMP_WAIT_POLICY`` are no alternative: libgomp reads them once when it is
loaded, i.e. at ``import torch``, which in a notebook usually happens before ``nasbench_lab``.
"""

from __future__ import annotations

import ctypes
import functools
import sys

#: ``omp_pause_soft``: end the idle threads, keep the runtime's state
_OMP_PAUSE_SOFT = 1


@functools.cache
def _pause_fn():
    """libgomp's ``omp_pause_resource_all`` from the copy this process has loaded, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "libgomp" in line and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).omp_pause_resource_all  # the loaded copy: dlopen returns its handle
        except (OSError, AttributeError):  # an old libgomp without OpenMP 5.0
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        return fn
    return None


def release_idle_team() -> bool:
    """End the calling thread's idle OpenMP worker threads (see the module docstring).

    Returns True when libgomp released (or had nothing to release), False where it is not in
    use here or refused (inside a parallel region). Cheap enough to call on every dashboard refresh.
    """
    if "torch" not in sys.modules:  # no torch, no OpenMP team to release
        return False
    fn = _pause_fn()
    return fn is not None and fn(_OMP_PAUSE_SOFT) == 0
