"""`covidct serve` checks its options before anything is created and before the web app is built: a bad one is one
line naming it, exit status 2, no traceback, and no output folder left behind.

The refusals run with stand-ins for the web extra's modules (trame, trame-slicer, slicer-core), so they are tested
where the extra is not installed (Python 3.9) too; a check that let the bad option through would reach the app, which
cannot be built from the stand-ins, and exit 1. The port actually bound is checked with the real extra (skipped
without it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

#: `covidct` with empty modules in place of the web extra (the options are all checked before the app is built)
WITH_STAND_INS = ("import sys, types; sys.modules.update({m: types.ModuleType(m) for m in ('trame', 'trame_slicer', "
                  "'slicer')}); from CovidCTAnalysis.cli import main; sys.exit(main(sys.argv[1:]))")


def serve(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITH_STAND_INS, "serve", "--port", "0", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The one error line of a refusal (exit 2), which contains every one of ``words``."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("covidct: error: ") and all(w in line for w in words), line
    return line


@pytest.fixture()
def folders(tmp_path):
    """(data folder with one file in it, an existing file, the folder everything lives in)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "ct.nii.gz").write_bytes(b"not opened by these tests")
    afile = tmp_path / "afile.txt"
    afile.write_text("a file, not a folder")
    return data, afile, tmp_path


def entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_an_existing_file_as_outputs_is_refused(folders):
    data, afile, root = folders
    before = entries(root)
    refused(serve("--data", data, "--outputs", afile), f"{afile}: is a file; --outputs must be a folder")
    assert entries(root) == before and afile.read_text() == "a file, not a folder"


@contextmanager
def unwritable(folder: Path):
    """``folder`` made unwritable: read-only permission bits, or (as root, which ignores them) immutable."""
    folder.mkdir()
    as_root = getattr(os, "geteuid", lambda: 1)() == 0
    chattr = shutil.which("chattr")
    if as_root and chattr:
        made = subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0
    else:
        folder.chmod(0o555)
        made = True
    try:
        try:
            (folder / "probe").mkdir()
            (folder / "probe").rmdir()
            made = False
        except OSError:
            pass
        if not made:
            pytest.skip(f"{folder} cannot be made unwritable here (root without chattr, or a file system without it)")
        yield folder
    finally:
        if as_root and chattr:
            subprocess.run([chattr, "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


def test_outputs_under_an_unwritable_folder_is_refused(folders):
    data, _, root = folders
    with unwritable(root / "locked") as locked:
        line = refused(serve("--data", data, "--outputs", locked / "out"), f"{locked / 'out'}: cannot be written")
        assert str(locked) in line and not (locked / "out").exists()
        refused(serve("--data", data, "--outputs", locked), f"{locked}: cannot be written")
        assert entries(locked) == []


def test_a_host_that_does_not_resolve_is_refused_before_anything_is_created(folders):
    data, _, root = folders
    refused(serve("--data", data, "--outputs", root / "out", "--host", "no.such.host.invalid"),
            "no.such.host.invalid: --host cannot be resolved")
    assert not (root / "out").exists()


def test_an_address_of_another_machine_is_refused(folders):
    data, _, root = folders
    refused(serve("--data", data, "--outputs", root / "out", "--host", "192.0.2.1"),  # TEST-NET-1: never local
            "cannot listen on 192.0.2.1 port 0")
    assert not (root / "out").exists()


def test_a_port_in_use_is_refused(folders):
    import socket

    data, _, root = folders
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-c", WITH_STAND_INS, "serve", "--data", str(data), "--outputs",
                               str(root / "out"), "--port", str(port)], capture_output=True, text=True, timeout=120)
    refused(proc, f"cannot listen on 127.0.0.1 port {port}", "choose another --port")
    assert not (root / "out").exists()


def test_unknown_models_are_refused_as_analyze_refuses_them(folders):
    data, _, root = folders
    for models in ("nope", "slice-resnet,nope", "lungs-classic", ","):
        analyze = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "analyze", "--demo", "-o",
                                  root / "analysis", "--models", models], capture_output=True, text=True, timeout=120)
        assert analyze.returncode == 2, analyze.stderr
        assert refused(serve("--data", data, "--outputs", root / "out", "--models", models)) == analyze.stderr.strip()
    assert not (root / "out").exists() and not (root / "analysis").exists()


def test_a_file_as_data_is_refused_as_a_file(folders):
    _, afile, root = folders
    refused(serve("--data", afile, "--outputs", root / "out"), f"{afile}: is a file; --data must be a folder")
    assert not (root / "out").exists()


def test_outputs_inside_the_data_folder_is_refused(folders):
    data, _, root = folders
    before = entries(data)
    refused(serve("--data", data, "--outputs", data / "out"), f"{data / 'out'}: lies inside the input folder")
    refused(serve("--data", data, "--outputs", data / "out" / "deeper"), "lies inside the input folder")
    refused(serve("--data", data, "--outputs", data), f"{data}: is the input itself")
    refused(serve("--data", ".", "--outputs", "out", cwd=data), "out: lies inside the input folder")
    assert entries(data) == before


def test_the_default_outputs_folder_in_the_data_folder_is_allowed(folders):
    """`covidct serve` with no options (--data . --outputs covidct-web) passes the checks: the stand-ins stop it at
    the app (exit 1), after every option was accepted."""
    data, _, _ = folders
    proc = subprocess.run([sys.executable, "-c", WITH_STAND_INS, "serve", "--port", "0"], capture_output=True,
                          text=True, timeout=120, cwd=data)
    assert proc.returncode == 1 and "covidct: internal error" in proc.stderr, proc.stderr
    assert not (data / "covidct-web").exists()
    below = data / "case"  # started below the data folder: the default ./covidct-web is inside it, and allowed
    below.mkdir()
    proc = subprocess.run([sys.executable, "-c", WITH_STAND_INS, "serve", "--port", "0", "--data", ".."],
                          capture_output=True, text=True, timeout=120, cwd=below)
    assert proc.returncode == 1 and "covidct: internal error" in proc.stderr, proc.stderr


def test_port_0_announces_and_writes_the_port_bound(folders):
    pytest.importorskip("trame_slicer", reason="the web extra is not installed (pip install -e '.[web]')")
    pytest.importorskip("slicer", reason="the web extra is not installed (pip install -e '.[web]')")
    data, _, root = folders
    ready, log = root / "ready", root / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "CovidCTAnalysis", "serve", "--port", "0", "--data",
                                    str(data), "--outputs", str(root / "out"), "--ready-file", str(ready)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (ready.is_file() and ready.read_text()) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.is_file() and ready.read_text(), log.read_text()
        url = ready.read_text()
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert url == f"http://127.0.0.1:{port}/" and port > 0
        assert f"serving {url} " in log.read_text()
        import urllib.request

        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def test_a_ready_file_that_cannot_be_written_is_refused_before_the_server_starts(folders):
    data, _, root = folders
    afile = root / "afile"
    afile.write_text("x")
    refused(serve("--data", data, "--outputs", root / "out", "--ready-file", afile / "ready"), str(afile / "ready"))
    assert not (root / "out").exists()
