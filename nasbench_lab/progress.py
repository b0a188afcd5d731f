"""Progress bars that read correctly wherever they run, including in a saved notebook.

``tqdm.auto`` draws an ipywidgets bar inside a Jupyter kernel. A saved notebook keeps that bar's
text form as it was when the bar appeared (0 %), and a reader without the widget state sees it
frozen there (issue 29). Inside a kernel the bar here is tqdm's plain text bar on stdout instead:
the output area rewrites it in place (``\\r``) and the notebook keeps its last line. Elsewhere
(a terminal, a script, a log) it is tqdm's usual bar on stderr.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.std import tqdm

#: seconds between two redraws of a bar inside a kernel (each is a message to the notebook)
KERNEL_MININTERVAL = 1.0


def in_kernel() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel attached)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return bool(get and getattr(get(), "kernel", None) is not None)


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``: a text bar to stdout in a kernel, tqdm's default elsewhere."""
    if in_kernel():
        kwargs.setdefault("file", sys.stdout)
        kwargs.setdefault("mininterval", KERNEL_MININTERVAL)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
    return tqdm(iterable, **kwargs)


def write(message: str) -> None:
    """A line printed above the running bars (``tqdm.write``), on the bars' stream."""
    tqdm.write(message, file=sys.stdout if in_kernel() else None)
