"""What the browser app may open (CovidCTAnalysis.web.uploads): uploads and data-folder paths, refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.web.uploads import resolve_data_path, save_upload, too_large_message


def _ct_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 8, 8), np.int16)), str(path))
    return path.read_bytes()


def test_an_upload_is_written_under_its_own_folder_with_its_base_name_only(tmp_path):
    saved = save_upload("../../etc/evil/ct.nrrd", _ct_bytes(tmp_path), tmp_path / "uploads")
    assert saved.name == "ct.nrrd" and saved.parent.parent == tmp_path / "uploads"
    assert sitk.ReadImage(str(saved)).GetSize() == (8, 8, 4)


@pytest.mark.parametrize("name, content, problem", [
    ("notes.txt", b"hello", "is not a CT file"),
    ("scan.nii.gz", b"not an image at all" * 10, "is not an image this app can read"),
])
def test_bad_uploads_are_refused_and_leave_nothing(tmp_path, name, content, problem):
    with pytest.raises(InputError, match=problem):
        save_upload(name, content, tmp_path / "uploads")
    assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]


def test_an_upload_above_the_limit_is_refused_with_the_sizes(tmp_path):
    with pytest.raises(InputError, match="larger than the upload limit of 1.0 KB"):
        save_upload("ct.nrrd", _ct_bytes(tmp_path) + b"\0" * 2000, tmp_path / "uploads", max_bytes=1000)
    assert "2.0 GB is larger than the upload limit of 1.1 GB" in too_large_message("big.nrrd", 2 * 10**9, 1 << 30)


def test_paths_resolve_inside_the_data_folder_only(tmp_path):
    data = tmp_path / "data"
    (data / "cases").mkdir(parents=True)
    (data / "cases" / "ct.nrrd").write_bytes(_ct_bytes(tmp_path))
    (tmp_path / "secret.nrrd").write_bytes(_ct_bytes(tmp_path))
    os.symlink(tmp_path / "secret.nrrd", data / "link.nrrd")
    assert resolve_data_path(data, "cases/ct.nrrd") == (data / "cases" / "ct.nrrd").resolve()
    assert resolve_data_path(data, str(data / "cases")) == (data / "cases").resolve()
    for outside in ("../secret.nrrd", str(tmp_path / "secret.nrrd"), "link.nrrd", "/etc/passwd", "cases/../../"):
        with pytest.raises(InputError, match="outside the server's data folder"):
            resolve_data_path(data, outside)
    with pytest.raises(InputError, match="does not exist"):
        resolve_data_path(data, "cases/missing.nrrd")
    with pytest.raises(InputError, match="enter the path"):
        resolve_data_path(data, "  ")
