"""The one boundary between an exception and the person who caused it (issue 23, section 3).

:func:`describe` turns any exception into a message for a terminal or a widget and an exit code
a script can rely on; ``nasbench-lab`` (:func:`nasbench_lab.cli.main`) and the widgets' inline
messages both use it, so the same mistake reads the same everywhere. The mapping goes by base
class, so a new exception class fits by what it subclasses:

======================================================  ====  ============================================
exception                                               code  meaning
======================================================  ====  ============================================
ValueError, KeyError, FileNotFoundError; argparse's      2    bad input: the message names the argument
RecursionError                                           1    input too deeply nested (said so)
OSError (other than FileNotFoundError), sqlite3.Error    1    a resource failed: the path and what the OS said
RuntimeError (RunFailed, out of memory...), MemoryError  1    the work failed
anything else                                            1    a bug: its type is shown; ``--debug`` for the traceback
KeyboardInterrupt (Ctrl-C)                               130  interrupted
======================================================  ====  ============================================

A missing file is bad input (2) whether our code or the OS raised it: it is nearly always a path
the user named; any other OSError is the machine's (a full disk, a read-only folder, a file where
a folder should be).
"""

from __future__ import annotations

import errno
import sqlite3
import sys

__all__ = ["BAD_INPUT", "FAILED", "INTERRUPTED", "describe"]

#: exit codes (``nasbench-lab``): the work failed / bad input / interrupted (128 + SIGINT)
FAILED, BAD_INPUT, INTERRUPTED = 1, 2, 130

#: messages are cut to this many characters (an input echoed back may be megabytes long)
MAX_MESSAGE = 2000

#: what an OS error number means for the person at the keyboard
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space, or point NASBENCH_LAB_HOME at another disk",
    errno.EROFS: "the file system is read-only: point NASBENCH_LAB_HOME (or the flag that names this path) "
                 "at a writable folder",
    errno.EACCES: "no permission: pick a folder you can write to (or fix its permissions)",
    errno.EPERM: "not permitted: pick a folder you can write to (or fix its permissions)",
    errno.EEXIST: "something is in the way: a file, or a link to nowhere, where a folder should be",
    errno.ENOTDIR: "a file is in the way where a folder should be",
    errno.EISDIR: "this is a folder; a file path was expected",
    errno.ENAMETOOLONG: "a name in this path is too long for the file system; use a shorter one",
    errno.EDQUOT: "the disk quota is exceeded: free some space, or point NASBENCH_LAB_HOME at another disk",
}


def _shorten(text: str, n: int = MAX_MESSAGE) -> str:
    """A whole message, cut to about ``n`` characters (validation.shorten, the one home of cutting)."""
    from nasbench_lab.validation import shorten

    return shorten(text, n - 40, quote=False)  # "about n": the length note comes on top


def _text(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])  # str(KeyError) adds quotes around the message
    return str(exc) or type(exc).__name__


def _os_message(exc: OSError) -> str:
    """``<path>: <what the OS said> (<what it means>)``; our own OSErrors carry their message."""
    if exc.filename is None or exc.strerror is None:
        return _text(exc)
    paths = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    hint = _OS_HINTS.get(exc.errno or 0)
    return f"{paths}: {exc.strerror}" + (f" ({hint})" if hint else "")


def _run_failed(exc: BaseException) -> bool:
    run = sys.modules.get("nasbench_lab.runs.run")  # not imported: no RunFailed can exist
    return run is not None and isinstance(exc, run.RunFailed)


def describe(exc: BaseException) -> tuple[str, int]:
    """``(message, exit_code)`` for ``exc`` (see the module docstring for the table).

    >>> describe(ValueError("--steps: expected a positive integer, got 0 (e.g. --steps 1000)"))
    ('--steps: expected a positive integer, got 0 (e.g. --steps 1000)', 2)
    >>> describe(OSError(28, "No space left on device", "/data/runs.sqlite"))[1]
    1
    """
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", INTERRUPTED
    if isinstance(exc, RecursionError):  # before RuntimeError, its base
        return ("input too deeply nested (Python's recursion limit was reached while reading it); "
                "flatten the input"), FAILED
    if _run_failed(exc):
        # RunFailed's text is the whole thread traceback: say what failed, from the cause's words
        first = _text(exc).splitlines()[0].rstrip(":")
        cause = exc.__cause__
        why = f"{type(cause).__name__}: {describe(cause)[0]}" if cause is not None else ""
        return _shorten(f"{first}: {why}" if why else first), FAILED
    if isinstance(exc, FileNotFoundError):
        return _shorten(_os_message(exc)), BAD_INPUT
    if isinstance(exc, OSError):
        return _shorten(_os_message(exc)), FAILED
    if isinstance(exc, sqlite3.Error):
        return _shorten(f"the run store (SQLite) failed: {_text(exc)}"), FAILED
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller batch, fewer images or a smaller network", FAILED
    if isinstance(exc, RuntimeError):
        return _shorten(_text(exc)), FAILED
    if isinstance(exc, ValueError | KeyError):
        return _shorten(_text(exc)), BAD_INPUT
    return _shorten(f"internal error ({type(exc).__name__}: {_text(exc)}); this is a bug: please report it "
                    "with the traceback that --debug shows"), FAILED
