"""What the Slicer modules install at first use (CovidCTAnalyzeLib/Dependencies.py, its plain-Python part).

Version floors count, PyTorch comes first (through the PyTorch extension), the packages built on it are left out
where no PyTorch is needed (lungs-classic), and a restart is offered only for packages this session had imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CovidCTAnalysis" / "SlicerModules" / "CovidCTAnalyze"))
from CovidCTAnalyzeLib import Dependencies  # noqa: E402

sys.path.remove(str(REPO / "CovidCTAnalysis" / "SlicerModules" / "CovidCTAnalyze"))


@pytest.mark.parametrize("requirement, expected", [
    ("scikit-image>=0.21", ("scikit-image", "0.21")), ("numpy", ("numpy", None)),
    ("monai>=1.3,<2", ("monai", "1.3")), ("SimpleITK >= 2.3", ("SimpleITK", "2.3")),
])
def test_requirements_split_into_name_and_floor(requirement, expected):
    assert Dependencies.split_requirement(requirement) == expected


@pytest.mark.parametrize("requirement, installed, unmet", [
    ("numpy>=1.24", None, True),            # absent
    ("numpy>=1.24", "1.23.5", True),        # too old
    ("numpy>=1.24", "1.24.0", False),
    ("torch>=2.1", "2.10.0+cu121", False),  # 2.10 is newer than 2.1, a local build tag does not matter
    ("torch>=2.1", "2.0.1", True),
    ("pillow>=10", "", False),              # importable, version unknown: accepted
])
def test_unmet_compares_versions_numerically(requirement, installed, unmet):
    assert Dependencies.unmet(requirement, installed) is unmet


def test_missing_requirements_reads_the_installed_versions(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("# comment\nnumpy>=1.0\nnumpy>=999\nno-such-package-here>=1\n")
    assert Dependencies.missing_requirements(tmp_path / "requirements.txt") == ["numpy>=999", "no-such-package-here>=1"]


def test_plan_puts_pytorch_first_and_leaves_torch_packages_out_without_it(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("numpy>=1.0\nmonai>=999\nscipy>=999\n")
    monkeypatch.setattr(Dependencies.missing_requirements, "__defaults__", (tmp_path / "requirements.txt", True))
    monkeypatch.setattr(Dependencies, "torch_missing", lambda: True)
    plan = Dependencies.install_plan(need_torch=True)
    assert plan[0].startswith(f"torch>={Dependencies.TORCH_MINIMUM} (through the PyTorch extension")
    assert plan[1:] == ["monai>=999", "scipy>=999"]
    assert Dependencies.install_plan(need_torch=False) == ["scipy>=999"]  # lungs-classic: no torch, no monai
    assert Dependencies.missing_packages(need_torch=False) == ["scipy"]
    assert Dependencies.missing_packages(need_torch=True) == ["torch", "monai", "scipy"]
    monkeypatch.setattr(Dependencies, "torch_missing", lambda: False)
    assert Dependencies.install_plan(need_torch=True) == ["monai>=999", "scipy>=999"]


def test_restart_is_needed_only_for_packages_already_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", sys)  # as if this session had imported scikit-image
    monkeypatch.delitem(sys.modules, "monai", raising=False)
    assert Dependencies.needs_restart(["scikit-image>=0.21", "monai>=1.3"]) == ["scikit-image>=0.21"]


def test_torch_minimum_matches_the_package_requirement():
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert f"torch>={Dependencies.TORCH_MINIMUM}" in declared
