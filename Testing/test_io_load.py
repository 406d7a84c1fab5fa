"""load_ct dispatch and the input problems common to every kind (CovidCTAnalysis/io/load.py, sniff.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import sha256_tree
from PIL import Image

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io import load_ct


def assert_refused(path: Path, *words: str) -> str:
    before = sha256_tree(path) if path.exists() and not path.is_char_device() else None
    with pytest.raises(InputError) as info:
        load_ct(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    for w in words:
        assert w.lower() in message.lower(), message
    if before is not None:
        assert sha256_tree(path) == before
    return message


def _png(path: Path, seed=0) -> None:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (20, 20)).astype(np.uint8)).save(path)


def _nifti(path: Path) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(0).integers(-1000, 500, (3, 20, 20))
                                           .astype(np.int16)), str(path))


def _dicom(path: Path) -> None:
    img = sitk.GetImageFromArray(np.random.default_rng(0).integers(-1000, 500, (1, 20, 20)).astype(np.int16))
    img.SetMetaData("0008|0060", "CT")
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(path))
    writer.Execute(img)


def test_missing_path(tmp_path):
    assert_refused(tmp_path / "nope.nii.gz", "does not exist")


def test_broken_link(tmp_path):
    (tmp_path / "link.nii.gz").symlink_to(tmp_path / "gone.nii.gz")
    assert_refused(tmp_path / "link.nii.gz", "broken link")


def test_link_to_a_good_file_is_followed(tmp_path):
    _nifti(tmp_path / "a.nii.gz")
    (tmp_path / "link.nii.gz").symlink_to(tmp_path / "a.nii.gz")
    assert load_ct(tmp_path / "link.nii.gz").size == (20, 20, 3)


@pytest.mark.parametrize("name", ["empty.nii.gz", "empty.dcm", "empty.png", "empty.nrrd"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert_refused(tmp_path / name, "empty (0 bytes)")


def test_unsupported_extension(tmp_path):
    (tmp_path / "scan.docx").write_bytes(b"PK\x03\x04 whatever")
    assert_refused(tmp_path / "scan.docx", "unsupported file type", ".docx")
    (tmp_path / "noext").write_bytes(b"some bytes")
    assert_refused(tmp_path / "noext", "unsupported file type", "(none)")


def test_not_a_regular_file():
    assert_refused(Path("/dev/null"), "not a regular file")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="runs as root: file permissions do not stop root from reading")
def test_unreadable_file(tmp_path):
    _nifti(tmp_path / "a.nii.gz")
    (tmp_path / "a.nii.gz").chmod(0)
    try:
        assert_refused(tmp_path / "a.nii.gz", "permission denied")
    finally:
        (tmp_path / "a.nii.gz").chmod(0o644)


def test_dicom_magic_wins_over_the_name(tmp_path):
    _dicom(tmp_path / "CT.1.2.840.99999")  # scanner-style name, suffix ".99999"
    assert load_ct(tmp_path / "CT.1.2.840.99999").kind == "dicom-file"


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_refused(tmp_path / "empty", "empty folder")


def test_folder_with_only_subfolders(tmp_path):
    (tmp_path / "top" / "series1").mkdir(parents=True)
    _dicom(tmp_path / "top" / "series1" / "a.dcm")
    assert_refused(tmp_path / "top", "only sub-folders", "series1")


def test_folder_with_only_text(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "readme.txt").write_text("hello")
    assert_refused(tmp_path / "f", "no CT images")


def test_folder_mixing_dicom_and_png(tmp_path):
    (tmp_path / "f").mkdir()
    _dicom(tmp_path / "f" / "a.dcm")
    _png(tmp_path / "f" / "b.png")
    assert_refused(tmp_path / "f", "mixes DICOM files (1) and PNG/JPEG images (1)")


def test_folder_with_an_unrelated_file(tmp_path):
    (tmp_path / "f").mkdir()
    _png(tmp_path / "f" / "1.png")
    _png(tmp_path / "f" / "2.png")
    (tmp_path / "f" / "notes.docx").write_bytes(b"PK\x03\x04")
    msg = assert_refused(tmp_path / "f", "notes.docx", "mixes unrelated files")
    assert msg.startswith(str(tmp_path / "f" / "notes.docx"))


def test_folder_holding_a_volume_file(tmp_path):
    (tmp_path / "f").mkdir()
    _nifti(tmp_path / "f" / "ct.nii.gz")
    assert_refused(tmp_path / "f", "volume files (ct.nii.gz)", "pass the file itself")


def test_folder_with_an_empty_file(tmp_path):
    (tmp_path / "f").mkdir()
    _png(tmp_path / "f" / "1.png")
    (tmp_path / "f" / "2.png").write_bytes(b"")
    assert_refused(tmp_path / "f", "2.png", "empty")


def test_hidden_files_and_subfolders_are_ignored(tmp_path):
    (tmp_path / "f" / "info").mkdir(parents=True)
    _png(tmp_path / "f" / "1.png")
    _png(tmp_path / "f" / "2.png", seed=1)
    (tmp_path / "f" / ".DS_Store").write_bytes(b"\x00\x01junk")
    _png(tmp_path / "f" / "info" / "capture.png")
    ct = load_ct(tmp_path / "f")
    assert ct.size == (20, 20, 2) and any("sub-folders ignored: info" in n for n in ct.notes)


def test_single_image_folder_is_a_one_slice_stack(tmp_path):
    (tmp_path / "f").mkdir()
    _png(tmp_path / "f" / "7.png")
    ct = load_ct(tmp_path / "f")
    assert ct.kind == "slice-stack" and ct.is_2d


def test_unreadable_file_as_seen_by_the_os(tmp_path, monkeypatch):
    """The same check when running as root: the OS says the file is not readable."""
    _nifti(tmp_path / "a.nii.gz")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p).endswith("a.nii.gz")
                        else real_access(p, mode, **kw))
    assert_refused(tmp_path / "a.nii.gz", "permission denied")


def test_os_errors_become_input_errors(tmp_path, monkeypatch):
    """An I/O error anywhere on the way (here: listing a folder) is reported as one line, not a traceback."""
    (tmp_path / "f").mkdir()
    _png(tmp_path / "f" / "1.png")

    def failing_iterdir(self):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "iterdir", failing_iterdir)
    assert_refused(tmp_path / "f", "cannot be read: Input/output error")
