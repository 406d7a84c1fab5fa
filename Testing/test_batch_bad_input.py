"""`covidct batch` and input it cannot use (docs/CONTRACTS.md, 'Exit status'): a --scheduler address that is
malformed or that nothing answers is refused with one line and exit 2, before OUTDIR is created; a batch whose every
case failed exits 1 and its summary names only the files it wrote; a batch with some failed cases still exits 0."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("distributed")

from CovidCTAnalysis.errors import InputError  # noqa: E402


def _batch(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "batch", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _ct(path: Path) -> Path:
    """A small CT volume (64x64x16 voxels, HU) as NRRD."""
    arr = np.random.default_rng(0).normal(-500, 300, (16, 64, 64)).astype(np.int16)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    return path


def _broken_inputs(tmp_path: Path) -> list[Path]:
    """Two inputs that no analysis can read: a truncated NRRD and a text file named .png."""
    whole = _ct(tmp_path / "whole.nrrd").read_bytes()
    truncated = tmp_path / "truncated.nrrd"
    truncated.write_bytes(whole[: len(whole) // 2])
    text = tmp_path / "text.png"
    text.write_text("not an image")
    return [truncated, text]


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("address, problem", [("nonsense", "no port number"), ("http://host:8786", "scheme"),
                                              ("tcp://host:0", "port"), ("tcp://host:port", "port"),
                                              ("", "no port number")])
def test_a_malformed_scheduler_address_is_refused_before_anything_is_written(tmp_path, address, problem):
    out = tmp_path / "out" / "batch"
    result = _batch(_ct(tmp_path / "ct.nrrd"), "-o", out, "--scheduler", address, timeout=120)
    line = _one_error_line(result)
    assert result.returncode == 2, result.stderr
    assert line.startswith("covidct: error: --scheduler: ") and repr(address) in line and problem in line, line
    assert "internal error" not in line
    assert not (tmp_path / "out").exists(), "nothing may be created when the command is refused"


def test_an_unreachable_scheduler_is_refused_quickly_before_anything_is_written(tmp_path):
    with socket.socket() as taken:  # bound but not listening: a connection to it is refused
        taken.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        out = tmp_path / "out" / "batch"
        start = time.monotonic()
        result = _batch(_ct(tmp_path / "ct.nrrd"), "-o", out, "--scheduler", address, timeout=120)
        seconds = time.monotonic() - start
    line = _one_error_line(result)
    assert result.returncode == 2, result.stderr
    assert line.startswith(f"covidct: error: cannot reach the scheduler at {address}: "), line
    assert seconds < 25, f"took {seconds:.0f} s to give up (Dask's own connection timeout is 30 s)"
    assert not (tmp_path / "out").exists(), "nothing may be created when the command is refused"


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "tcp://[::1]:8786",
                                     "tls://scheduler.example.org:8786", " tcp://node-7:8786 "])
def test_scheduler_addresses_of_dask_form_pass_the_check(address):
    from CovidCTAnalysis.pipeline.batch import check_scheduler_address

    assert check_scheduler_address(address) == address.strip()


def test_the_address_check_names_the_option():
    from CovidCTAnalysis.pipeline.batch import check_scheduler_address

    with pytest.raises(InputError, match=r"^--scheduler: 'node-7' is not a Dask scheduler address"):
        check_scheduler_address("node-7")


def _named_files(summary: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"(\S+\.(?:csv|html))", summary)]


def test_a_batch_whose_every_case_failed_exits_1_and_names_only_files_it_wrote(tmp_path):
    out = tmp_path / "batch"
    result = _batch(*_broken_inputs(tmp_path), "-o", out, "--device", "cpu")
    assert result.returncode == 1, (result.stdout, result.stderr)
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("0 analyzed, 0 done before, 2 failed"), summary
    named = _named_files(summary)
    assert sorted(p.name for p in named) == ["cohort.html", "failures.csv"], summary
    assert all(p.is_file() for p in named), summary
    assert not (out / "cohort.csv").exists()
    assert "every case failed" in result.stderr.strip().splitlines()[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert len((out / "failures.csv").read_text().strip().splitlines()) == 3  # the header and both cases


def test_a_batch_with_some_failed_cases_still_succeeds(tmp_path):
    out = tmp_path / "batch"
    text = tmp_path / "text.png"
    text.write_text("not an image")
    result = _batch(_ct(tmp_path / "ct.nrrd"), text, "-o", out, "--device", "cpu")
    assert result.returncode == 0, (result.stdout, result.stderr)
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("1 analyzed, 0 done before, 1 failed"), summary
    named = _named_files(summary)
    assert sorted(p.name for p in named) == ["cohort.csv", "cohort.html", "failures.csv"], summary
    assert all(p.is_file() for p in named), summary
    assert "every case failed" not in result.stderr
