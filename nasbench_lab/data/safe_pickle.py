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

* ``builtins.bytes`` (``__builtin__.bytes`` in protocol 2), only as ``bytes()``: how Python 3
  writes an empty ``b''`` in protocol 2 (an empty filename in a valid batch).

After loading, the content is checked too: dicts, lists, tuples, str, bytes, int, float, bool,
None, and numpy arrays of plain dtypes (bool, integers, floats, bytes/str); an object array or
any other type is refused. What is *admitted* can build nothing but those values, so the check
after loading only makes the error clear, it is not what keeps code from running.

Bounded work (issue 23): a pickle's memo lets a 3.6 KB file describe a structure of 2^40 items
(``x = [x, x]`` forty times) or a dict key whose hash visits 2^40 tuples. So before anything is
built, :func:`scan` reads the opcodes once and refuses keys and set members of more than
:data:`MAX_KEY_ITEMS` items (what hashing one would visit) and tuples nested deeper than
:data:`MAX_DEPTH`; after loading, :func:`measure` counts the structure *as a tree* (what any
consumer that walks it would visit) with a memo keyed by ``id()``, so each shared container is
visited once, and refuses cycles, nesting deeper than :data:`MAX_DEPTH` and more than
:data:`MAX_ITEMS` items. Files larger than :data:`MAX_FILE_BYTES` are refused before reading.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nasbench_lab import validation as V

__all__ = ["UnsafePickleError", "load", "load_path", "loads", "measure", "scan", "ALLOWED_GLOBALS", "MAX_DEPTH",
           "MAX_FILE_BYTES", "MAX_ITEMS", "MAX_KEY_ITEMS"]

#: a dataset file larger than this is refused before it is read (CIFAR-100's ``train``, the
#: largest official file, is 158 MB)
MAX_FILE_BYTES = 1 << 30
#: containers nested deeper than this are refused (a CIFAR batch is 2 deep)
MAX_DEPTH = 32
#: items a dataset pickle may hold, counted as a tree (CIFAR-100 ``train``: about 150,000)
MAX_ITEMS = 10_000_000
#: items a dict key or set member may hold (a dataset's keys are plain strings: 1)
MAX_KEY_ITEMS = 1_000

