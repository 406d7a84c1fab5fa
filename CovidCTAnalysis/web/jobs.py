"""Analyses requested from the browser: one runs at a time in a background process, the others wait in order.

The browser app has one scene, like a Slicer session, and every page connected to the server sees it. An Analyze
click while an analysis runs (another reader's, or one's own) is queued, not lost: ``submit`` returns the request's
place, ``poll`` (called by the app's timer) follows the running one through ``AnalyzeLogic`` (the Analyze module's
logic: the same `covidct analyze --progress jsonl` process, the same loading of its outputs into the scene) and starts
the next when it has ended. ``cancel`` stops the running analysis (its whole process tree) or removes a waiting one.

Each analysis writes into its own folder ``OUTPUTS/runs/NNNN/`` (report.html and the other files the page offers for
download). It analyzes the CT file or folder the page opened (read, never modified), and its results go onto the
volume node that shows that CT.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..mrml.analyze_logic import AnalyzeLogic, AnalyzeParameters
from ..mrml.process import ProcessState


@dataclass
class Request:
    """One Analyze click: the CT (its file or folder, and the volume node showing it) and where its outputs go."""

    number: int
    source: Path
    volume: object
    name: str
    outdir: Path
    state: ProcessState = ProcessState.NOT_STARTED
    error: str = ""
    events: list = field(default_factory=list)


class AnalysisQueue:
    """First come, first served analyses over one ``AnalyzeLogic`` (see the module docstring)."""

    def __init__(self, logic: AnalyzeLogic, parameters: AnalyzeParameters, outputs: str | Path):
        self.logic = logic
        self.parameters = parameters
        self.runs = Path(outputs) / "runs"
        self.waiting: deque[Request] = deque()
        self.current: Request | None = None
        self.finished: Request | None = None  # the last request that ended (succeeded, failed or cancelled)
        existing = [int(p.name) for p in self.runs.glob("[0-9]" * 4)] if self.runs.is_dir() else []
        self._numbers = itertools.count(max(existing, default=0) + 1)

    def submit(self, source: Path | None, volume, name: str) -> Request:
        """Queue an analysis of the CT ``source`` shown by ``volume``; it starts at once when nothing runs."""
        if source is None or volume is None:
            raise ValueError("open a CT first (upload one, open a path, or load the demo CT)")
        number = next(self._numbers)
        request = Request(number, Path(source), volume, name, self.runs / f"{number:04d}")
        self.waiting.append(request)
        self._start_next()
        return request

    def position(self, request: Request) -> int:
        """0: running; n: n-th in the waiting line; -1: ended."""
        if request is self.current:
            return 0
        return next((i + 1 for i, r in enumerate(self.waiting) if r is request), -1)

    @property
    def running(self) -> bool:
        return self.current is not None

    def poll(self) -> list:
        """Follow the running analysis (its outputs are loaded into the scene when it succeeds); start the next."""
        events = []
        if self.current is not None:
            events = self.logic.poll()
            self.current.events += events
            if not self.logic.running:
                self._end(self.logic.state, self.logic.error_message)
        self._start_next()
        return events

    def cancel(self, request: Request | None = None) -> None:
        """Stop the running analysis (default) or drop a waiting one."""
        if request is not None and request in self.waiting:
            self.waiting.remove(request)
            request.state = ProcessState.CANCELLED
            return
        if self.current is not None and (request is None or request is self.current):
            self.logic.cancel()
            self._end(ProcessState.CANCELLED, "cancelled")

    def _end(self, state: ProcessState, error: str) -> None:
        self.current.state, self.current.error = state, error if state is not ProcessState.SUCCEEDED else ""
        self.finished, self.current = self.current, None

    def _start_next(self) -> None:
        while self.current is None and self.waiting:
            request = self.waiting.popleft()
            self.parameters.inputVolume = request.volume
            self.parameters.outputFolder = str(request.outdir)
            try:
                self.logic.start_file(self.parameters, request.source)
            except (ValueError, OSError) as exc:
                request.state, request.error = ProcessState.FAILED, str(exc)
                self.finished = request
                continue
            request.state = ProcessState.RUNNING
            self.current = request
