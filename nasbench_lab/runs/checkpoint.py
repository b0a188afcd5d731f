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
a crash mid-write leaves the previous checkpoint intact.

Unsigned files (a bare torch zip: format 1, written before integrity digests existed, or a
format-2 file stripped of its header) are refused unless the caller asks for them with
``load(path, allow_unsigned=True)`` (``Run.resume(path, allow_unsigned=True)``); they still load
with ``weights_only=True``. A header of a newer format version says so, with the versions this
code reads.

Bounded work (issue 23). The digest guards against damage, not against whoever writes the file
(anyone can write a matching one), so loading bounds its work on any input: only a regular
file of at most :data:`MAX_CHECKPOINT_BYTES` is read (checked with ``os.fstat`` first); the
pickle's opcodes are scanned before torch unpickles them (:func:`~nasbench_lab.data.safe_pickle.scan`:
no dict key whose hash would visit more than :data:`MAX_KEY_ITEMS` items); what loaded is
measured as a tree with a memo keyed by ``id()`` (:func:`~nasbench_lab.data.safe_pickle.measure`:
no cycle, at most :data:`MAX_DEPTH` containers deep and :data:`MAX_ITEMS` items, no tensor view
with more elements than its storage holds); and the Arch/deque decoding keeps a memo too, so a
container shared a million times is decoded once.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import pickle
import random
import re
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasbench_lab import validation as V
from nasbench_lab.data import safe_pickle
from nasbench_lab.spaces.base import Arch

#: the format version this code writes; it reads this one and (unsigned, when asked) version 1
VERSION = 2
FORMAT = f"nasbench_lab.checkpoint/{VERSION}"
LEGACY_FORMATS = ("nasbench_lab.checkpoint/1",)
MAGIC = f"NASBENCH-LAB-CKPT/{VERSION}\n".encode()
_DIGEST_LEN = 64
_ANY_MAGIC = re.compile(rb"NASBENCH-LAB-CKPT/(\d{1,9})\n")
_FORMAT_TAG = re.compile(r"nasbench_lab\.checkpoint/(\d{1,9})")

#: a checkpoint file larger than this is refused before it is read (a supernet with its optimizer
#: state is tens of MB; raise it here for a larger network)
MAX_CHECKPOINT_BYTES = 2 << 30
#: containers nested deeper than this are refused (the package's job states are under 10 deep)
MAX_DEPTH = 64
#: items a checkpoint may hold counted as a tree, shared parts every time they occur (job states
#: of long runs hold a few hundred thousand; tensors count as one)
MAX_ITEMS = 50_000_000
#: items a dict key may hold (an architecture record is under 100)
MAX_KEY_ITEMS = 10_000

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
    stack: list[tuple[Any, str, int]] = [(obj, where, 0)]
    seen: set[int] = set()
    while stack:
        value, path, depth = stack.pop()
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
            if depth >= MAX_DEPTH:  # load would refuse it (and saving it would recurse)
                raise ValueError(f"{path}: nested more than {MAX_DEPTH} containers deep; checkpoints hold at most "
                                 "nasbench_lab.runs.checkpoint.MAX_DEPTH levels")
            if isinstance(value, dict):
                for k, v in value.items():
                    if not _plain_key(k):
                        raise ValueError(f"{path}: key {V.shorten(k)} is a {t.__name__} key of type "
                                         f"{type(k).__name__}; checkpoints hold only plain keys (str, int, tuples "
                                         "of them)")
                    stack.append((v, f"{path}[{V.shorten(k, 40)}]" if not isinstance(k, str) else f"{path}.{k}",
                                  depth + 1))
            else:
                stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
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


_DECODED = (tuple, list, set, dict, collections.OrderedDict, collections.Counter)


def _decode(x: Any, where: str, memo: dict[int, tuple[Any, bool]] | None = None) -> tuple[Any, bool]:
    """``x`` with every tagged record rebuilt (an Arch, a deque); the flag says whether anything
    changed. ``memo`` (keyed by ``id()``) decodes each shared container once and keeps it shared:
    a structure that shares one list 2^40 times is 40 calls, not 2^40. The recursion is as deep
    as the nesting, which :func:`load` bounds by :data:`MAX_DEPTH` first."""
    t = type(x)
    if t not in _DECODED:
        return x, False
    memo = {} if memo is None else memo
    key = id(x)
    if key in memo:
        return memo[key]
    memo[key] = out = _decode_container(x, t, where, memo)
    return out


