"""The memory budget (io/memory.py, issue 24): an input whose analysis cannot fit is refused from its header, with
the numbers, before anything is decoded."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io.memory import check_memory, needed_bytes


def test_the_budget_grows_with_the_voxels_and_refuses_with_numbers(monkeypatch):
    from CovidCTAnalysis.io import memory

    assert needed_bytes((512, 512, 600)) > needed_bytes((512, 512, 300))
    check_memory(Path("ct.nii.gz"), (512, 512, 300), available=64 * 2**30)
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    check_memory(Path("ct.nii.gz"), (1024, 1024, 1024))  # the platform says nothing: not checked
    with pytest.raises(InputError, match=r"ct.nii.gz: is 1024x1024x800 voxels; analyzing it needs about \d+\.\d GiB "
                                         r"of memory and 24.0 GiB is available"):
        check_memory(Path("ct.nii.gz"), (1024, 1024, 800), available=24 * 2**30)


def _run(args, limit_gib: float) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(__import__("os").environ, COVIDCT_MEMORY_LIMIT=str(limit_gib))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)
    return proc, time.perf_counter() - start


def test_a_header_declaring_a_giant_volume_is_refused_before_decoding(tmp_path):
    """A sparse 2 GiB NIfTI declaring 1024^3 voxels: refused in seconds, one line, no output folder."""
    small = tmp_path / "small.nii"
    sitk.WriteImage(sitk.Image(16, 16, 16, sitk.sitkInt16), str(small))
    header = bytearray(small.read_bytes()[:352])
    header[40:56] = np.array([3, 1024, 1024, 1024, 1, 1, 1, 1], "<i2").tobytes()
    bomb = tmp_path / "bomb.nii"
    with open(bomb, "wb") as f:
        f.write(header)
        f.truncate(352 + 2 * 1024**3)  # sparse: takes no disk
    proc, seconds = _run(["analyze", bomb, "-o", tmp_path / "out"], limit_gib=8)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bomb.nii: is 1024x1024x1024 voxels" in lines[0] and "GiB" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_a_stack_of_huge_pictures_is_refused_before_decoding(tmp_path):
    stack = tmp_path / "stack"
    stack.mkdir()
    for k in range(10):
        Image.fromarray(np.zeros((4096, 4096), np.uint8)).save(stack / f"{k}.png")
    proc, _ = _run(["segment-lungs", stack, "-o", tmp_path / "lungs.nii.gz"], limit_gib=8)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "4096x4096x10 voxels" in lines[0], lines
    assert not (tmp_path / "lungs.nii.gz").exists()
