"""Atomic, integrity-checked checkpoints that load as data, never as code.

File layout (format 2)::

    b"NASBENCH-LAB-CKPT/2\\n" + <64 hex digits: SHA-256 of the payload> + b"\\n" + payload

where ``payload`` is ``torch.save`` of a dict. Loading checks the digest first (a flipped or
missing byte is a ValueError naming the file), then unpickles with ``torch.load(weights_only=True)``
(DESIGN.md, "Trust boundaries"): only tensors, plain Python data (None, bool, int, float, complex,
str, bytes, list, tuple, set, dict, OrderedDict, Counter), ``torch.Size``/dtype/device and numpy
arrays and scalars of non-object dtypes are reconstructed; any other global in the file is
refused, so a planted ``__reduce__`` cannot run.

Architectures (:class:`~nasbench_lab.spaces.Arch`, the package's own immutable value: a space
name, integer genes and the canonical text) are plain data too: they are written as the tagged
tuple ``("nasbench_lab.Arch", space, genes, text)`` and rebuilt through their space on load
(so a damaged one is an error), wherever they sit in the state (strategies keep them as dict
keys, in populations and queues); a ``collections.deque`` likewise becomes
``("collections.deque", items, maxlen)``.

Saving checks the rule first (:func:`check_plain`), so a job whose state holds an object that
would not load back (a numpy ``Generator``, a lambda, a module) fails at save time with the key
path of the offending value (``checkpoint.job.sampler.rng: numpy.random...Generator is not plain
data``) instead of producing a checkpoint nobody can resume.

A checkpoint is written to a temporary file in the same folder and renamed over the target, so
a crash mid-write leaves the previous checkpoint intact. Files of format 1 (a bare torch zip,
written before integrity digests existed) still load, with ``weights_only=True`` but no digest.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import pickle
import random
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasbench_lab.spaces.base import Arch

FORMAT = "nasbench_lab.checkpoint/2"
LEGACY_FORMATS = ("nasbench_lab.checkpoint/1",)
MAGIC = b"NASBENCH-LAB-CKPT/2\n"
_DIGEST_LEN = 64

_np_core = getattr(np, "_core", None) or np.core  # numpy >= 2 moved numpy.core to numpy._core

#: what numpy arrays and scalars need to be rebuilt from a protocol-2 pickle (torch.save's
#: protocol): ``_reconstruct(ndarray, (0,), b'b')`` + ``ndarray.__setstate__``, ``dtype(...)``,
#: ``scalar(dtype, bytes)``. None of them calls user code; object arrays are refused on save.
NUMPY_GLOBALS: list[Any] = [_np_core.multiarray._reconstruct, np.ndarray, np.dtype, _np_core.multiarray.scalar]
# numpy >= 2 gives each dtype its own class, and torch's BUILD step on the rebuilt dtype only
# accepts allowlisted classes: the plain (non-object) ones are listed, nothing else
NUMPY_GLOBALS += sorted({type(np.dtype(c)) for c in "?bhilqBHILQefdgFDGSU"} - {np.dtype}, key=str)

_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes, bytearray)
_PLAIN_CONTAINERS = (dict, collections.OrderedDict, collections.Counter, list, tuple, set)
_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
_NUMPY_KINDS = set("biufcSU")  # bool, ints, floats, complex, bytes and str arrays; never object "O"


def rng_state() -> dict[str, Any]:
    """Global RNG states of python, numpy and torch (and CUDA when present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    # random.setstate needs tuples all the way down (a legacy loader may hand back lists)
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def seed_everything(seed: int) -> None:
    """One seed for python, numpy and torch (the per-run generators are seeded separately)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise ValueError (with the key path) when ``obj`` holds anything ``load`` would refuse."""
    stack: list[tuple[Any, str]] = [(obj, where)]
    seen: set[int] = set()
    while stack:
        value, path = stack.pop()
        t = type(value)
        if t in _PLAIN_SCALARS or t in _TENSOR_TYPES or t in (torch.Size, torch.dtype, torch.device):
            continue
        if isinstance(value, np.ndarray | np.generic) and t.__module__ == "numpy":
            if value.dtype.kind not in _NUMPY_KINDS or value.dtype.fields is not None:
                raise ValueError(f"{path}: a numpy {'array' if isinstance(value, np.ndarray) else 'scalar'} of dtype "
                                 f"{value.dtype} is not plain data; checkpoints hold numbers, strings and tensors "
                                 "(convert it, e.g. to a list)")
            continue
        if t in _PLAIN_CONTAINERS:
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, dict):
                for k, v in value.items():
                    if not _plain_key(k):
                        raise ValueError(f"{path}: key {k!r} is a {t.__name__} key of type {type(k).__name__}; "
                                         "checkpoints hold only plain keys (str, int, tuples of them)")
                    stack.append((v, f"{path}[{k!r}]" if not isinstance(k, str) else f"{path}.{k}"))
            else:
                stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
            continue
        raise ValueError(f"{path}: {t.__module__}.{t.__qualname__} is not plain data, so the checkpoint could not be "
                         "loaded back with weights_only=True; keep job state as tensors, numbers, strings, lists and "
                         "dicts (e.g. str(arch) instead of an Arch, rng.bit_generator.state instead of a Generator)")


ARCH_TAG = "nasbench_lab.Arch"
DEQUE_TAG = "collections.deque"


