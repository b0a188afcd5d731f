"""Checks for values that enter the package from outside (DESIGN.md, "Trust boundaries").

One home for "is this value acceptable here": configs (``TrainerConfig.validate``, the
differentiable config), method options checked against the method's signature, CLI flags
(argparse ``type=`` adapters in :data:`cli`), identifiers that become file names, output paths.
Every failure is a :class:`ValueError` that names the argument, says what was expected and gives
an example; a bad value is never replaced or clamped.

Example::

    lr = positive_number("lr", lr, example=0.05)
    check_fields(config)                    # every dataclass field against its annotation
    check_options(SamplerClass, {"beta": "hot"}, where="method_options")  # -> ValueError
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import numbers
import os
import re
import reprlib
import stat
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "FileRefused", "check_fields", "check_memory", "check_options", "check_type", "choice", "cli", "describe", "identifier", "integer",
    "integer_array", "default_of", "write_table",
    "json_object", "json_loads", "make_config", "number", "open_regular_file", "output_file", "positive_int",
    "read_regular_file",
    "positive_number", "run_id", "seed", "shorten", "nonnegative_int", "MAX_JSON_CHARS", "MAX_JSON_DEPTH",
]

_MISSING = object()


def _fail(name: str, expected: str, value: Any, example: Any = _MISSING) -> ValueError:
    eg = "" if example is _MISSING else f" (e.g. {name}={example!r})"
    return ValueError(f"{name}: expected {expected}, got {shorten(value)}{eg}")


# ----------------------------------------------------------------------------- echoing input
def _bounded_repr(limit: int) -> reprlib.Repr:
    r = reprlib.Repr()  # Python 3.10's Repr takes no keyword arguments
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset, r.maxfrozenset, r.maxdeque, r.maxarray = 3, *[8] * 7
    r.maxstring = r.maxlong = r.maxother = limit
    return r


def shorten(value: Any, limit: int = 80, *, quote: bool = True) -> str:
    """``repr(value)`` for an error message, about ``limit`` characters at most: a longer input is
    cut in the middle and its length said, ``'[1        ...       x' (120003 characters)``.
    ``quote=False`` cuts a text that is already a message (another error's) without quoting it.

    The one helper every message that quotes user input goes through, so an error line never
    echoes a 100,000-character argument whole. The work is bounded too: containers are abbreviated
    by :mod:`reprlib` (3 levels, 8 items each), so quoting a nested or self-sharing structure
    never walks all of it.
    """
    if isinstance(value, bytearray):
        value = bytes(value)
    if not quote:
        text = str(value)
        return text if len(text) <= limit else f"{text[:limit - 20]}...{text[-12:]} ({len(text)} characters)"
    if isinstance(value, str | bytes):
        n = len(value)
        if n <= limit:
            text = repr(value)
        else:
            q = 2 if isinstance(value, bytes) else 1  # b'...' or '...'
            return f"{repr(value[:limit - 20])[:-1]}...{repr(value[-12:])[q:]} ({n} characters)"
    else:
        text = _bounded_repr(limit).repr(value)
    if len(text) > limit + 20:  # escapes (a str of NULs) or a long abbreviation
        text = f"{text[:limit - 20]}...{text[-12:]} ({len(text)} characters of repr)"
    return text


# ----------------------------------------------------------------------------- scalars
def is_int(value: Any) -> bool:
    """An integer and not a bool (numpy integers count; 2.0 does not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(name: str, value: Any, *, min: int | None = None, max: int | None = None,
            example: Any = _MISSING, none: bool = False) -> int | None:
    """``value`` as an int in ``[min, max]``; None allowed only when ``none``."""
    if value is None and none:
        return None
    rng = (f" >= {min}" if max is None else f" in {min}..{max}") if min is not None else (
        f" <= {max}" if max is not None else "")
    what = ("a positive integer" if min == 1 and max is None else f"an integer{rng}") + (" or None" if none else "")
    if not is_int(value) or (min is not None and value < min) or (max is not None and value > max):
        raise _fail(name, what, value, example)
    return int(value)


def integer_array(name: str, values: Any) -> Any:
    """``values`` (a list or array) as an int64 numpy array; floats (3.7, and 3.0 too), bools and
    strings are an error, never truncated."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
        bad = next((v for v in arr.reshape(-1).tolist() if not is_int(v)), None) if arr.dtype.kind != "O" else next(
            (v for v in arr.reshape(-1) if not is_int(v)), None)
        raise ValueError(f"{name}: expected integers, got {arr.dtype} values such as {shorten(bad)}")
    return arr.astype(np.int64)


def positive_int(name: str, value: Any, example: Any = _MISSING, none: bool = False) -> int | None:
    return integer(name, value, min=1, example=example, none=none)


def nonnegative_int(name: str, value: Any, example: Any = _MISSING, none: bool = False) -> int | None:
    return integer(name, value, min=0, example=example, none=none)


#: seeds feed python, numpy, torch and scikit-learn (the train/val split's ``random_state``), and
#: scikit-learn takes 0..2**32-1: a larger seed would fail later, in its words
SEED_MAX = 2**32 - 1


def seed(name: str, value: Any) -> int:
    return integer(name, value, min=0, max=SEED_MAX, example=0)  # type: ignore[return-value]


def number(name: str, value: Any, *, min: float | None = None, max: float | None = None,
           min_open: bool = False, max_open: bool = False, example: Any = _MISSING,
           none: bool = False) -> float | None:
    """A finite real number in the interval given by ``min``/``max`` (open ends if asked)."""
    if value is None and none:
        return None
    lo = "" if min is None else ("(" if min_open else "[") + f"{min:g}"
    hi = "" if max is None else f"{max:g}" + (")" if max_open else "]")
    rng = f" in {lo or '(-inf'}, {hi or 'inf)'}" if (lo or hi) else ""
    if min == 0 and min_open and max is None:
        rng = " > 0"
    what = f"a finite number{rng}" + (" or None" if none else "")
    if not is_number(value) or not math.isfinite(float(value)):
        raise _fail(name, what, value, example)
    v = float(value)
    if min is not None and (v < min or (min_open and v == min)):
        raise _fail(name, what, value, example)
    if max is not None and (v > max or (max_open and v == max)):
        raise _fail(name, what, value, example)
    return v


def positive_number(name: str, value: Any, example: Any = _MISSING, none: bool = False) -> float | None:
    return number(name, value, min=0, min_open=True, example=example, none=none)


def choice(name: str, value: Any, options: Sequence[Any], example: Any = _MISSING) -> Any:
    if not isinstance(value, str | int | float | type(None)) or value not in options:
        eg = options[0] if example is _MISSING and options else example
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {shorten(value)} "
                         f"(e.g. {name}={eg!r})")
    return value


# ----------------------------------------------------------------------------- identifiers
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def identifier(name: str, value: Any, example: str = "20250101-120000-ab12cd") -> str:
    """A name that becomes a file or folder name: letters, digits, ``.``, ``_``, ``-``; it starts
    with a letter or digit (so never ``.``, ``..`` or a hidden file), at most 128 characters,
    no ``..`` inside, no separator: it cannot leave the folder it is placed in."""
    if not isinstance(value, str) or not _ID.fullmatch(value) or ".." in value:
        raise ValueError(f"{name}: expected 1-128 letters, digits, '.', '_' or '-' starting with a letter or "
                         f"digit (no '/', no '..'), got {shorten(value)} (e.g. {example!r})")
    return value


def run_id(value: Any, name: str = "run_id") -> str:
    """A run id: it names the folder ``<workspace>/checkpoints/<run_id>/``."""
    return identifier(name, value, "20250101-120000-ab12cd")


# ----------------------------------------------------------------------------- files
def output_file(name: str, path: str | os.PathLike, example: str = "results.csv") -> Path:
    """A file the caller will write later: checked now, before any work, so a long computation is
    never lost on a bad path. The folder must exist and be writable; the path must not be a folder."""
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise _fail(name, "a file path", path, example)
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{name}: {shorten(str(p))} is a folder; expected a file path such as {shorten(str(p / example))}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{name}: the folder {shorten(str(parent))} of {shorten(str(p))} does not exist; create it first or "
                         f"pick another path (e.g. {name} {example})")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{name}: {shorten(str(p))} is not writable (e.g. {name} {example})")
    return p


def write_table(name: str, df: Any, path: str | os.PathLike | None) -> bool:
    """Write ``df`` as CSV to ``path`` (checked earlier with :func:`output_file`) after the table
    was printed; a failure is reported on stderr and returns False instead of losing the results."""
    import sys

    if path is None:
        return True
    try:
        df.to_csv(path, index=False)
    except OSError as exc:
        print(f"{name}: could not write {str(path)!r} ({exc}); the table above is the result", file=sys.stderr)
        return False
    return True


#: JSON text from outside (``--options``, a run store's records): at most this many characters...
MAX_JSON_CHARS = 16 * 2**20
#: ...and nested at most this deep (job states and options are under 10 levels; Python's own
#: parser fails with a RecursionError near 1000, and consumers that recurse would too)
MAX_JSON_DEPTH = 100
# a string (closing quote optional, so an unterminated one ends the scan instead of being retried
# from every later quote: one left-to-right pass) or a bracket
_JSON_SCAN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


class JSONRefused(ValueError):
    """Raised by an ``object_pairs_hook`` of :func:`json_loads` to refuse a document as it is (its
    message reaches the caller unchanged)."""


def json_loads(name: str, text: Any, max_chars: int = MAX_JSON_CHARS, max_depth: int = MAX_JSON_DEPTH,
               object_pairs_hook: Any = None) -> Any:
    """``json.loads(text)`` with bounded work: the length and the nesting depth are checked first
    (one linear scan), so neither a 1 GB string nor ``[[[[...`` 100,000 deep reaches the parser;
    any failure is a ValueError naming ``name`` and the limit."""
    if not isinstance(text, str | bytes | bytearray):
        raise _fail(name, "JSON text", text)
    if len(text) > max_chars:
        raise ValueError(f"{name}: JSON text of {len(text)} characters; at most {max_chars} are read "
                         "(nasbench_lab.validation.MAX_JSON_CHARS)")
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{name}: JSON text is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    depth = 0
    for m in _JSON_SCAN.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > max_depth:
                raise ValueError(f"{name}: JSON nested more than {max_depth} levels deep (at character {m.start()}); "
                                 "at most nasbench_lab.validation.MAX_JSON_DEPTH levels are read")
        elif c in "]}":
            depth -= 1
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc.msg} at character {exc.pos}) in {shorten(text)}") from None
    except JSONRefused:
        raise
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise ValueError(f"{name}: not readable JSON ({shorten(str(exc))}) in {shorten(text)}") from None


def json_object(name: str, text: Any, example: str) -> dict[str, Any]:
    """A JSON object given as text (``--options``); ValueError naming the flag otherwise
    (bounded work: :func:`json_loads`)."""
    if isinstance(text, Mapping):
        return dict(text)
    if not isinstance(text, str):
        raise _fail(name, "a JSON object", text)
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:  # json.loads keeps the last one without a word
            raise JSONRefused(f"{name}: the key(s) {', '.join(map(repr, twice))} appear more than once in {shorten(text)}, "
                             f"and only the last would count; give each once (e.g. '{example}')")
        return dict(pairs)

    try:
        obj = json_loads(name, text, object_pairs_hook=unique)
    except JSONRefused:
        raise
    except ValueError as exc:
        raise ValueError(f"{exc}; expected an object such as '{example}'") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: expected a JSON object such as '{example}', got {shorten(text)}")
    return obj


class FileRefused(ValueError):
    """A file refused before reading: not a regular file, too large, or not readable."""


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a plain file"


def open_regular_file(name: str, path: str | os.PathLike, max_bytes: int, limit_name: str) -> BinaryIO:
    """``path`` opened for binary reading after checking, on the opened descriptor, that it is a
    regular file of at most ``max_bytes`` bytes (``limit_name``: the constant that sets the limit,
    for the message).

    Opened non-blocking and checked with ``os.fstat`` before a byte is read, so a FIFO, a device
    such as ``/dev/zero`` or a folder is a ValueError ("not a regular file"), never a hang or an
    endless read, and an oversized (or sparse 8 GB) file is refused up front; a missing file is a
    FileNotFoundError. ``name`` starts the message (e.g. ``"checkpoint"``); the other refusals are
    :class:`FileRefused` (a ValueError).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name} {path} does not exist") from None
    except IsADirectoryError:
        raise FileRefused(f"{name} {path} is a folder, not a file") from None
    except OSError as exc:
        raise FileRefused(f"{name} {path} cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileRefused(f"{name} {path} is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"{name} {path} is not a regular file (it is {_file_kind(st.st_mode)}); "
                             "only regular files are read")
        if st.st_size > max_bytes:
            raise FileRefused(f"{name} {path} is {st.st_size:,} bytes; files of at most {max_bytes:,} bytes are read "
                             f"({limit_name})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(name: str, path: str | os.PathLike, max_bytes: int, limit_name: str) -> bytes:
    """The bytes of ``path``, checked as in :func:`open_regular_file`; at most ``max_bytes`` are
    read even when the file grows meanwhile."""
    with open_regular_file(name, path, max_bytes, limit_name) as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise FileRefused(f"{name} {path} grew past {max_bytes:,} bytes while being read ({limit_name})")
    return raw


# ----------------------------------------------------------------------------- memory
def total_memory(device: Any) -> int | None:
    """Bytes of memory on ``device`` (a torch device or its name): the GPU's total for CUDA, the
    machine's physical memory otherwise; None when unknown."""
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(name: str, value: Any, need: int, device: Any, example: Any, what: str) -> None:
    """ValueError when ``need`` bytes (a lower bound of what ``name=value`` takes: ``what``) exceed the
    total memory of ``device``: a value that cannot fit is refused before anything is allocated
    (instead of swapping or running out of memory minutes later)."""
    total = total_memory(device)
    if total is not None and need > total:
        raise ValueError(f"{name}: {shorten(value)} needs at least {need / 2**30:,.1f} GiB ({what}); {device} has "
                         f"{total / 2**30:,.1f} GiB in all (e.g. {name}={example!r})")


# ----------------------------------------------------------------------------- values against annotations
def _resolve(hint: Any, globalns: Mapping[str, Any] | None) -> Any:
    if isinstance(hint, str):
        try:
            return eval(hint, dict(globalns or {}), {})  # noqa: S307 - our own annotations, not input
        except Exception:  # noqa: BLE001 - a TYPE_CHECKING-only name: no check
            return Any
    return hint


def describe(hint: Any) -> str:
    """``int | None`` -> "an integer or None" (for messages)."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return "anything"
    if hint is type(None) or hint is None:
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe(a) for a in typing.get_args(hint)))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    base = origin or hint
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string",
             complex: "a number"}
    if base in names:
        return names[base]
    if base in (list, tuple, Sequence) or (isinstance(base, type) and issubclass(base, list | tuple)):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if base in (dict, Mapping) or (isinstance(base, type) and issubclass(base, Mapping)):
        return "an object (mapping)"
    if isinstance(base, type):
        return f"a {base.__name__}"
    return str(hint)


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    base = origin or hint
    if base is bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"
    if base is int:
        return is_int(value)
    if base is float:
        return is_number(value) and math.isfinite(float(value))
    if base is complex:
        return isinstance(value, numbers.Number) and not isinstance(value, bool)
    if base is str:
        return isinstance(value, str)
    if base in (list, tuple, Sequence, set, frozenset):
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
            return False
        if base is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        elem = args[0] if args else Any
        return all(_matches(v, elem) for v in value)
    if base in (dict, Mapping):
        if not isinstance(value, Mapping):
            return False
        if len(args) == 2:
            return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        return True
    if base is Callable or origin is Callable or str(base).startswith("collections.abc.Callable"):
        return callable(value)
    if isinstance(base, type):
        return isinstance(value, base)
    return True  # a typing construct we do not check


def check_type(name: str, value: Any, hint: Any, example: Any = _MISSING,
               globalns: Mapping[str, Any] | None = None) -> None:
    """ValueError unless ``value`` fits the annotation ``hint`` (floats must be finite)."""
    hint = _resolve(hint, globalns)
    if not _matches(value, hint):
        raise _fail(name, describe(hint), value, example)


def check_fields(obj: Any, examples: Mapping[str, Any] | None = None) -> None:
    """Every field of a dataclass instance against its annotation (ValueError naming the field;
    the example is ``examples[name]``, else the field's default when it is not None)."""
    cls = type(obj)
    module = inspect.getmodule(cls)
    ns = vars(module) if module is not None else {}
    for f in dataclasses.fields(obj):
        example = (examples or {}).get(f.name, f.default)
        if example is dataclasses.MISSING or example is None:
            example = _MISSING
        check_type(f.name, getattr(obj, f.name), f.type, example, ns)


def default_of(cls: type, name: str) -> Any:
    """The default of a dataclass field (for the example in a message)."""
    f = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    return f.default if f.default is not dataclasses.MISSING else _MISSING


def make_config(cls: type, base: Any = None, overrides: Mapping[str, Any] | None = None, where: str = "") -> Any:
    """``cls(**base)`` or ``dataclasses.replace(base, **overrides)``, with unknown names a ValueError
    listing the valid ones (instead of a TypeError from the generated ``__init__``)."""
    valid = [f.name for f in dataclasses.fields(cls)]
    where = where or cls.__name__
    for given in (base if isinstance(base, Mapping) else {}, overrides or {}):
        if not isinstance(given, Mapping):
            raise _fail(where, "keyword options (a mapping)", given)
        unknown = sorted(str(k) for k in given if k not in valid)
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    if base is None:
        base = cls()
    elif isinstance(base, Mapping):
        base = cls(**base)
    elif not isinstance(base, cls):
        raise _fail(where, f"a {cls.__name__} or a dict of its fields", base)
    return dataclasses.replace(base, **dict(overrides or {}))


def _signature_hints(klass: type) -> tuple[dict[str, tuple[Any, Any]], bool]:
    """``{option: (annotation, default)}`` over ``__init__`` up the MRO while constructors forward
    ``**kwargs``; the flag says whether some constructor takes arbitrary keywords."""
    out: dict[str, tuple[Any, Any]] = {}
    for k in klass.__mro__:
        init = vars(k).get("__init__")
        if init is None:
            continue
        module = inspect.getmodule(k)
        ns = vars(module) if module is not None else {}
        params = list(inspect.signature(init).parameters.values())[1:]
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in out:
                out[p.name] = (_resolve(p.annotation, ns), p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return out, False
    return out, True


def check_options(klass: type, options: Mapping[str, Any], where: str = "options") -> None:
    """Types of keyword ``options`` against the annotations of ``klass``'s constructor.

    ``{"beta": "hot"}`` for ``beta: float = 0.95`` -> ``ValueError("method_options: beta: expected a
    finite number, got 'hot' (e.g. beta=0.95)")``. Unknown names are the caller's check (it knows
    which ones it sets itself); names without an annotation are not checked.
    """
    if not isinstance(options, Mapping):
        raise _fail(where, "an object of option -> value", options)
    hints, _ = _signature_hints(klass)
    for key, value in options.items():
        if key not in hints:
            continue
        hint, default = hints[key]
        example = default if default is not inspect.Parameter.empty and default is not None else _MISSING
        try:
            check_type(str(key), value, hint, example)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


# ----------------------------------------------------------------------------- argparse adapters
class _CLI:
    """``type=`` callables for argparse: the flag is named by argparse ("argument --lr: ...")."""

    @staticmethod
    def _wrap(check: Callable[[Any], Any], parse: Callable[[str], Any], what: str, example: str) -> Callable[[str], Any]:
        def convert(text: str) -> Any:
            try:
                value = parse(text)
                check(value)
            except (ValueError, TypeError, OverflowError):
                raise argparse.ArgumentTypeError(f"expected {what}, got {shorten(text)} (e.g. {example})") from None
            return value
        convert.__name__ = what
        return convert

    def positive_int(self, example: str = "10") -> Callable[[str], int]:
        return self._wrap(lambda v: positive_int("", v), int, "a positive integer", example)

    def nonnegative_int(self, example: str = "0") -> Callable[[str], int]:
        return self._wrap(lambda v: nonnegative_int("", v), int, "an integer >= 0", example)

    def positive_number(self, example: str = "0.05") -> Callable[[str], float]:
        return self._wrap(lambda v: positive_number("", v), float, "a finite positive number", example)

    def nonnegative_number(self, example: str = "0") -> Callable[[str], float]:
        return self._wrap(lambda v: number("", v, min=0), float, "a finite number >= 0", example)

    def seed(self) -> Callable[[str], int]:
        return self._wrap(lambda v: seed("", v), int, f"a seed >= 0 (an integer up to {SEED_MAX})", "0")


#: argparse adapters: ``parser.add_argument("--lr", type=cli.positive_number("0.05"))``
cli = _CLI()
