"""One background `covidct` run on a volume node: the common part of every module's "Run" button.

Life cycle of a ``VolumeJob``:

1. ``start()`` writes a copy of the volume node to a temporary folder (the node is not touched), builds the command
   from that copy and an output folder, and starts it as a ``BackgroundProcess`` (injected: tests pass a fake);
   without a volume node (``None``: e.g. the generated demo CT) the command gets ``None`` as its input;
2. the GUI calls ``poll()`` from a timer: new progress events, the overall fraction and the stage title in
   ``tracker``; it never blocks;
3. when ``state`` is SUCCEEDED the module loads ``outdir`` into the scene; FAILED carries ``error_message`` (one
   line); ``cancel()`` kills the process tree and ends in CANCELLED;
4. ``cleanup()`` removes the temporary folder (outputs included unless a permanent ``outdir`` was given).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

from .process import BackgroundProcess, ProcessState, ProgressEvent, StageTracker, process_environment
from .volumes import write_volume_copy

#: Builds the command from (input copy or None, output folder). Aliases are evaluated when the module is imported:
#: they use typing's spelling (Optional), which Slicer 5.8's Python 3.9 understands, not ``Path | None``.
CommandBuilder = Callable[[Optional[Path], Path], Sequence[str]]
ProcessFactory = Callable[..., BackgroundProcess]


class VolumeJob:
    """A `covidct` command run in the background on a copy of a volume node (see the module docstring)."""

    def __init__(self, volume_node, build_command: CommandBuilder, *, outdir: str | Path | None = None,
                 stages: Sequence[str] | None = None, process_factory: ProcessFactory = BackgroundProcess,
                 input_name: str = "input.nrrd"):
        self.volume_node = volume_node
        self.build_command = build_command
        self.process_factory = process_factory
        self.input_name = input_name
        self._permanent_outdir = Path(outdir) if outdir else None
        self.workdir: Path | None = None
        self.outdir: Path | None = self._permanent_outdir
        self.process: BackgroundProcess | None = None
        self.tracker = StageTracker(stages) if stages is not None else StageTracker()

    @property
    def state(self) -> ProcessState:
        return self.process.state if self.process is not None else ProcessState.NOT_STARTED

    @property
    def running(self) -> bool:
        return self.state is ProcessState.RUNNING

    @property
    def error_message(self) -> str:
        return self.process.error_message if self.process is not None else ""

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("a VolumeJob runs once; create a new one")
        self.workdir = Path(tempfile.mkdtemp(prefix="covidct-slicer-"))
        try:
            source = None
            if self.volume_node is not None:
                source = write_volume_copy(self.volume_node, self.workdir / self.input_name)
            if self.outdir is None:
                self.outdir = self.workdir / "out"
            command = self.build_command(source, self.outdir)
            self.process = self.process_factory(command, env=process_environment())
            self.process.start()
        except BaseException:
            self.cleanup()
            raise

    def poll(self) -> list[ProgressEvent]:
        if self.process is None:
            return []
        events = self.process.poll()
        for event in events:
            self.tracker.update(event)
        if self.state is ProcessState.SUCCEEDED:
            self.tracker.fraction = 1.0
        return events

    def cancel(self) -> None:
        if self.process is not None:
            self.process.cancel()

    def cleanup(self) -> None:
        """Remove the temporary folder (a permanent ``outdir`` given by the caller is kept)."""
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self._permanent_outdir is None:
            self.outdir = None


class JobRunner:
    """At most one ``VolumeJob`` at a time, for a module's logic: the state the GUI shows and the loading hook.

    ``run(volume, build_command, on_success)`` starts a job; ``poll()`` forwards its events and, once the process
    succeeded, calls ``on_success(outdir)`` (which puts the outputs in the scene) before the temporary files go. An
    exception from ``on_success`` turns the state to FAILED with its message, so the user sees one clear line.
    """

    def __init__(self, process_factory: ProcessFactory = BackgroundProcess):
        self.process_factory = process_factory
        self.job: VolumeJob | None = None
        self.load_error = ""
        self._on_success: Callable[[Path], None] | None = None

    def run(self, volume_node, build_command: CommandBuilder, on_success: Callable[[Path], None], *,
            outdir: str | Path | None = None, stages: Sequence[str] | None = None) -> None:
        if self.running:
            raise ValueError("a run is already going on; cancel it first")
        self.load_error = ""
        self._on_success = on_success
        self.job = VolumeJob(volume_node, build_command, outdir=outdir, stages=stages,
                             process_factory=self.process_factory)
        self.job.start()

    @property
    def state(self) -> ProcessState:
        if self.load_error:
            return ProcessState.FAILED
        return self.job.state if self.job is not None else ProcessState.NOT_STARTED

    @property
    def running(self) -> bool:
        return self.state is ProcessState.RUNNING

    @property
    def error_message(self) -> str:
        return self.load_error or (self.job.error_message if self.job is not None else "")

    @property
    def progress(self) -> float:
        return self.job.tracker.fraction if self.job is not None else 0.0

    @property
    def stage_title(self) -> str:
        return self.job.tracker.title if self.job is not None else ""

    @property
    def stage_message(self) -> str:
        return self.job.tracker.message if self.job is not None else ""

    def poll(self) -> list[ProgressEvent]:
        if self.job is None:
            return []
        was_running = self.job.running
        events = self.job.poll()
        if was_running and not self.job.running:
            try:
                if self.job.state is ProcessState.SUCCEEDED:
                    try:
                        self._on_success(self.job.outdir)
                    except Exception as exc:  # noqa: BLE001 - shown to the user as one line
                        self.load_error = f"the results could not be loaded: {exc}"
            finally:
                self.job.cleanup()
        return events

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.job.cleanup()


class RunningLogic:
    """Base of the Slicer modules' logic classes: the GUI reads state and progress, and cancels, through these."""

    runner: JobRunner

    @property
    def state(self) -> ProcessState:
        return self.runner.state

    @property
    def running(self) -> bool:
        return self.runner.running

    @property
    def error_message(self) -> str:
        return self.runner.error_message

    @property
    def progress(self) -> float:
        return self.runner.progress

    @property
    def stage_title(self) -> str:
        return self.runner.stage_title

    @property
    def stage_message(self) -> str:
        return self.runner.stage_message

    def poll(self) -> list[ProgressEvent]:
        """New progress events; once the process succeeded the outputs are loaded (and temporary files removed)."""
        return self.runner.poll()

    def cancel(self) -> None:
        self.runner.cancel()
