"""The classifier table: registered classifier name -> its subpackage, imported only when it is used.

A classifier is runnable when the registry lists it with task ``classification`` and this package holds its
subpackage (the name with ``-`` written ``_``) with a ``system.py``. The registry gives what a front end shows
(version, ``title``, ``paper``, ``explanation``); the subpackage's ``CLASSIFIER`` class gives the inputs it accepts
and whether it needs the lung mask. Importing this module, listing classifiers or asking what they accept loads
neither torch nor weights.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .interface import SLICE, VOLUME, Classifier

TASK = "classification"


@dataclass(frozen=True)
class ClassifierInfo:
    """What the Slicer panel and ``covidct models`` show about one runnable classifier."""

    name: str
    version: str
    title: str
    paper: str
    explanation: str
    inputs: tuple[str, ...]
    needs_lungs: bool


def module_name(name: str) -> str:
    """Import path of classifier ``name``'s system module."""
    return f"{__package__}.{name.replace('-', '_')}.system"


def _has_system(name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name(name)) is not None
    except ModuleNotFoundError:  # no such subpackage
        return False


def _registry(registry: Any):
    from ..models.registry import Registry, load_registry

    return registry if isinstance(registry, Registry) else load_registry(registry)


def classifier_names(registry: Any = None) -> list[str]:
    """Names of the runnable classifiers, in registry order."""
    return [name for name in _registry(registry).available(TASK) if _has_system(name)]


def classifier_class(name: str) -> type[Classifier]:
    """The ``CLASSIFIER`` class of ``name`` (its subpackage is imported now; torch still is not)."""
    if not _has_system(name):
        raise InputError(None, f"model {name} is not available in this version")
    return importlib.import_module(module_name(name)).CLASSIFIER


def runnable_classifiers(registry: Any = None) -> list[ClassifierInfo]:
    """Every runnable classifier with its title, paper, explanation kind and the inputs it accepts.

    ``registry``: a registry.json path or a loaded Registry (None: the default one).
    """
    reg = _registry(registry)
    out = []
    for name in classifier_names(reg):
        entry, cls = reg.get(name), classifier_class(name)
        out.append(ClassifierInfo(name=name, version=entry.version, title=entry.title or name,
                                  paper=entry.paper or "", explanation=entry.explanation or "",
                                  inputs=tuple(cls.inputs), needs_lungs=bool(cls.needs_lungs)))
    return out


def refusal(name: str, ct) -> str | None:
    """None when classifier ``name`` can run on ``ct`` (a CTVolume), else the one-line reason it cannot."""
    if not _has_system(name):
        return f"model {name} is not available in this version"
    inputs = classifier_class(name).inputs
    if ct.is_2d and SLICE not in inputs:
        return f"{name} classifies volumes (a CT or a slice stack), not a single 2-D slice"
    if not ct.is_2d and VOLUME not in inputs:
        return f"{name} classifies single 2-D slices, not volumes"
    return None


def load_classifier(name: str, device: Any, registry: Any = None) -> Classifier:
    """Classifier ``name`` with its registered weights on ``device`` (each system caches what it loads)."""
    return classifier_class(name).load(device, registry)
