"""Real CIFAR-10 for tests and measurements, decoded once per machine and cached.

``../shared/data/cifar10/cifar10-jpeg.npz`` (beside the repository root, as on CI) holds the 60,000
real images as JPEG bytes; ``../shared/tools/cifar10-folder DEST`` writes the standard python-pickle
folder from it (about 10 s, needs Pillow). Decoding that on every test would cost minutes, so
:func:`cifar10_root` writes it once into a cache folder keyed by the npz's size and modification
time and returns that folder on every later call, in this process and in later test sessions.

The folder is written into a temporary sibling and renamed into place, so a second process (two
pytest workers, a notebook next to the tests) never sees a half-written folder: whoever renames
first wins and the loser's copy is deleted. A user's clone has no ``../shared``: the caller skips
with the reason :func:`unavailable` gives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
NPZ = SHARED / "data" / "cifar10" / "cifar10-jpeg.npz"
TOOL = SHARED / "tools" / "cifar10-folder"
FOLDER = "cifar-10-batches-py"
FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")


def cache_dir() -> Path:
    """``$NASBENCH_LAB_DATA_CACHE``, else ``$XDG_CACHE_HOME/nasbench_lab``, else ``~/.cache/nasbench_lab``."""
    if os.environ.get("NASBENCH_LAB_DATA_CACHE"):
        return Path(os.environ["NASBENCH_LAB_DATA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nasbench_lab"


def unavailable() -> str | None:
    """Why real CIFAR-10 cannot be written here (None when it can)."""
    if not NPZ.is_file():
        return f"real CIFAR-10 not available: {NPZ} is absent (a clone without ../shared)"
    if not TOOL.is_file():
        return f"real CIFAR-10 not available: {TOOL} is absent"
    try:
        import PIL  # noqa: F401  (the tool decodes the JPEGs with Pillow)
    except ImportError:
        return "real CIFAR-10 needs Pillow to decode the JPEGs: pip install -e '.[dev]'"
    return None


def _complete(root: Path) -> bool:
    return all((root / FOLDER / f).is_file() for f in FILES)


@cache
def cifar10_root() -> Path:
    """A folder holding ``cifar-10-batches-py/`` with all 60,000 real images (written once)."""
    why = unavailable()
    if why:
        raise FileNotFoundError(why)
    st = NPZ.stat()
    final = cache_dir() / f"cifar10-{st.st_size}-{st.st_mtime_ns}"
    if _complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".cifar10-writing-", dir=final.parent))
    try:
        subprocess.run([sys.executable, str(TOOL), str(tmp), "--npz", str(NPZ)], check=True,
                       capture_output=True, text=True)
        if not _complete(tmp):
            raise RuntimeError(f"{TOOL} finished but {tmp / FOLDER} lacks some of {', '.join(FILES)}")
        try:
            os.rename(tmp, final)  # atomic: readers see no folder or a complete one
        except OSError:
            if not _complete(final):  # not a lost race: a damaged cache folder
                raise RuntimeError(f"{final} exists but lacks some of {', '.join(FILES)}; delete it") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
