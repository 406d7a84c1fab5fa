"""A NRRD or MetaImage file that states no voxel spacing is read as 1 mm with a warning, never silently.

ITK gives such a file 1 mm along every axis without a word; a CT's voxel size drives every volume in mL, so the
reader says so (CTVolume.warnings: on stderr for segment-lungs/-lesions and classify, in report.json's warnings for
analyze), as a 2-D image without a slice thickness is read at an assumed 5 mm with a note. The header's fields
decide, not the value: a file that states 1 mm is fine. The test files are written by hand, so the field is truly
absent (SimpleITK always writes one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import covidct, sha256_tree
from CovidCTAnalysis.io import load_ct

SHAPE = (6, 20, 24)  # z, y, x


def _voxels(shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(0).integers(-1000, 400, shape).astype("<i2")


def write_nrrd(path: Path, fields: str = "", data: np.ndarray | None = None) -> Path:
    """A raw little-endian NRRD with only the fields it needs, plus ``fields`` (lines ending in newline)."""
    data = _voxels() if data is None else data
    z, y, x = data.shape
    header = (f"NRRD0004\n# written by hand\ntype: short\ndimension: 3\nsizes: {x} {y} {z}\nendian: little\n"
              f"encoding: raw\n{fields}\n")
    path.write_bytes(header.encode("ascii") + data.tobytes())
    return path


def write_mha(path: Path, fields: str = "", data: np.ndarray | None = None) -> Path:
    """A MetaImage with its data after the header (ElementDataFile = LOCAL), plus ``fields``."""
    data = _voxels() if data is None else data
    z, y, x = data.shape
    header = (f"ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n{fields}"
              f"DimSize = {x} {y} {z}\nElementType = MET_SHORT\nElementDataFile = LOCAL\n")
    path.write_bytes(header.encode("ascii") + data.tobytes())
    return path


def spacing_warnings(ct) -> list[str]:
    return [w for w in ct.warnings if "states no voxel spacing" in w]


@pytest.mark.parametrize("name, write, absent", [
    ("plain.nrrd", write_nrrd, "no spacings or space directions field"),
    ("plain.mha", write_mha, "no ElementSpacing or ElementSize"),
])
def test_a_header_without_spacing_is_read_as_1_mm_with_a_warning(tmp_path, name, write, absent):
    path = write(tmp_path / name)
    before = sha256_tree(path)
    ct = load_ct(path)
    assert ct.spacing == pytest.approx((1.0, 1.0, 1.0))
    [warning] = spacing_warnings(ct)
    assert name in warning and absent in warning and "1 mm assumed" in warning, warning
    assert "\n" not in warning
    assert sha256_tree(path) == before, "the input is only read"


def test_a_detached_nrrd_header_without_spacing_warns(tmp_path):
    (tmp_path / "a.raw").write_bytes(_voxels().tobytes())
    header = tmp_path / "a.nhdr"
    z, y, x = SHAPE
    header.write_text(f"NRRD0004\ntype: short\ndimension: 3\nsizes: {x} {y} {z}\nendian: little\nencoding: raw\n"
                      "data file: a.raw\n", encoding="ascii")
    [warning] = spacing_warnings(load_ct(header))
    assert "a.nhdr" in warning


@pytest.mark.parametrize("name, write, fields", [
    ("spacings.nrrd", write_nrrd, "spacings: 1 1 1\n"),
    ("directions.nrrd", write_nrrd, "space: left-posterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n"),
    ("capitalised.nrrd", write_nrrd, "Spacings: 1 1 1\n"),  # NRRD field names are case-insensitive
    ("spacing.mha", write_mha, "ElementSpacing = 1 1 1\n"),
    ("size.mha", write_mha, "ElementSize = 1 1 1\n"),  # ITK takes ElementSize when ElementSpacing is missing
])
def test_a_stated_1_mm_spacing_is_no_assumption(tmp_path, name, write, fields):
    ct = load_ct(write(tmp_path / name, fields))
    assert ct.spacing == pytest.approx((1.0, 1.0, 1.0))
    assert spacing_warnings(ct) == []


@pytest.mark.parametrize("name, write, fields", [
    ("key-value.nrrd", write_nrrd, "spacings:=0.7 0.7 2.5\n"),  # a key/value pair, not the field: ITK ignores it
    ("lower-case.mha", write_mha, "elementspacing = 0.7 0.7 2.5\n"),  # MetaImage keys are case-sensitive
])
def test_spellings_itk_does_not_read_as_spacing_warn(tmp_path, name, write, fields):
    ct = load_ct(write(tmp_path / name, fields))
    assert ct.spacing == pytest.approx((1.0, 1.0, 1.0)), "what ITK makes of the header"
    assert len(spacing_warnings(ct)) == 1


def test_files_sitk_writes_do_not_warn(tmp_path):
    image = sitk.GetImageFromArray(_voxels())
    for name in ("a.nrrd", "a.mha", "a.nii.gz"):
        sitk.WriteImage(image, str(tmp_path / name))  # 1 mm, stated
        assert spacing_warnings(load_ct(tmp_path / name)) == []


def test_segment_lungs_prints_the_assumption_on_stderr(tmp_path):
    """The demo chest CT's voxels in a NRRD without spacing: read as 1 mm, segmented, and said so on stderr."""
    from CovidCTAnalysis.demo import make_demo_ct

    data = sitk.GetArrayFromImage(make_demo_ct(size=(128, 128, 48), seed=0).image).astype("<i2")
    path = write_nrrd(tmp_path / "chest.nrrd", data=data)
    out = tmp_path / "lungs.nrrd"
    proc = covidct("segment-lungs", path, "-o", out, "--model", "lungs-classic")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "states no voxel spacing" in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"covidct: warning: {path}: the NRRD header of chest.nrrd states no voxel spacing")
    assert "1 mm assumed" in lines[0]
    assert out.is_file() and "Traceback" not in proc.stderr


def test_classify_prints_the_assumption_on_stderr(tmp_path, monkeypatch, capsys):
    """classify printed no reading warning at all; the classifier itself is stubbed (its numbers are not tested)."""
    import CovidCTAnalysis.pipeline.classifiers as run
    from CovidCTAnalysis.classifiers.interface import ClassifierResult
    from CovidCTAnalysis.classifiers.table import classifier_names
    from CovidCTAnalysis.cli import main
    from CovidCTAnalysis.models import load_registry

    names = classifier_names(load_registry())
    if not names:
        pytest.skip("no classifier is registered in this checkout")
    monkeypatch.setattr(run, "needs_lungs", lambda name: False)
    monkeypatch.setattr(run, "run_classifier", lambda *a, **k: ClassifierResult(0.25, "non-COVID", "stub"))
    from CovidCTAnalysis.demo import make_demo_ct

    data = sitk.GetArrayFromImage(make_demo_ct(size=(128, 128, 48), seed=0).image).astype("<i2")
    path = write_nrrd(tmp_path / "chest.nrrd", data=data)
    out = tmp_path / "p.csv"
    assert main(["classify", str(path), "--model", names[0], "-o", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert f"covidct: warning: {path}: the NRRD header of chest.nrrd states no voxel spacing" in err, err
    assert out.is_file()