def _encode(x: Any) -> tuple[Any, bool]:
    """``x`` with every Arch replaced by its tagged tuple; the flag says whether anything changed
    (unchanged containers are returned as they are, keeping e.g. a state dict's ``_metadata``)."""
    if type(x) is Arch:
        return (ARCH_TAG, x.space, tuple(int(g) for g in x.genes), x.text), True
    t = type(x)
    if t is collections.deque:
        return (DEQUE_TAG, [_encode(v)[0] for v in x], x.maxlen), True
    if t in (dict, collections.OrderedDict, collections.Counter):
        items = [(_encode(k), _encode(v)) for k, v in x.items()]
        if not any(kc or vc for (_, kc), (_, vc) in items):
            return x, False
        out = t()
        out.update((k, v) for (k, _), (v, _) in items)
        if hasattr(x, "_metadata"):
            out._metadata = x._metadata
        return out, True
    if t in (list, tuple, set):
        items = [_encode(v) for v in x]
        if not any(c for _, c in items):
            return x, False
        return t(v for v, _ in items), True
    return x, False


def _decode(x: Any, where: str) -> tuple[Any, bool]:
    t = type(x)
    if t is tuple and len(x) == 4 and x[0] == ARCH_TAG:
        _, space, genes, text = x
        from nasbench_lab import spaces

        if not (isinstance(space, str) and isinstance(genes, tuple) and isinstance(text, str)):
            raise ValueError(f"{where}: a damaged architecture record {x!r:.200}")
        try:
            arch = spaces.get(space).arch(genes)
        except ValueError as exc:
            raise ValueError(f"{where}: a damaged architecture record ({exc})") from None
        return arch, True
    if t is tuple and len(x) == 3 and x[0] == DEQUE_TAG:
        if not isinstance(x[1], list) or not (x[2] is None or (isinstance(x[2], int) and x[2] >= 0)):
            raise ValueError(f"{where}: a damaged deque record")
        return collections.deque((_decode(v, where)[0] for v in x[1]), maxlen=x[2]), True
    if t in (dict, collections.OrderedDict, collections.Counter):
        items = [(_decode(k, where), _decode(v, where)) for k, v in x.items()]
        if not any(kc or vc for (_, kc), (_, vc) in items):
            return x, False
        out = t()
        out.update((k, v) for (k, _), (v, _) in items)
        if hasattr(x, "_metadata"):
            out._metadata = x._metadata
        return out, True
    if t in (list, tuple, set):
        items = [_decode(v, where) for v in x]
        if not any(c for _, c in items):
            return x, False
        return t(v for v, _ in items), True
    return x, False


def _plain_key(k: Any) -> bool:
    return type(k) in _PLAIN_SCALARS or (type(k) is tuple and all(_plain_key(v) for v in k))


def save(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format tag and global RNG states) atomically to ``path``."""
    path = Path(path)
    data, _ = _encode({"format": FORMAT, "rng": rng_state(), **payload})
    check_plain(data)
    buf = io.BytesIO()
    torch.save(data, buf)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC + digest + b"\n")
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


#: torch's safe_globals adds to and removes from one process-wide list: a thread leaving it would
#: take the numpy globals from a thread still loading (which then refused a good file)
_SAFE_GLOBALS_LOCK = threading.Lock()


@contextlib.contextmanager
def _numpy_allowed():
    with _SAFE_GLOBALS_LOCK, torch.serialization.safe_globals(NUMPY_GLOBALS):
        yield


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu",
         expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint; ``expect`` maps keys (e.g. ``space``) to required values.

    Raises FileNotFoundError, or ValueError with the path and what is wrong (not a checkpoint,
    truncated or altered, holding objects that are not data, written for another run).
    """
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"checkpoint: expected a file path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"checkpoint {path} cannot be read ({exc})") from exc
    if raw.startswith(MAGIC):
        head = len(MAGIC) + _DIGEST_LEN + 1
        stored, body = raw[len(MAGIC):head - 1], raw[head:]
        if len(raw) < head or raw[head - 1:head] != b"\n" or hashlib.sha256(body).hexdigest().encode() != stored:
            raise ValueError(f"checkpoint {path} is truncated or corrupt: the SHA-256 of its content does not match "
                             "the digest written with it (the file was damaged or changed after it was saved)")
    elif raw.startswith(b"PK"):
        body = raw  # format 1: a bare torch zip without a digest
    else:
        raise ValueError(f"{path} is not a nasbench_lab checkpoint (neither the {MAGIC[:-1].decode()!r} header "
                         "nor a torch zip file)")
    try:
        with _numpy_allowed():
            data = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        why = next((ln for ln in first if "GLOBAL" in ln or "Unsupported" in ln), first[0] if first else "")
        raise ValueError(f"checkpoint {path} holds something that is not data and was refused "
                         f"(weights_only=True): {why.strip()[:300]}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {str(exc)[:300]})") from None
    if not isinstance(data, dict) or data.get("format") not in (FORMAT, *LEGACY_FORMATS):
        raise ValueError(f"{path} is not a nasbench_lab checkpoint (format tag {FORMAT!r} missing)")
    data, _ = _decode(data, f"checkpoint {path}")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint {path} is corrupt: 'meta' is a {type(meta).__name__}, expected a dict")
    for key, want in (expect or {}).items():
        got = meta.get(key, data.get(key))
        if want is not None and got != want:
            raise ValueError(f"checkpoint {path} was written for {key}={got!r}, but this run has {key}={want!r}")
    return data