def _decode_container(x: Any, t: type, where: str, memo: dict[int, tuple[Any, bool]]) -> tuple[Any, bool]:
    if t is tuple and len(x) == 4 and x[0] == ARCH_TAG:
        _, space, genes, text = x
        from nasbench_lab import spaces

        if not (isinstance(space, str) and isinstance(genes, tuple) and isinstance(text, str)):
            raise ValueError(f"{where}: a damaged architecture record {V.shorten(x, 200)}")
        try:
            arch = spaces.get(space).arch(genes)
        except ValueError as exc:
            raise ValueError(f"{where}: a damaged architecture record ({exc})") from None
        return arch, True
    if t is tuple and len(x) == 3 and x[0] == DEQUE_TAG:
        if not isinstance(x[1], list) or not (x[2] is None or (isinstance(x[2], int) and x[2] >= 0)):
            raise ValueError(f"{where}: a damaged deque record")
        return collections.deque((_decode(v, where, memo)[0] for v in x[1]), maxlen=x[2]), True
    if t in (dict, collections.OrderedDict, collections.Counter):
        items = [(_decode(k, where, memo), _decode(v, where, memo)) for k, v in x.items()]
        if not any(kc or vc for (_, kc), (_, vc) in items):
            return x, False
        out = t()
        out.update((k, v) for (k, _), (v, _) in items)
        if hasattr(x, "_metadata"):
            out._metadata = x._metadata
        return out, True
    items = [_decode(v, where, memo) for v in x]
    if not any(c for _, c in items):
        return x, False
    return t(v for v, _ in items), True


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


def _version_note(version: int) -> str:
    return (f"format version {version}, newer than this code reads (version {VERSION}; version 1 unsigned with "
            "allow_unsigned=True): update nasbench_lab to load it")


