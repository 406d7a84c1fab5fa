"""Writing the demo case for users (write_demo_case) and ``python -m CovidCTAnalysis.demo``."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case
from CovidCTAnalysis.demo.__main__ import main

NAMES = ["demo-ct.nrrd", "demo-truth-lesions.nrrd", "demo-truth-lungs.nrrd"]


@pytest.fixture(scope="module")
def small():
    return make_demo_ct((48, 48, 24), seed=2)


def test_write_demo_case(tmp_path, small):
    path = write_demo_case(small, tmp_path / "new" / "folder")
    assert path == tmp_path / "new" / "folder" / "demo-ct.nrrd"
    back = sitk.ReadImage(str(path))
    assert back.GetPixelID() == sitk.sitkFloat32
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(small.image))
    assert back.GetSpacing() == small.image.GetSpacing() and back.GetOrigin() == small.image.GetOrigin()
    assert back.GetDirection() == small.image.GetDirection()
    for name, truth in (("demo-truth-lungs.nrrd", small.lungs), ("demo-truth-lesions.nrrd", small.lesions)):
        t = sitk.ReadImage(str(path.parent / name))
        assert t.GetPixelID() == sitk.sitkUInt8
        assert np.array_equal(sitk.GetArrayFromImage(t), sitk.GetArrayFromImage(truth))
    assert sorted(p.name for p in path.parent.iterdir()) == NAMES   # no temporary files left behind


def test_rewrite_replaces_files(tmp_path, small):
    write_demo_case(small, tmp_path)
    other = make_demo_ct((48, 48, 24), seed=3)
    write_demo_case(other, tmp_path)
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "demo-truth-lungs.nrrd")))
    assert np.array_equal(lungs, sitk.GetArrayFromImage(other.lungs))
    assert sorted(p.name for p in tmp_path.iterdir()) == NAMES


def test_module_main(tmp_path, capsys):
    assert main([str(tmp_path), "--size", "40,40,20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "demo-ct.nrrd" in out and "pleural" in out and "consolidation" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == NAMES
    assert sitk.ReadImage(str(tmp_path / "demo-ct.nrrd")).GetSize() == (40, 40, 20)


@pytest.mark.parametrize("size", ["40,40", "40,x,20", "40,0,20"])
def test_module_main_bad_size(tmp_path, size):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path), "--size", size])
    assert e.value.code == 2
    assert not any(tmp_path.iterdir())
