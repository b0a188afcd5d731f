"""A restricted unpickler for dataset files in the CIFAR python-pickle format.

A pickle can name any importable callable and call it while loading: ``pickle.load`` on a planted
file runs code. The CIFAR batch files hold only data, so this loader admits only the globals
that data needs (DESIGN.md, "Trust boundaries") and refuses every other one with an error that
names the file and the global:

* ``numpy.core.multiarray._reconstruct`` (official files, pickled by Python 2 / numpy 1) or
  ``numpy._core.multiarray._reconstruct`` (numpy >= 2, e.g. ``shared/tools/cifar10-folder``),
  with ``numpy.ndarray`` and ``numpy.dtype``: how numpy rebuilds an array in protocols 2-4;
* ``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer``: the same in
  protocol 5 (Python >= 3.14's default);
* ``_codecs.encode``, only as ``encode(text, "latin1")``: how Python 3 writes ``bytes`` in
  protocol 2 (the filenames and batch label of a folder written by Python 3).

After loading, the content is checked too: dicts, lists, tuples, str, bytes, int, float, bool,
None, and numpy arrays of plain dtypes (bool, integers, floats, bytes/str); an object array or
any other type is refused. What is *admitted* can build nothing but those values, so the check
after loading only makes the error clear, it is not what keeps code from running.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["UnsafePickleError", "load", "load_path", "loads", "ALLOWED_GLOBALS"]

_np_core = getattr(np, "_core", None) or np.core  # numpy >= 2 renamed numpy.core to numpy._core


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: ``encode(str, 'latin1')`` only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1") or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode is admitted only as encode(text, 'latin1'), "
                                     f"got encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


#: ``(module, name) -> object`` the unpickler may look up; nothing else is ever imported
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_core.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_core.numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}

_PLAIN = (dict, list, tuple, str, bytes, int, float, bool, type(None))
_ARRAY_KINDS = set("biufSU")


class UnsafePickleError(ValueError):
    """The file names a global outside :data:`ALLOWED_GLOBALS` or holds a non-data value."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load {module}.{name}: a dataset pickle may hold only dicts, lists, bytes, numbers and "
                "numpy arrays (admitted globals: "
                f"{', '.join(sorted({f'{m}.{n}' for m, n in ALLOWED_GLOBALS}))})") from None


def _check(obj: Any) -> None:
    stack = [(obj, "the file")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, np.ndarray):
            if type(value) is not np.ndarray or value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
                raise UnsafePickleError(f"{where} is a numpy array of dtype {value.dtype}; only plain numbers, bytes or "
                                        "strings are dataset content")
            continue
        if type(value) not in _PLAIN:
            raise UnsafePickleError(f"{where} is a {type(value).__name__}; a dataset pickle holds dicts, lists, bytes, "
                                    "numbers and numpy arrays")
        if isinstance(value, dict):
            for k, v in value.items():
                if type(k) not in (str, bytes, int):
                    raise UnsafePickleError(f"a key of {where} is a {type(k).__name__}; expected str or bytes keys")
                stack.append((v, f"entry {k!r}"))
        elif isinstance(value, list | tuple):
            stack.extend((v, f"an item of {where}") for v in value)


def load(file: BinaryIO, encoding: str = "bytes") -> Any:
    """``pickle.load(file, encoding=encoding)`` restricted to dataset content (see the module
    docstring); :class:`UnsafePickleError` (a ValueError) for anything else."""
    obj = _Restricted(file, encoding=encoding).load()
    _check(obj)
    return obj


def loads(data: bytes, encoding: str = "bytes") -> Any:
    return load(io.BytesIO(data), encoding=encoding)


def load_path(path: str | Path, encoding: str = "bytes") -> Any:
    with open(path, "rb") as fh:
        return load(fh, encoding=encoding)
