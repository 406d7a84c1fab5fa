"""Progress events and per-stage timings (docs/CONTRACTS.md: `{"stage": str, "progress": 0..1, "message": str}`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Receives one event: stage name, fraction done 0..1 within the stage, a human-readable message.
Emit = Callable[[str, float, str], None]
#: What a stage's work function calls to report its own progress.
StageProgress = Callable[[float, str], None]


class Progress:
    """Runs named stages, emitting start/progress/end events and recording wall-clock seconds per stage."""

    def __init__(self, emit: Emit | None = None):
        self._emit = emit or (lambda stage, fraction, message: None)
        self.timings_s: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[StageProgress]:
        start = time.perf_counter()
        self._emit(name, 0.0, message)

        def report(fraction: float, text: str) -> None:
            self._emit(name, min(max(float(fraction), 0.0), 1.0), text)

        yield report
        self.timings_s[name] = round(time.perf_counter() - start, 3)
        self._emit(name, 1.0, f"{name} done in {self.timings_s[name]:.1f} s")
