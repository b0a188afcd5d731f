"""CIFAR-10/100 from a local folder in the standard python-pickle format, optional download.

Layouts (as distributed by https://www.cs.toronto.edu/~kriz/cifar.html):

- ``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``, ``batches.meta``
- ``cifar-100-python/``: ``train``, ``test``, ``meta``

Each batch is a pickled dict with ``data`` (uint8, N x 3072 rows in CHW order: 1024 red, 1024
green, 1024 blue) and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100). Pickle can run code:
only read folders you trust (the official archive is checked by MD5 on download).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from nasbench_lab import validation as V
from nasbench_lab.data import safe_pickle


@dataclass(frozen=True)
class CifarSpec:
    name: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    url: str
    md5: str

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        "cifar10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
        "batches.meta", "labels", "label_names", 10,
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": CifarSpec(
        "cifar100", "cifar-100-python", ("train",), "test", "meta", "fine_labels", "fine_label_names", 100,
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
    ),
}


def locate(spec: CifarSpec, root: str | os.PathLike) -> Path:
    """The dataset folder: ``root/<folder>``, or ``root`` itself when it already is that folder."""
    root = Path(root).expanduser()
    if root.name == spec.folder or (root / spec.meta_file).exists():
        return root
    return root / spec.folder


def _missing(folder: Path, spec: CifarSpec) -> list[str]:
    # exists(), not is_file(): a FIFO or a device in its place is "not a regular file" when read
    return [f for f in spec.files if not (folder / f).exists()]


def _load_pickle(path: Path) -> object:
    """The one place a CIFAR file is unpickled (bytes keys, as Python 2 wrote the originals); data
    only: no global outside numpy arrays, bounded work, a regular file of at most
    :data:`~nasbench_lab.data.safe_pickle.MAX_FILE_BYTES` (:mod:`~nasbench_lab.data.safe_pickle`)."""
    return safe_pickle.load_path(path, encoding="bytes")


def _unpickle(path: Path, spec: CifarSpec) -> dict:
    try:
        obj = _load_pickle(path)
    except (FileNotFoundError, V.FileRefused) as exc:  # not there, or not a regular file of a sane size
        raise type(exc)(f"{spec.name}: {exc}") from None
    except Exception as exc:  # truncated or not a pickle at all
        raise ValueError(
            f"{spec.name}: {path} is not a readable CIFAR pickle ({type(exc).__name__}: {V.shorten(exc, 300, quote=False)}); "
            f"delete the folder and download it again"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{spec.name}: {path} holds a {type(obj).__name__}, expected a dict")
    # Official files have bytes keys (pickled by Python 2); files written by Python 3 have str keys.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(path: Path, spec: CifarSpec) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path, spec)
    if "data" not in d or spec.label_key not in d:
        raise ValueError(
            f"{spec.name}: {path} lacks the keys 'data' and {spec.label_key!r} (found {sorted(d)})"
        )
    data = np.asarray(d["data"])
    labels = V.integer_array(f"{spec.name}: {path}: {spec.label_key}", d[spec.label_key])
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8 or len(labels) != len(data):
        raise ValueError(
            f"{spec.name}: {path}: expected uint8 data of shape (N, 3072) and N labels, got "
            f"{data.dtype} {data.shape} and {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(f"{spec.name}: {path}: labels outside 0..{spec.num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


@lru_cache(maxsize=2)
def _read_cached(folder: str, name: str, stamp: tuple[int, ...]) -> tuple:
    spec = SPECS[name]
    path = Path(folder)
    parts = [_read_batch(path / f, spec) for f in spec.train_files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    tx, ty = _read_batch(path / spec.test_file, spec)
    meta = _unpickle(path / spec.meta_file, spec)
    names = meta.get(spec.names_key)
    if names is None or len(names) != spec.num_classes:
        raise ValueError(
            f"{spec.name}: {path / spec.meta_file} lacks {spec.names_key!r} with {spec.num_classes} names"
        )
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    for a in (x, y, tx, ty):
        a.setflags(write=False)  # shared by the cache
    return x, y, tx, ty, classes


def read(name: str, root: str | os.PathLike, download: bool = False,
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(train_x, train_y, test_x, test_y, classes)``; images uint8 NCHW."""
    spec = SPECS[name]
    folder = locate(spec, root)
    missing = _missing(folder, spec)
    if missing and download:
        fetch(spec, folder.parent)
        folder = locate(spec, root)
        missing = _missing(folder, spec)
    if missing:
        raise FileNotFoundError(
            f"{spec.name}: {folder} is missing {', '.join(missing)}; expected the python-pickle "
            f"folder {spec.folder}/ with {', '.join(spec.files)}. Point root= (on the command line: "
            f"--data-root DIR) at the folder that contains {spec.folder}/, e.g. --data-root ~/data/{spec.name}, "
            f"or fetch it with download=True in Python ({spec.url})"
        )
    return _read_cached(str(folder.resolve()), name, _stamp(folder, spec))


