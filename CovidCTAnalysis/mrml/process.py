"""Run `covidct` in a background process and follow it without blocking: the Slicer modules' process runner.

Life cycle of a ``BackgroundProcess``: ``start()`` launches the command in its own process group (session);
two reader threads move its output into memory as it arrives (stdout: progress events, one JSON object per line, as
``--progress jsonl`` prints them; stderr: kept for the error message); the GUI calls ``poll()`` from a timer and
gets the new events without ever waiting; ``cancel()`` kills the whole process tree (the group on POSIX,
``taskkill /T`` on Windows), so worker processes die with it. When the process has ended and its output is read,
``state`` says succeeded, failed (``error_message``: one line, the command's own ``covidct: error: ...`` when it
printed one) or cancelled.

No Qt and no Slicer here: the same runner serves the Slicer modules, tests and scripts.
"""

from __future__ import annotations

import collections
import enum
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The stages `covidct analyze` reports, in order ("demo" only for --demo runs).
ANALYZE_STAGES = ("demo", "load", "lungs", "lesions", "classifiers", "report")
STAGE_TITLES = {
    "demo": "Generating the demo CT",
    "load": "Reading the CT",
    "lungs": "Segmenting the lungs",
    "lesions": "Segmenting lesions",
    "classifiers": "Running classifiers",
    "report": "Writing the report",
}


@dataclass(frozen=True)
class ProgressEvent:
    """One progress event of docs/CONTRACTS.md: stage name, fraction 0..1 within the stage, message."""

    stage: str
    progress: float
    message: str

    @classmethod
    def parse(cls, line: str) -> ProgressEvent | None:
        """The event on one stdout line, or None when the line is not an event."""
        try:
            data = json.loads(line)
            return cls(str(data["stage"]), min(max(float(data["progress"]), 0.0), 1.0), str(data.get("message", "")))
        except (ValueError, KeyError, TypeError):
            return None


class ProcessState(enum.Enum):
    NOT_STARTED = "not started"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StageTracker:
    """Overall progress 0..1 and the current stage's title, from a stream of events (never goes backwards)."""

    def __init__(self, stages: Sequence[str] = ANALYZE_STAGES[1:]):
        self.stages = list(stages)
        self.fraction = 0.0
        self.stage = ""
        self.message = ""

    def update(self, event: ProgressEvent) -> float:
        if event.stage not in self.stages:
            # a stage we did not expect (e.g. "demo" before "load"): insert it where we are now
            position = self.stages.index(self.stage) + 1 if self.stage in self.stages else 0
            self.stages.insert(position, event.stage)
        index = self.stages.index(event.stage)
        self.fraction = max(self.fraction, (index + event.progress) / len(self.stages))
        self.stage, self.message = event.stage, event.message
        return self.fraction

    @property
    def title(self) -> str:
        return STAGE_TITLES.get(self.stage, self.stage)