def _scan_zip(path: Path, body: bytes) -> None:
    """The torch zip's pickle scanned before torch unpickles it (module docstring)."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            infos = z.infolist()
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:  # torch.save stores; no decompression bomb
                    raise ValueError(f"checkpoint {path} holds a compressed entry {V.shorten(info.filename)}; "
                                     "torch.save writes none, so it is not a checkpoint of this package")
            for info in infos:
                if info.filename.endswith("data.pkl"):
                    with z.open(info) as fh:
                        safe_pickle.scan(fh, f"checkpoint {path}", max_key_items=MAX_KEY_ITEMS, max_depth=MAX_DEPTH)
    except safe_pickle.UnsafePickleError as exc:
        raise ValueError(f"{exc}; the file is refused") from None
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged zip or pickle: what torch.load would say too
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: "
                         f"{V.shorten(exc, 300, quote=False)})") from None


def _check_loaded_value(value: Any, where: str) -> None:
    if isinstance(value, torch.Tensor) and value.numel():
        # a view with more elements than its storage holds (stride 0: shape 10^12 over 4 bytes) would
        # make every consumer that reads it element by element run for hours
        if value.numel() * value.element_size() > value.untyped_storage().nbytes():
            raise safe_pickle.UnsafePickleError(
                f"{where} is a tensor of shape {tuple(value.shape)} with strides {value.stride()} over "
                f"{value.untyped_storage().nbytes()} bytes (an overlapping view); refused")
    elif isinstance(value, np.ndarray) and value.size and not value.dtype.itemsize:
        raise safe_pickle.UnsafePickleError(f"{where} is a numpy array of {value.size:,} items of 0 bytes; refused")


def check_step(path: str | os.PathLike, data: dict[str, Any], total: int) -> int:
    """The step a run checkpoint records, checked against the job's ``total`` steps: the payload's
    ``step`` and the job state's ``step_count`` are integers in ``0..total`` (a negative step or
    one past the total is a ValueError naming the file, never resumed)."""
    steps = {"step": data.get("step")}
    if isinstance(data.get("job"), dict) and "step_count" in data["job"]:
        steps["job.step_count"] = data["job"]["step_count"]
    for key, value in steps.items():
        if value is None and key == "step":
            continue
        if not V.is_int(value) or not 0 <= value <= max(int(total), 0):
            raise ValueError(f"checkpoint {path}: {key} is {V.shorten(value)}; a run of {total} steps has a step "
                             f"in 0..{total}; the file is refused")
    return int(steps.get("job.step_count", steps["step"]) or 0)


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu",
         expect: dict[str, Any] | None = None, allow_unsigned: bool = False) -> dict[str, Any]:
    """Read a checkpoint; ``expect`` maps keys (e.g. ``space``) to required values.

    ``allow_unsigned=True`` also reads a file without the integrity header (format 1, or a
    stripped one); without it such a file is refused. Raises FileNotFoundError, or ValueError
    with the path and what is wrong (not a regular file, too large, not a checkpoint, a newer
    format, unsigned, truncated or altered, holding objects that are not data or structures
    beyond the bounds in the module docstring, written for another run).
    """
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"checkpoint: expected a file path, got {V.shorten(path)}")
    path = Path(path)
    raw = V.read_regular_file("checkpoint", path, MAX_CHECKPOINT_BYTES,
                              "nasbench_lab.runs.checkpoint.MAX_CHECKPOINT_BYTES")
    magic = _ANY_MAGIC.match(raw[:32])
    if magic is not None and int(magic[1]) != VERSION:
        version = int(magic[1])
        if version > VERSION:
            raise ValueError(f"checkpoint {path} is a nasbench_lab checkpoint of {_version_note(version)}")
        raise ValueError(f"checkpoint {path} has the header of format version {version}, which never existed "
                         f"(this code reads version {VERSION}); the file is damaged")
    if magic is not None:
        head = len(MAGIC) + _DIGEST_LEN + 1
        stored, body = raw[len(MAGIC):head - 1], raw[head:]
        if len(raw) < head or raw[head - 1:head] != b"\n" or hashlib.sha256(body).hexdigest().encode() != stored:
            raise ValueError(f"checkpoint {path} is truncated or corrupt: the SHA-256 of its content does not match "
                             "the digest written with it (the file was damaged or changed after it was saved)")
    elif raw.startswith(b"PK"):
        if not allow_unsigned:
            raise ValueError(f"checkpoint {path} is unsigned: a bare torch zip without the "
                             f"{MAGIC[:-1].decode()!r} integrity header (a format-1 file written before digests, "
                             "or a file stripped of its header); refused. If you trust where it came from, load it "
                             "with checkpoint.load(path, allow_unsigned=True) or Run.resume(path, allow_unsigned=True)")
        body = raw  # format 1: a bare torch zip without a digest
    else:
        raise ValueError(f"{path} is not a nasbench_lab checkpoint (neither the {MAGIC[:-1].decode()!r} header "
                         "nor a torch zip file)")
    del raw
    _scan_zip(path, body)
    try:
        with _numpy_allowed():
            data = torch.load(io.BytesIO(body), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        why = next((ln for ln in first if "GLOBAL" in ln or "Unsupported" in ln), first[0] if first else "")
        raise ValueError(f"checkpoint {path} holds something that is not data and was refused "
                         f"(weights_only=True): {why.strip()[:300]}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as exc:
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {str(exc)[:300]})") from None
    try:
        safe_pickle.measure(data, f"checkpoint {path}", max_items=MAX_ITEMS, max_depth=MAX_DEPTH,
                            leaf=_check_loaded_value)
    except safe_pickle.UnsafePickleError as exc:
        raise ValueError(f"{exc}; the file is refused") from None
    tag = data.get("format") if isinstance(data, dict) else None
    newer = _FORMAT_TAG.fullmatch(tag) if isinstance(tag, str) else None
    if newer is not None and int(newer[1]) > VERSION:
        raise ValueError(f"checkpoint {path} is a nasbench_lab checkpoint of {_version_note(int(newer[1]))}")
    if not isinstance(data, dict) or tag not in (FORMAT, *LEGACY_FORMATS):
        raise ValueError(f"{path} is not a nasbench_lab checkpoint (format tag {FORMAT!r} missing)")
    data, _ = _decode(data, f"checkpoint {path}")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint {path} is corrupt: 'meta' is a {type(meta).__name__}, expected a dict")
    for key, want in (expect or {}).items():
        got = meta.get(key, data.get(key))
        if want is not None and got != want:
            raise ValueError(f"checkpoint {path} was written for {key}={V.shorten(got)}, but this run has "
                             f"{key}={want!r}")
    return data
