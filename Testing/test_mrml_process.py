"""The background runner of the Slicer modules (CovidCTAnalysis.mrml.process): events, failure, cancel of a tree.

Small Python scripts stand in for `covidct` where a behaviour must be forced (a process that waits, one that starts
a child); the real command is used for the failure message of a bad input.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from CovidCTAnalysis.mrml.process import (
    BackgroundProcess,
    ProcessState,
    ProgressEvent,
    StageTracker,
    analyze_command,
    failure_message,
    process_environment,
)


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake_covidct.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; it only waits to be reaped
        return Path(f"/proc/{pid}/status").read_text(encoding="utf-8").split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _wait_for(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_events_are_parsed_and_other_lines_kept(tmp_path):
    command = _script(tmp_path, """
        import json
        print(json.dumps({"stage": "load", "progress": 0.0, "message": "reading"}))
        print("a line that is not an event")
        print(json.dumps({"stage": "load", "progress": 1.5, "message": "done"}))
        print(json.dumps({"stage": "lungs", "progress": 0.5, "message": "half"}))
    """)
    process = BackgroundProcess(command)
    process.start()
    events = process.wait(timeout_s=60)
    assert process.state is ProcessState.SUCCEEDED and process.returncode == 0
    assert events == [ProgressEvent("load", 0.0, "reading"), ProgressEvent("load", 1.0, "done"),
                      ProgressEvent("lungs", 0.5, "half")]
    assert process.output_lines == ["a line that is not an event"]


def test_poll_does_not_wait_for_a_running_process(tmp_path):
    gate = tmp_path / "gate"
    command = _script(tmp_path, f"""
        import json, pathlib, time
        print(json.dumps({{"stage": "load", "progress": 0.0, "message": "waiting"}}), flush=True)
        while not pathlib.Path({str(gate)!r}).exists():
            time.sleep(0.02)
    """)
    process = BackgroundProcess(command)
    process.start()
    assert _wait_for(lambda: process._events.qsize() > 0)
    assert process.poll() == [ProgressEvent("load", 0.0, "waiting")]
    assert process.poll() == [] and process.state is ProcessState.RUNNING  # returned while the script waits
    gate.touch()
    process.wait(timeout_s=60)
    assert process.state is ProcessState.SUCCEEDED


def test_failure_gives_the_commands_one_line_message(tmp_path):
    command = _script(tmp_path, """
        import sys
        print("some warning", file=sys.stderr)
        print("covidct: error: scan.nii: not a 3-D CT (2 dimensions)", file=sys.stderr)
        sys.exit(2)
    """)
    process = BackgroundProcess(command)
    process.start()
    process.wait(timeout_s=60)
    assert process.state is ProcessState.FAILED and process.returncode == 2
    assert process.error_message == "scan.nii: not a 3-D CT (2 dimensions)"


def test_failure_message_fallbacks():
    assert failure_message(["Traceback ...", "ValueError: boom"], 1) == "ValueError: boom"
    assert failure_message(["covidct: internal error: KeyError: 'x'"], 1) == "internal error: KeyError: 'x'"
    assert failure_message([], 137) == "the analysis process ended with exit status 137"


@pytest.mark.skipif(os.name == "nt", reason="process groups are POSIX; Windows uses taskkill /T")
def test_cancel_kills_the_whole_process_tree(tmp_path):
    pids = tmp_path / "pids"
    command = _script(tmp_path, f"""
        import os, pathlib, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pathlib.Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
    """)
    process = BackgroundProcess(command)
    process.start()
    assert _wait_for(lambda: pids.exists() and len(pids.read_text(encoding="utf-8").split()) == 2)
    parent, child = (int(v) for v in pids.read_text(encoding="utf-8").split())
    assert _alive(parent) and _alive(child)
    process.cancel()
    assert process.state is ProcessState.CANCELLED
    assert _wait_for(lambda: not _alive(parent) and not _alive(child))


def test_real_command_bad_input_fails_with_clear_message(tmp_path):
    missing = tmp_path / "no-such-ct.nii.gz"
    process = BackgroundProcess(analyze_command(missing, tmp_path / "out", python=sys.executable),
                                env=process_environment())
    process.start()
    process.wait(timeout_s=120)
    assert process.state is ProcessState.FAILED and process.returncode == 2
    assert str(missing) in process.error_message
    assert "\n" not in process.error_message and "Traceback" not in process.error_message
    assert not (tmp_path / "out").exists()


def test_stage_tracker_is_monotonic_and_names_stages():
    tracker = StageTracker()
    assert tracker.update(ProgressEvent("load", 0.0, "")) == 0.0
    halfway_lungs = tracker.update(ProgressEvent("lungs", 0.5, "x"))
    assert halfway_lungs == pytest.approx(1.5 / 5)
    assert tracker.update(ProgressEvent("load", 1.0, "late")) == pytest.approx(halfway_lungs)  # never backwards
    assert tracker.title == "Reading the CT"
    tracker.update(ProgressEvent("report", 1.0, "done"))
    assert tracker.fraction == pytest.approx(1.0)


def test_stage_tracker_inserts_demo_stage():
    tracker = StageTracker()
    tracker.update(ProgressEvent("demo", 1.0, ""))
    assert tracker.stages[0] == "demo" and tracker.fraction == pytest.approx(1 / 6)


def test_environment_puts_the_package_on_the_path():
    env = process_environment({"PYTHONPATH": "/somewhere"})
    first, second = env["PYTHONPATH"].split(os.pathsep)[:2]
    assert (Path(first) / "CovidCTAnalysis" / "__init__.py").is_file() and second == "/somewhere"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_analyze_command_matches_the_contract(tmp_path):
    command = analyze_command(tmp_path / "ct.nrrd", tmp_path / "out", device="cpu", models="decovnet",
                              python="PY")
    assert command == ["PY", "-m", "CovidCTAnalysis", "analyze", str(tmp_path / "ct.nrrd"), "-o",
                       str(tmp_path / "out"), "--device", "cpu", "--models", "decovnet", "--progress", "jsonl"]
    demo = analyze_command(None, tmp_path / "out", demo_size=(64, 64, 32), python="PY")
    assert demo[3:7] == ["analyze", "--demo", "--demo-size", "64,64,32"]
