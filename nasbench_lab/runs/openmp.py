"""Keep a Run's thread at main-thread speed on CPU: release the caller's idle OpenMP team.

Why (issue 15, measured on 2 cores): once a thread has run a torch op with more than one intra-op
thread, libgomp keeps a team of worker threads for it (a "pool", one per thread that starts
parallel regions). A Run's thread gets a second pool. libgomp counts every pooled thread, idle or
not, and once that count exceeds the cores it cuts its spin-wait from 300,000 to 100 spins (the
"throttled" count, see GOMP_SPINCOUNT in the libgomp manual), so every parallel region of the
Run's thread ends in a futex sleep and a wake-up: 0.81-0.83 of a plain loop's speed.

The fix: ``omp_pause_resource_all(omp_pause_soft)`` (OpenMP 5.0, libgomp >= 9) called in the
thread that starts the run (the notebook's main thread), and again after each dashboard refresh,
ends *that* thread's idle pool and lowers the count, so the Run's pool is the only one and keeps
the normal spin-wait. Nothing else changes: the main thread's next torch op builds a new pool
(microseconds), other threads' pools are left alone, and libgomp refuses the call (-1) inside a
parallel region. Every loaded libgomp is paused: a notebook has at least two (torch's and
scikit-learn's), and the first version, which paused only the first path found (scikit-learn's),
released nothing and was measured as "ineffective". Where libgomp is not the OpenMP runtime
(macOS, a build with another runtime) this is a no-op.

Measured on 2 cores (pooling, digits, best ms/step of 20, channels_last, the main thread had run
torch): plain loop in the main thread 133, the same loop in a thread 162-194, in a thread after the
release 131 (a thread in a process whose main thread never ran torch: 121-128). ``nasbench-lab
bench``: Trainer in its Run / the same loop in the main thread 0.95 (pooling), 1.00 (NB-201).

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
def _pause_fns() -> tuple:
    """``omp_pause_resource_all`` of every libgomp this process has loaded (torch ships one,
    scikit-learn another: only torch's pools slow a run, and the paths do not say which is which,
    so every copy is paused; each keeps its own pools and its own count). Filled once torch is
    imported, so torch's copy is always among them; a copy loaded later is not, which is harmless."""
    if not sys.platform.startswith("linux"):
        return ()
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "libgomp" in line and "/" in line}
    except OSError:
        return ()
    fns = []
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).omp_pause_resource_all  # the loaded copy: dlopen returns its handle
        except (OSError, AttributeError):  # an old libgomp without OpenMP 5.0
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        fns.append(fn)
    return tuple(fns)


def release_idle_team() -> bool:
    """End the calling thread's idle OpenMP worker threads (see the module docstring).

    Returns True when every loaded libgomp released (or had nothing to release), False where
    none is in use here or one refused (inside a parallel region). Cheap enough to call on every
    dashboard refresh (a few microseconds when there is nothing to release).
    """
    if "torch" not in sys.modules:  # no torch, no OpenMP team to release
        return False
    fns = _pause_fns()
    if not fns:
        return False
    return all([fn(_OMP_PAUSE_SOFT) == 0 for fn in fns])  # a list, not a generator: pause every copy