_np_core = getattr(np, "_core", None) or np.core  # numpy >= 2 renamed numpy.core to numpy._core


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: ``encode(str, 'latin1')`` only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1") or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode is admitted only as encode(text, 'latin1'), "
                                     f"got encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """``builtins.bytes`` as protocol-2 pickles use it for ``b''``: ``bytes()`` only."""
    if args:
        raise UnsafePickleError(f"builtins.bytes is admitted only as bytes() (an empty b''), got "
                                f"bytes({', '.join(type(a).__name__ for a in args)})")
    return b""


#: ``(module, name) -> object`` the unpickler may look up; nothing else is ever imported
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_core.multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_core.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_core.numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
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


# ----------------------------------------------------------------------------- bounded work
_CAP = 1 << 62  # costs saturate here: a chain of shared tuples must not grow Python ints without end
_POP_TO_MARK = {op.name for op in pickletools.opcodes if pickletools.markobject in op.stack_before}


_BY_CODE = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_MEMO_OPS = {"GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT"}
_LENGTH_WIDTH = {pickletools.TAKEN_FROM_ARGUMENT1: (1, False), pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
                 pickletools.TAKEN_FROM_ARGUMENT4U: (4, False), pickletools.TAKEN_FROM_ARGUMENT8U: (8, False)}


def _opcodes(file: BinaryIO) -> Iterator[tuple[pickletools.OpcodeInfo, int | None]]:
    """``(opcode, memo index or None)`` of a pickle, like ``pickletools.genops`` but without decoding
    arguments: a length-prefixed string or array is skipped with ``seek`` (genops decoded a 150 MB
    CIFAR array into a str: 5 s), only memo indices are read."""
    start = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(start)
    while True:
        code = file.read(1)
        if not code:
            raise pickle.UnpicklingError("pickle ended before STOP")
        op = _BY_CODE.get(code)
        if op is None:
            raise pickle.UnpicklingError(f"unknown opcode {code!r} at byte {file.tell() - 1}")
        arg: int | None = None
        desc = op.arg
        if desc is not None:
            n = desc.n
            if n >= 0:
                raw = file.read(n)
                if len(raw) < n:
                    raise pickle.UnpicklingError("pickle truncated")
                if op.name in _MEMO_OPS:
                    arg = int.from_bytes(raw, "little")
            elif n == pickletools.UP_TO_NEWLINE:
                for _ in range(2 if desc.name == "stringnl_noescape_pair" else 1):
                    line = file.readline()
                    if not line.endswith(b"\n"):
                        raise pickle.UnpicklingError("pickle truncated")
                    if op.name in _MEMO_OPS:
                        arg = int(line)
            else:
                width, signed = _LENGTH_WIDTH[n]
                raw = file.read(width)
                size = int.from_bytes(raw, "little", signed=signed) if len(raw) == width else -1
                if size < 0 or file.tell() + size > end:
                    raise pickle.UnpicklingError("pickle truncated (a length past the end of the file)")
                file.seek(size, io.SEEK_CUR)
        yield op, arg


def scan(file: BinaryIO, where: str, max_key_items: int = MAX_KEY_ITEMS, max_depth: int = MAX_DEPTH) -> None:
    """Read a pickle's opcodes once, building nothing, and refuse what would make loading itself
    unbounded: a dict key or set member whose hash would visit more than ``max_key_items`` items
    (a tuple that nests one shared tuple in itself 40 times hashes 2^40 tuples), or tuples nested
    deeper than ``max_depth``.

    The stack is simulated with, for every slot, ``(items, depth)`` of the tuple it holds (1 and 0
    for anything else: lists and dicts cannot be keys, and what they finally hold is for
    :func:`measure`); the memo maps to the same pairs, so a shared tuple is costed once per use
    in O(1). Linear in the file; :class:`UnsafePickleError` naming ``where``, or for a malformed
    stream any ValueError (the loader fails on it too).
    """
    leaf = (1, 0)
    stack: list[tuple[int, int]] = []
    marks: list[list[tuple[int, int]]] = []
    memo: dict[int, tuple[int, int]] = {}

    def pop() -> tuple[int, int]:
        if not stack:
            raise pickle.UnpicklingError("stack underflow")
        return stack.pop()

    def to_mark() -> list[tuple[int, int]]:
        nonlocal stack
        if not marks:
            raise pickle.UnpicklingError("no MARK on the stack")
        items, stack = stack, marks.pop()
        return items

    def composite(items: list[tuple[int, int]]) -> tuple[int, int]:
        cost = min(1 + sum(c for c, _ in items), _CAP)
        depth = 1 + max((d for _, d in items), default=0)
        if depth > max_depth:
            raise UnsafePickleError(f"{where}: tuples nested more than {max_depth} deep; refused "
                                    "(nasbench_lab.data.safe_pickle.MAX_DEPTH)")
        return cost, depth

    def keys(items: list[tuple[int, int]], what: str) -> None:
        for cost, _ in items:
            if cost > max_key_items:
                big = "more than 2^62" if cost >= _CAP else f"{cost:,}"
                raise UnsafePickleError(f"{where}: a {what} of {big} items (counting shared parts every time they "
                                        f"occur); at most {max_key_items:,} are accepted, so that hashing it stays "
                                        "cheap (a shared-reference bomb?)")

    for op, arg in _opcodes(file):
        name = op.name
        if name == "MARK":
            marks.append(stack)
            stack = []
        elif name == "STOP":
            return
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if not stack:
                raise pickle.UnpicklingError("PUT on an empty stack")
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            if not stack:
                raise pickle.UnpicklingError("MEMOIZE on an empty stack")
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in memo:
                raise pickle.UnpicklingError(f"memo key {arg!r} not defined")
            stack.append(memo[arg])
        elif name == "DUP":
            top = pop()
            stack += [top, top]
        elif name == "POP":
            if stack:
                stack.pop()
            else:
                to_mark()
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            k = int(name[-1])
            items = [pop() for _ in range(k)][::-1]
            stack.append(composite(items))
        elif name == "TUPLE":
            items = to_mark()  # rebinds stack: not inside the append's argument
            stack.append(composite(items))
        elif name == "SETITEM":
            pop()
            keys([pop()], "dict key")
        elif name in ("SETITEMS", "DICT"):
            keys(to_mark()[0::2], "dict key")
            if name == "DICT":
                stack.append(leaf)
        elif name in ("ADDITEMS", "FROZENSET"):
            items = to_mark()
            keys(items, "set member")
            if name == "FROZENSET":
                stack.append(composite(items))
        elif name in _POP_TO_MARK:  # LIST, APPENDS, INST, OBJ, POP_MARK: [before..., mark, items] -> after
            to_mark()
            for _ in range(op.stack_before.index(pickletools.markobject)):
                pop()
            stack += [leaf] * len(op.stack_after)
        else:
            for _ in op.stack_before:
                pop()
            stack += [leaf] * len(op.stack_after)
    raise pickle.UnpicklingError("pickle ended before STOP")


_CONTAINERS = (dict, list, tuple, set, frozenset, collections.OrderedDict, collections.Counter, collections.deque)


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield v
    else:
        yield from value


def _at(parent: str, index: str) -> str:
    """``parent[index]``: a path below the root, the middle elided past 100 characters."""
    path = f"{parent}[{index}]"
    return path if len(path) <= 100 else f"{path[:24]}...{path[-73:]}"


def measure(obj: Any, where: str, max_items: int = MAX_ITEMS, max_depth: int = MAX_DEPTH,
            leaf: Callable[[Any, str], None] | None = None) -> int:
    """The number of items in ``obj`` counted as a tree (a container shared by two parents counts
    twice: that is what any consumer walking it visits), computed with a memo keyed by ``id()``
    so every container is visited once: linear in the objects the file built, whatever it shares.

    UnsafePickleError naming ``where`` for a reference cycle, nesting deeper than ``max_depth``
    or more than ``max_items`` items. ``leaf(value, where)`` checks every non-container value
    and, once, every container before its items; messages name ``where`` and the path below it,
    such as ``the file[b'labels'][3]``.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    # (value, its path below obj, depth, whether its items are done); messages say where + path
    todo: list[tuple[Any, str, int, bool]] = [(obj, "", 0, False)]
    while todo:
        value, at, depth, done = todo.pop()
        if type(value) not in _CONTAINERS and not isinstance(value, _CONTAINERS):
            if leaf is not None:
                leaf(value, where + at)
            continue
        key = id(value)
        if done:
            total = 1 + sum(sizes.get(id(c), 1) for c in _children(value))
            if total > max_items:
                raise UnsafePickleError(f"{where}{at} holds {total:,} items counted as a tree (shared parts count "
                                        f"every time they occur); at most {max_items:,} are accepted (a "
                                        "shared-reference bomb?)")
            sizes[key] = total
            active.discard(key)
            continue
        if key in sizes:
            continue
        if key in active:
            raise UnsafePickleError(f"{where}{at} contains itself (a reference cycle); data files hold trees")
        if depth >= max_depth:
            raise UnsafePickleError(f"{where}{at} is nested more than {max_depth} containers deep")
        if leaf is not None:  # once per container, however often it is shared
            leaf(value, where + at)
        active.add(key)
        todo.append((value, at, depth, True))
        if isinstance(value, dict):
            for k, v in value.items():
                index = V.shorten(k, 40)
                todo.append((k, f"{at} (the key {index})", depth + 1, False))
                todo.append((v, _at(at, index), depth + 1, False))
        else:
            todo.extend((v, _at(at, str(i)), depth + 1, False) for i, v in enumerate(value))
    return sizes.get(id(obj), 1)


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, np.ndarray):
        if type(value) is not np.ndarray or value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
            raise UnsafePickleError(f"{where} is a numpy array of dtype {value.dtype}; only plain numbers, bytes or "
                                    "strings are dataset content")
        if value.size and not value.dtype.itemsize:
            raise UnsafePickleError(f"{where} is a numpy array of {value.size:,} items of 0 bytes; refused")
        return
    if type(value) not in _PLAIN:
        raise UnsafePickleError(f"{where} is a {type(value).__name__}; a dataset pickle holds dicts, lists, bytes, "
                                "numbers and numpy arrays")
    if isinstance(value, dict):
        for k in value:
            if type(k) not in (str, bytes, int):
                raise UnsafePickleError(f"a key of {where} is a {type(k).__name__}; expected str or bytes keys")


def _check(obj: Any, where: str = "the file") -> None:
    """Plain data only (module docstring), a tree of bounded size and depth (:func:`measure`)."""
    measure(obj, where, leaf=_check_value)


def load(file: BinaryIO, encoding: str = "bytes") -> Any:
    """``pickle.load(file, encoding=encoding)`` restricted to dataset content with bounded work
    (see the module docstring); :class:`UnsafePickleError` (a ValueError) for anything else.
    ``file`` must be seekable: its opcodes are scanned first (:func:`scan`), then it is loaded."""
    start = file.tell()
    scan(file, "the file")
    file.seek(start)
    obj = _Restricted(file, encoding=encoding).load()
    _check(obj)
    return obj


def loads(data: bytes, encoding: str = "bytes") -> Any:
    return load(io.BytesIO(data), encoding=encoding)


def load_path(path: str | Path, encoding: str = "bytes") -> Any:
    """:func:`load` of a regular file of at most :data:`MAX_FILE_BYTES` (checked before reading)."""
    with V.open_regular_file("dataset file", path, MAX_FILE_BYTES,
                             "nasbench_lab.data.safe_pickle.MAX_FILE_BYTES") as fh:
        return load(fh, encoding=encoding)