class BackgroundProcess:
    """A command running in the background (see the module docstring for the life cycle)."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 stderr_lines: int = 200):
        self.command = [str(c) for c in command]
        self.env = env
        self.cwd = None if cwd is None else str(cwd)
        self.state = ProcessState.NOT_STARTED
        self.returncode: int | None = None
        self.error_message = ""
        self.output_lines: list[str] = []  # stdout lines that were not events
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._events: queue.Queue = queue.Queue()
        self._process: subprocess.Popen | None = None
        self._readers: list[threading.Thread] = []
        self._cancel_requested = False
        self._lock = threading.Lock()

    # -- life cycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.state is not ProcessState.NOT_STARTED:
            raise RuntimeError("a BackgroundProcess runs once; create a new one")
        kwargs = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            kwargs["start_new_session"] = True  # own process group: cancel kills the whole tree
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env, cwd=self.cwd, text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs)
        self.state = ProcessState.RUNNING
        self._readers = [
            threading.Thread(target=self._read_stdout, name="covidct-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="covidct-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self.state is ProcessState.RUNNING

    def poll(self) -> list[ProgressEvent]:
        """New progress events since the last call (never blocks); updates ``state`` when the process has ended."""
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        if self.state is ProcessState.RUNNING and self._process.poll() is not None \
                and not any(r.is_alive() for r in self._readers):
            self._finish()
            while not self._events.empty():
                events.append(self._events.get_nowait())
        return events

    def wait(self, timeout_s: float | None = None, interval_s: float = 0.05) -> list[ProgressEvent]:
        """Poll until the process ended (or ``timeout_s`` passed: then cancel it); all events seen."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        events = []
        while True:
            events += self.poll()
            if self.state is not ProcessState.RUNNING:
                return events
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                return events + self.poll()
            time.sleep(interval_s)

    def cancel(self, grace_s: float = 3.0) -> None:
        """Stop the process and every process it started; the state becomes CANCELLED once the output is read."""
        if self._process is None or self.state is not ProcessState.RUNNING:
            return
        self._cancel_requested = True
        _kill_tree(self._process, grace_s)
        for reader in self._readers:
            reader.join(timeout=grace_s)
        self.poll()

    # -- internals ------------------------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        for line in self._process.stdout:
            event = ProgressEvent.parse(line)
            if event is not None:
                self._events.put(event)
            elif line.strip():
                with self._lock:
                    self.output_lines.append(line.rstrip("\n"))
        self._process.stdout.close()

    def _read_stderr(self) -> None:
        for line in self._process.stderr:
            if line.strip():
                with self._lock:
                    self._stderr.append(line.rstrip("\n"))
        self._process.stderr.close()

    @property
    def stderr(self) -> list[str]:
        with self._lock:
            return list(self._stderr)

    def _finish(self) -> None:
        self.returncode = self._process.wait()
        if self._cancel_requested:
            self.state = ProcessState.CANCELLED
            self.error_message = "cancelled"
        elif self.returncode == 0:
            self.state = ProcessState.SUCCEEDED
        else:
            self.state = ProcessState.FAILED
            self.error_message = failure_message(self.stderr, self.returncode)


def failure_message(stderr: Sequence[str], returncode: int) -> str:
    """One clear line: the command's own 'covidct: ...' line (prefix removed), else its last stderr line."""
    for line in reversed(stderr):
        text = line.strip()
        if text.startswith("covidct:"):
            text = text[len("covidct:"):].strip()
            return text[len("error:"):].strip() if text.startswith("error:") else text
    for line in reversed(stderr):
        if line.strip():
            return line.strip()
    return f"the analysis process ended with exit status {returncode}"


def _kill_tree(process: subprocess.Popen, grace_s: float) -> None:
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False)
        return
    try:
        group = os.getpgid(process.pid)
    except ProcessLookupError:
        group = process.pid  # the leader is gone; its group id was its pid (start_new_session)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(group):
            return
    # SIGKILL sent; the group is gone or about to be


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member we may not signal still exists
        return True


# -- commands ---------------------------------------------------------------------------------------------------------
def package_root() -> Path:
    """The folder that contains the CovidCTAnalysis package (put on the background process's PYTHONPATH)."""
    return Path(__file__).resolve().parents[2]


def python_executable() -> str:
    """Slicer's own Python launcher (PythonSlicer) when there is one, else this interpreter."""
    here = Path(sys.executable).parent
    for candidate in (here / "PythonSlicer", here / "PythonSlicer.exe"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("PythonSlicer") or sys.executable


def process_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the background process: this one plus the package on PYTHONPATH, unbuffered output."""
    env = dict(os.environ if base is None else base)
    paths = [str(package_root())] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def covidct_command(*args: str | Path, python: str | None = None) -> list[str]:
    """``python -m CovidCTAnalysis ARGS``: the `covidct` command run by a given interpreter."""
    return [python or python_executable(), "-m", "CovidCTAnalysis", *[str(a) for a in args]]


def analyze_command(input_path: str | Path | None, outdir: str | Path, *, device: str = "auto",
                    models: str = "all", demo_size: Sequence[int] | None = None,
                    python: str | None = None) -> list[str]:
    """`covidct analyze INPUT -o OUTDIR --device D --models M --progress jsonl` (``input_path`` None: --demo)."""
    source = ["--demo"] if input_path is None else [str(input_path)]
    if input_path is None and demo_size is not None:
        source += ["--demo-size", ",".join(str(int(v)) for v in demo_size)]
    return covidct_command("analyze", *source, "-o", outdir, "--device", device, "--models", models,
                           "--progress", "jsonl", python=python)