#: bytes hashed at each end of every file for the cache key (:func:`_stamp`)
_STAMP_BYTES = 4096


def _stamp(folder: Path, spec: CifarSpec) -> tuple:
    """The cache key of a folder's files: for each, inode, size, mtime, ctime and a SHA-256 of its
    first and last 4 KiB.

    mtime alone is not enough: ``os.utime`` (``touch -r``, ``cp -p``, ``rsync -t``) sets it back, so a
    folder rewritten with the old mtimes was served from the cache. ctime is what changes: every
    write and every rename updates it to the current time, and no call can set it back. A
    replacement renamed into place has a new inode. The head and tail hash covers a rewrite within
    the kernel's timestamp granularity (a few ms on some file systems), where the labels and the
    filenames sit; it costs 8 KiB read per file, nothing next to reading the folder.
    """
    out = []
    for f in spec.files:
        with V.open_regular_file(f"{spec.name}:", folder / f, safe_pickle.MAX_FILE_BYTES,
                                 "nasbench_lab.data.safe_pickle.MAX_FILE_BYTES") as fh:
            st = os.fstat(fh.fileno())
            h = hashlib.sha256(fh.read(_STAMP_BYTES))
            if st.st_size > _STAMP_BYTES:
                fh.seek(max(st.st_size - _STAMP_BYTES, _STAMP_BYTES))
                h.update(fh.read(_STAMP_BYTES))
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, h.hexdigest()))
    return tuple(out)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")  # refuses absolute paths and links out of dest
            return
        for m in tar.getmembers():  # older Pythons: the same guard by hand
            target = (dest / m.name).resolve()
            if not (m.isfile() or m.isdir()) or dest.resolve() not in (target, *target.parents):
                raise ValueError(f"refusing to extract {m.name!r} from {archive}")
        tar.extractall(dest)


def fetch(spec: CifarSpec, root: Path, url: str | None = None, md5: str | None = None,
          timeout: float = 60.0) -> Path:
    """Download the official archive into ``root``, check its MD5, extract it; the folder."""
    url = url or spec.url
    md5 = md5 or spec.md5
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = Path(tmp) / Path(url).name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(archive, "wb") as out:
                shutil.copyfileobj(resp, out, length=1 << 20)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"{spec.name}: could not download {url} ({exc}). Download it by hand and extract it "
                f"into {root} (it must contain {spec.folder}/), then call again without download=True"
            ) from None
        got = _md5(archive)
        if got != md5:
            raise ValueError(f"{spec.name}: checksum mismatch for {url}: md5 {got}, expected {md5}")
        _extract(archive, Path(tmp))
        extracted = Path(tmp) / spec.folder
        if not extracted.is_dir():
            raise ValueError(f"{spec.name}: the archive {url} has no {spec.folder}/ folder")
        target = root / spec.folder
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(extracted), target)
    return target
