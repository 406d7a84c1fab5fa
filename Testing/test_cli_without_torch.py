"""What runs without PyTorch (a 3D Slicer without the PyTorch extension): lungs-classic and the pseudo-mask.

`covidct` runs in a child process where importing torch, monai or captum fails, as in a Slicer that never installed
them; the commands that need no network must still write their label maps, and must not import torch at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case

REPO = Path(__file__).resolve().parents[1]
#: a Python prelude that makes every import of torch, monai and captum fail, then runs the command line
WITHOUT_TORCH = """
import sys, importlib.abc
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "monai", "captum"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
from CovidCTAnalysis.cli import main
code = main(sys.argv[1:])
assert not any(m.split(".")[0] in ("torch", "monai", "captum") for m in sys.modules)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def ct(tmp_path_factory) -> Path:
    return write_demo_case(make_demo_ct(size=(64, 64, 24), seed=3), tmp_path_factory.mktemp("ct"))


def _covidct(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("command, model, labels", [
    ("segment-lungs", "lungs-classic", {1, 2}),
    ("segment-lesions", "pseudo-mask", {1}),
])
def test_models_without_a_network_run_without_torch(ct, tmp_path, command, model, labels):
    out = tmp_path / "out.nii.gz"
    done = _covidct(command, ct, "-o", out, "--model", model, "--device", "auto")
    assert done.returncode == 0, done.stderr
    found = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(out))))) - {0}
    assert found and found <= labels


def test_a_network_model_without_torch_fails_without_writing(ct, tmp_path):
    out = tmp_path / "out.nii.gz"
    done = _covidct("segment-lungs", ct, "-o", out, "--model", "lungs-unet")
    assert done.returncode == 1 and "torch" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
