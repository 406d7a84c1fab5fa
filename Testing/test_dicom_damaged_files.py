"""Damaged files in a DICOM series folder (CovidCTAnalysis/io/dicom.py) are refused by name, never dropped.

GDCM's series scan skips every file it cannot parse: a series whose last file was cut short by an interrupted copy
loaded one slice short with exit status 0, and a cut middle file surfaced only as "unevenly spaced slices". A CT
missing a slice is not the patient's CT, so the loader must stop and name the file. Junk beside a series (README,
DICOMDIR, thumbs.db, hidden files) and DICOM objects without an image stay ignored.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_cli_bad_input import assert_clean_failure, run_covidct
from test_io_dicom import ROWS, _volume, assert_refused, write_series

from CovidCTAnalysis.io import load_ct

N = 16
SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR: a dose report exported beside the slices


def _series(folder: Path, n: int = N, suffix: str = ".dcm", volume=None, **kw) -> list[Path]:
    """A clean synthetic CT series of ``n`` files named IM0000.dcm ... (extension optional)."""
    files = write_series(folder, _volume(n) if volume is None else volume, **kw)
    if not suffix:
        return files
    return [f.rename(f.with_name(f.name + suffix)) for f in files]


def _element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian data element (even length; OB takes a 4-byte length)."""
    value += (b"\0" if vr in (b"UI", b"OB") else b" ") * (len(value) % 2)
    if vr == b"OB":
        return struct.pack("<HH", group, element) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value


def _write_dose_report(path: Path) -> None:
    """A minimal DICOM object without pixel data (a dose report's file meta and identifying elements), written
    byte by byte so the test depends on no DICOM library version."""
    uid = b"1.2.826.0.1.3680043.2.1125.44"
    meta = (_element(0x0002, 0x0001, b"OB", b"\0\1") + _element(0x0002, 0x0002, b"UI", SR_STORAGE.encode())
            + _element(0x0002, 0x0003, b"UI", uid + b".1") + _element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1"))
    meta = _element(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta))) + meta
    body = (_element(0x0008, 0x0016, b"UI", SR_STORAGE.encode()) + _element(0x0008, 0x0018, b"UI", uid + b".1")
            + _element(0x0008, 0x0060, b"CS", b"SR") + _element(0x0020, 0x000D, b"UI", b"1.2.826.0.1.3680043.2.1125.1")
            + _element(0x0020, 0x000E, b"UI", uid))
    path.write_bytes(b"\0" * 128 + b"DICM" + meta + body)


