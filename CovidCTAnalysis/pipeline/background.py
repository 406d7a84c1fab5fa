"""Output files written on one background thread while the pipeline goes on computing.

Compressing a 512 x 512 x 300 float heatmap into .nrrd takes about a second, and ``covidct analyze`` writes one or
two per classifier plus the segmentations. SimpleITK's writer releases the GIL, so on a background thread those
seconds overlap the next stage's work. ``wait`` is called before anything reads the folder (the report); a write
that failed raises its error there, and the output folder is then discarded as for any failed run (outfolder.py).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable


class BackgroundWrites:
    """``writes(function, *args)`` queues one write; ``wait()`` returns when all are done (raising the first error)."""

    def __init__(self, pool: ThreadPoolExecutor):
        self._pool = pool
        self._pending: list[Future] = []

    def __call__(self, function: Callable, *args) -> None:
        self._pending.append(self._pool.submit(function, *args))

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()
