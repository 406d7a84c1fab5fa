"""Lazy public names of a classifier subpackage: importing the subpackage (as the table does to find ``system.py``)
must not import its networks, and so torch."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_getattr(package: str, where: dict) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``where[name]`` (a submodule) on first use of ``name``."""

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(f".{where[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
