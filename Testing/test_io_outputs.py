"""check_output_path / output_format (CovidCTAnalysis/io/outputs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io import check_output_for, check_output_path, load_ct, output_format


def refused(out, inputs=(), *words, **kw) -> str:
    with pytest.raises(InputError) as info:
        check_output_path(out, list(inputs), **kw)
    message = str(info.value)
    assert message.startswith(str(out)) and "\n" not in message, message
    for w in words:
        assert w.lower() in message.lower(), message
    return message


@pytest.fixture
def ct_file(tmp_path) -> Path:
    p = tmp_path / "in" / "ct.nii.gz"
    p.parent.mkdir()
    p.write_bytes(b"x")
    return p


def test_good_outputs(tmp_path, ct_file):
    for name in ("a.nii.gz", "a.nii", "a.nrrd", "a.seg.nrrd", "a.mha", "a.png"):
        assert check_output_path(tmp_path / "out" / name, [ct_file]) == (tmp_path / "out" / name).resolve()
    assert check_output_path(tmp_path / "new" / "deeper", [ct_file], expect="dir").name == "deeper"
    assert check_output_path(ct_file.parent, [ct_file], expect="dir") == ct_file.parent.resolve()  # next to input
    assert check_output_path(tmp_path / "r.csv", [ct_file], extensions=(".csv",)).suffix == ".csv"
    assert not (tmp_path / "out").exists() and not (tmp_path / "new").exists()  # nothing created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no probe file left


def test_unknown_or_missing_extension(tmp_path, ct_file):
    refused(tmp_path / "a.txt", [ct_file], "unknown output extension (.txt)", ".seg.nrrd")
    refused(tmp_path / "noext", [ct_file], "(none)")
    refused(tmp_path / "a.nii.gz", [ct_file], ".csv", extensions=(".csv",))


def test_existing_folder_where_a_file_is_expected(tmp_path, ct_file):
    (tmp_path / "lungs.nii.gz").mkdir()
    refused(tmp_path / "lungs.nii.gz", [ct_file], "existing folder")


def test_existing_file_where_a_folder_is_expected(tmp_path, ct_file):
    (tmp_path / "out").write_text("x")
    refused(tmp_path / "out", [ct_file], "is a file", expect="dir")


def test_output_is_the_input(tmp_path, ct_file):
    refused(ct_file, [ct_file], "input itself", "overwrite")
    link = tmp_path / "alias.nii.gz"
    link.symlink_to(ct_file)
    refused(link, [ct_file], "input itself")


def test_output_inside_an_input_folder(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    refused(series / "lungs.nii.gz", [series], "inside the input folder")
    refused(series, [series], "input itself", expect="dir")
    refused(series / "results", [series], "inside the input folder", expect="dir")


def test_folder_cannot_be_created(tmp_path, ct_file):
    (tmp_path / "afile").write_text("x")
    refused(tmp_path / "afile" / "sub" / "out.nii.gz", [ct_file], "cannot be created", "is a file")
    refused(tmp_path / "afile" / "outdir", [ct_file], "cannot be created", expect="dir")


def test_folder_not_writable(ct_file):
    """/proc refuses new files even to root (permission bits would not)."""
    refused(Path("/proc/covidct-out/lungs.nii.gz"), [ct_file], "cannot be written", "/proc")


def test_output_format():
    assert [output_format(n) for n in ("a.NII.GZ", "a.seg.nrrd", "a.nrrd", "a.png", "a.csv", "a.mha", "a.x")] == [
        "nifti", "seg.nrrd", "nrrd", "png", "csv", "mha", ""]


def test_png_output_only_for_single_slice_inputs(tmp_path):
    import numpy as np
    import SimpleITK as sitk

    arr = np.random.default_rng(0).integers(-1000, 500, (3, 20, 20)).astype(np.int16)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "v.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(arr[:1]), str(tmp_path / "s.nii.gz"))
    volume, single = load_ct(tmp_path / "v.nii.gz"), load_ct(tmp_path / "s.nii.gz")
    with pytest.raises(InputError, match="out.png: a .png output needs a single-slice input, but .* has 3 slices"):
        check_output_for(tmp_path / "out.png", volume)
    check_output_for(tmp_path / "out.png", single)
    check_output_for(tmp_path / "out.nii.gz", volume)
