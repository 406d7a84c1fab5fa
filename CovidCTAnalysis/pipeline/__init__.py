"""Analyze one CT: named stages with progress events and timings, outputs written atomically, a report."""

from .analyze import AnalyzeOptions, analyze
from .progress import Progress

__all__ = ["AnalyzeOptions", "Progress", "analyze"]
