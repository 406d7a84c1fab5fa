"""Shipped models: the registry of weights (name, version, sha256, input spec, card) and device choice."""

from .device import select_device
from .registry import ModelEntry, Registry, load_registry

__all__ = ["ModelEntry", "Registry", "load_registry", "select_device"]
