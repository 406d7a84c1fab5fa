"""The output folder of `covidct analyze` (pipeline/outfolder.py, issue 24): one run owns it, a failed or terminated
run removes only what it created, an earlier analysis is replaced as a whole and never mixed with a new one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.pipeline.outfolder import LOCK_NAME, OutputFolder


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: (p.read_text() if p.is_file() else "<dir>") for p in folder.iterdir()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_creates_the_folder_and_leaves_only_its_outputs(tmp_path):
    out = tmp_path / "new"
    with OutputFolder(out) as folder:
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        (folder.staging / "report.json").write_text("{}")
        folder.commit()
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_a_failed_run_removes_the_folder_it_created(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(RuntimeError), OutputFolder(out) as folder:
        (folder.staging / "lungs.seg.nrrd").write_text("partial")
        raise RuntimeError("a stage failed")
    assert not out.exists()


def test_a_failed_run_keeps_what_others_put_in_the_folder(tmp_path):
    """The folder existed with the user's file, and another (finished) writer left a file in it during the run."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(RuntimeError), OutputFolder(out) as folder:
        (folder.staging / "lungs.seg.nrrd").write_text("partial")
        raise RuntimeError("a stage failed")
    assert _listing(out) == {"notes.txt": "keep me"}
    created = tmp_path / "created"
    with pytest.raises(RuntimeError), OutputFolder(created):
        (created / "someone-elses.txt").write_text("not ours")
        raise RuntimeError("a stage failed")
    assert _listing(created) == {"someone-elses.txt": "not ours"}


def test_a_folder_locked_by_a_live_run_is_refused_and_untouched(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{os.getppid()}\n")  # a live process other than this one
    (out / ".covidct-abc").mkdir()  # its staging
    before = _listing(out)
    with pytest.raises(InputError, match="in use by another covidct run"):
        with OutputFolder(out):
            pass
    assert _listing(out) == before


def test_a_stale_lock_is_taken_over(tmp_path):
    """A run killed with SIGKILL left its lock and its half-written staging folder: both go."""
    out = tmp_path / "stale"
    out.mkdir()
    dead = _dead_pid()
    (out / LOCK_NAME).write_text(f"{dead}\n")
    (out / f".covidct-{dead}-abc").mkdir()
    (out / f".covidct-{dead}-abc" / "lungs.seg.nrrd").write_text("partial")
    with OutputFolder(out) as folder:
        (folder.staging / "report.json").write_text("{}")
        folder.commit()
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_an_earlier_analysis_is_replaced_as_a_whole(tmp_path):
    """The earlier run found a decovnet lesion; the new one does not write that file: it must not stay beside the
    new report. The user's own file stays."""
    out = tmp_path / "again"
    out.mkdir()
    earlier = ["heatmap-decovnet.nrrd", "localization-decovnet.seg.nrrd", "report.html", "report.json"]
    for name in earlier[:-1]:
        (out / name).write_text("earlier")
    (out / "report.json").write_text(json.dumps({"files": earlier}))
    (out / "notes.txt").write_text("keep me")
    with OutputFolder(out) as folder:
        for name in ("heatmap-decovnet.nrrd", "report.html", "report.json"):
            (folder.staging / name).write_text("new")
        folder.commit()
    assert _listing(out) == {"heatmap-decovnet.nrrd": "new", "report.html": "new", "report.json": "new",
                             "notes.txt": "keep me"}


def test_an_earlier_analysis_without_a_file_list_is_recognised_by_its_names(tmp_path):
    out = tmp_path / "older"
    out.mkdir()
    for name in ("report.json", "report.html", "lungs.seg.nrrd", "localization-decovnet.seg.nrrd", "notes.txt"):
        (out / name).write_text("{}" if name == "report.json" else "earlier")
    with OutputFolder(out) as folder:
        (folder.staging / "report.json").write_text("new")
        folder.commit()
    assert _listing(out) == {"report.json": "new", "notes.txt": "earlier"}


# -- through the real command ---------------------------------------------------------------------------------------
def _covidct(*args) -> list[str]:
    return [sys.executable, "-m", "CovidCTAnalysis", *map(str, args)]


def test_command_refuses_a_folder_in_use(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{os.getpid()}\n")
    proc = subprocess.run(_covidct("analyze", "--demo", "--demo-size", "64,64,32", "-o", out), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another covidct run" in lines[0] and str(out) in lines[0]
    assert _listing(out) == {LOCK_NAME: f"{os.getpid()}\n"}


def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    """`timeout` or a front end's cancel: one line, exit 143, the folder the run created is gone."""
    out = tmp_path / "terminated"
    proc = subprocess.Popen(_covidct("analyze", "--demo", "--demo-size", "112,112,56", "-o", out, "--device", "cpu"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(out.glob(".covidct-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines() == ["covidct: terminated"]
    assert not out.exists()


def test_command_replaces_an_earlier_analysis_and_keeps_the_users_files(tmp_path):
    """Issue 24 item 4 through the real command: the earlier run's decovnet localization must not stay beside a
    report that does not list it; every file the new report lists exists."""
    out = tmp_path / "again"
    out.mkdir()
    (out / "localization-decovnet.seg.nrrd").write_text("earlier")
    (out / "report.json").write_text(json.dumps({"files": ["localization-decovnet.seg.nrrd", "report.json"]}))
    (out / "notes.txt").write_text("keep me")
    proc = subprocess.run(_covidct("analyze", "--demo", "--demo-size", "112,112,56", "-o", out, "--device", "cpu",
                                   "--models", "decovnet"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    names = {p.name for p in out.iterdir()}
    assert names == set(report["files"]) | {"notes.txt"}, names
    assert (out / "notes.txt").read_text() == "keep me"
    if "localization-decovnet.seg.nrrd" in names:  # written anew by this run, not the earlier file
        assert (out / "localization-decovnet.seg.nrrd").read_bytes() != b"earlier"


def test_the_input_inside_the_folder_is_never_removed(tmp_path):
    """`covidct analyze demo-out/demo-ct.nrrd -o demo-out`: the earlier run listed demo-ct.nrrd, the new one reads
    it; replacing the earlier analysis must not delete the input."""
    out = tmp_path / "demo-out"
    out.mkdir()
    (out / "demo-ct.nrrd").write_text("the CT")
    (out / "report.json").write_text(json.dumps({"files": ["demo-ct.nrrd", "report.json"]}))
    with OutputFolder(out, keep=(out / "demo-ct.nrrd",)) as folder:
        (folder.staging / "report.json").write_text("new")
        folder.commit()
    assert _listing(out) == {"demo-ct.nrrd": "the CT", "report.json": "new"}
