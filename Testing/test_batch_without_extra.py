"""`covidct batch` without its extra (Dask's distributed) is refused with one line naming the extra, exit 2, and
nothing written (docs/CONTRACTS.md, 'Exit status')."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import SimpleITK as sitk


def test_batch_without_distributed_names_the_extra(tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "distributed.py").write_text("raise ImportError('No module named distributed')\n")
    ct = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((16, 64, 64), -500, np.int16)), str(ct))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "batch", str(ct), "-o", str(out)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "batch extra" in result.stderr and "[batch]" in result.stderr
    assert not out.exists()
