"""nasbench_lab: an interactive Neural Architecture Search workbench.

The engine (everything but ``nasbench_lab.widgets``) works in plain scripts; the Jupyter layer is
imported on first use of ``nasbench_lab.widgets`` so the engine never pulls in ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {"widgets", "spaces", "benchmarks", "data", "training", "runs", "viz", "metrics", "methods",
         "search", "proxies", "differentiable", "config"}

#: functions at the top level, imported on first use: ``nl.export(run_id, folder)``, ``nl.load_exported(folder)``
_FUNCTIONS = {"export": "nasbench_lab.exporter", "load_exported": "nasbench_lab.exporter"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"nasbench_lab.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'nasbench_lab' has no attribute {name!r}")


__all__ = sorted(_LAZY | set(_FUNCTIONS))