def _truncate(path: Path) -> None:
    """Keep the first half of the file, as an interrupted copy or a full disk leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_last_file_is_refused_by_name(tmp_path):
    """The last slice was silently dropped: 15 slices, exit 0, no warning."""
    folder = tmp_path / "ct"
    files = _series(folder)
    _truncate(files[-1])
    message = assert_refused(folder, "damaged or unreadable", f"1 of the {N} DICOM files")
    assert message.startswith(f"{folder / 'IM0015.dcm'}: "), message


def test_truncated_middle_file_is_refused_by_name(tmp_path):
    """A dropped middle slice was reported as uneven spacing, which sends the user looking for a scanner problem."""
    folder = tmp_path / "ct"
    files = _series(folder)
    _truncate(files[7])
    message = assert_refused(folder, "damaged or unreadable")
    assert message.startswith(f"{folder / 'IM0007.dcm'}: ") and "uneven" not in message, message


def test_truncated_file_without_extension_is_found_by_its_dicm_marker(tmp_path):
    """Scanners often write no extension: the DICM marker alone makes the file part of the series to check."""
    folder = tmp_path / "ct"
    files = _series(folder, n=6, suffix="")
    _truncate(files[-1])
    message = assert_refused(folder, "damaged or unreadable", "1 of the 6 DICOM files")
    assert message.startswith(f"{folder / 'IM0005'}: "), message


def test_several_damaged_files_are_counted(tmp_path):
    """The first one is named and the others listed, so the whole damage is known at once."""
    folder = tmp_path / "ct"
    files = _series(folder, n=6)
    for f in (files[1], files[4]):
        _truncate(f)
    message = assert_refused(folder, "and so is IM0004.dcm", "2 of the 6 DICOM files", "restore them")
    assert message.startswith(f"{folder / 'IM0001.dcm'}: "), message


def test_text_file_named_dcm_beside_a_series_is_refused(tmp_path):
    """A file named like a slice that is no DICOM at all is no less a missing slice."""
    folder = tmp_path / "ct"
    _series(folder, n=6)
    (folder / "IM0006.dcm").write_text("not a slice\n")
    message = assert_refused(folder, "damaged or unreadable", "1 of the 7 DICOM files")
    assert message.startswith(f"{folder / 'IM0006.dcm'}: "), message


def test_clean_series_with_junk_loads_every_slice(tmp_path):
    """Companions of exported series are not slices: they stay ignored, the volume keeps all its slices."""
    folder = tmp_path / "ct"
    _series(folder)
    (folder / "README.txt").write_text("exported from the scanner\n")
    (folder / "thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0junk")
    (folder / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + b"\0" * 40)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "._IM0000.dcm").write_bytes(b"\0\5\26\7\0\2\0\0Mac OS X")  # macOS resource fork of a slice
    ct = load_ct(folder)
    assert ct.size == (24, ROWS, N) and len(ct.input_files) == N
    assert not any("damaged" in n for n in ct.notes)


def test_dicom_object_without_an_image_is_ignored_with_a_note(tmp_path):
    """A dose report in the folder is no slice GDCM could read; it is not damage, and the note says it was left
    out."""
    folder = tmp_path / "ct"
    _series(folder, n=6)
    _write_dose_report(folder / "dose.dcm")
    ct = load_ct(folder)
    assert ct.size[2] == 6
    assert any("without a CT image" in n and "dose.dcm" in n for n in ct.notes), ct.notes


def test_corrupted_compressed_slice_is_refused_by_name(tmp_path):
    """A compressed slice with a garbled stream passes the series scan and fails only when the series is read:
    the message names that file, not just the folder."""
    folder = tmp_path / "ct"
    folder.mkdir()
    for k, hu in enumerate(_volume(4)):
        img = sitk.GetImageFromArray(hu.astype(np.int16)[None])
        for key, value in {"0008|0060": "CT", "0020|000e": "1.2.826.0.1.3680043.2.1125.9",
                           "0020|0032": f"0\\0\\{2.5 * k:g}", "0020|0037": "1\\0\\0\\0\\1\\0",
                           "0020|0013": str(k + 1)}.items():
            img.SetMetaData(key, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetImageIO("GDCMImageIO")
        writer.SetUseCompression(True)
        writer.SetFileName(str(folder / f"IM{k:04d}.dcm"))
        writer.Execute(img)
    bad = folder / "IM0002.dcm"
    data = bytearray(bad.read_bytes())
    start = data.rfind(b"\xe0\x7f\x10\x00") + 40  # inside the first fragment, past its item header
    data[start:-10] = b"\xaa" * (len(data) - 10 - start)
    bad.write_bytes(bytes(data))
    message = assert_refused(folder, "could not be decoded", "1 of the 4 files of the series")
    assert message.startswith(f"{bad}: "), message


@pytest.mark.parametrize("command, output, options", [
    ("segment-lungs", "lungs.nii.gz", []),
    ("analyze", "out", ["--models", "decovnet", "--device", "cpu"]),
], ids=["segment-lungs", "analyze"])
def test_command_refuses_a_truncated_last_slice(tmp_path, command, output, options):
    """Through the real command: exit 2, one line naming the file, nothing written. The series holds two lungs in a
    body, so the cut series would otherwise be analysed (exit 0) one slice short."""
    vol = np.full((N, 40, 40), 40.0, np.float32)
    vol[:, 8:32, 6:18] = -850.0
    vol[:, 8:32, 22:34] = -850.0
    folder = tmp_path / "ct"
    files = _series(folder, volume=vol, spacing=(8.0, 8.0), thickness=10.0, zs=[10.0 * k for k in range(N)])
    _truncate(files[-1])
    out = tmp_path / output
    proc = run_covidct(command, folder, "-o", out, *options)
    assert_clean_failure(proc, "IM0015.dcm: is a damaged or unreadable DICOM file")
    assert not out.exists()
