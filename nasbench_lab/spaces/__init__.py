"""Search spaces, looked up by name: ``nasbench_lab.spaces.get("nb201")``."""

from __future__ import annotations

import importlib
from functools import cache

from nasbench_lab import validation as V
from nasbench_lab.spaces.base import Arch, SearchSpace

# name -> (module, factory, kwargs); modules are imported on first use so that listing the
# spaces does not build any network code.
_REGISTRY: dict[str, tuple[str, str, dict]] = {
    "pooling": ("nasbench_lab.spaces.pooling", "PoolingSpace", {"variant": "resnet20"}),
    "pooling-resnet18": ("nasbench_lab.spaces.pooling", "PoolingSpace", {"variant": "resnet18"}),
    "pooling-resnet50": ("nasbench_lab.spaces.pooling", "PoolingSpace", {"variant": "resnet50"}),
    "nbmacro": ("nasbench_lab.spaces.nbmacro", "NBMacroSpace", {}),
    "nb201": ("nasbench_lab.spaces.nb201", "NB201Space", {}),
    "darts": ("nasbench_lab.spaces.darts", "DartsSpace", {}),
    "mobilenet": ("nasbench_lab.spaces.mobilenet", "MobileNetSpace", {"variant": "imagenet"}),
    "mobilenet-cifar": ("nasbench_lab.spaces.mobilenet", "MobileNetSpace", {"variant": "cifar"}),
    "autodeeplab": ("nasbench_lab.spaces.autodeeplab", "AutoDeepLabSpace", {}),
    "autodeeplab-l6": ("nasbench_lab.spaces.autodeeplab", "AutoDeepLabSpace", {"layers": 6, "name": "autodeeplab-l6"}),
    "autodeeplab-adl": ("nasbench_lab.spaces.autodeeplab", "AutoDeepLabSpace", {"cell": "adl",
                                                                                 "name": "autodeeplab-adl"}),
}


def names() -> list[str]:
    """Registered space names, in listing order."""
    return list(_REGISTRY)


def register(name: str, module: str, factory: str, **kwargs) -> None:
    """Register a space class (by module path) under ``name``."""
    _REGISTRY[name] = (module, factory, kwargs)
    _build.cache_clear()


def unregister(name: str) -> None:
    """Remove a space registered with :func:`register` (tests register throw-away variants)."""
    _REGISTRY.pop(name, None)
    _build.cache_clear()


def get(name: str) -> SearchSpace:
    """The search space registered under ``name`` (one shared instance per name)."""
    if isinstance(name, SearchSpace):  # tolerate an already-built space
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown search space {V.shorten(name)}; valid names: {', '.join(_REGISTRY)} (e.g. 'pooling')")
    return _build(name)


@cache
def _build(name: str) -> SearchSpace:
    module, factory, kwargs = _REGISTRY[name]
    return getattr(importlib.import_module(module), factory)(**kwargs)


def of(arch: Arch) -> SearchSpace:
    """The space an architecture belongs to."""
    return get(arch.space)


__all__ = ["Arch", "SearchSpace", "get", "names", "register", "unregister", "of"]
