"""A DICOM series folder is listed once: the check for files GDCM skipped uses the listing load.py already made.

``load_ct`` lists the folder to tell what it holds; ``dicom._check_skipped_files`` used to list it a second time
(and read every file's first bytes again) to find DICOM-looking files no series took. It now gets the first listing
through ``read_series``; what it refuses, ignores and notes is unchanged (test_dicom_damaged_files.py covers that in
full; a damaged slice, a dose report and companions are checked here with and without the passed listing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_dicom_damaged_files import _series, _truncate, _write_dose_report

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io import dicom, load_ct
from CovidCTAnalysis.io.sniff import classify


@pytest.fixture
def listings(monkeypatch):
    """Counts the listings of each folder (Path.iterdir, os.listdir, os.scandir; a listing made inside another, as
    Python 3.12's iterdir calls os.listdir, counts once)."""
    counts: dict[Path, int] = {}
    depth = [0]

    def counting(original, lazy=False):
        def listing(path=".", *args, **kw):
            if depth[0] == 0:
                key = Path(path).resolve()
                counts[key] = counts.get(key, 0) + 1
            depth[0] += 1
            try:
                result = original(path, *args, **kw)
                return list(result) if lazy else result
            finally:
                depth[0] -= 1
        return listing

    monkeypatch.setattr(Path, "iterdir", counting(Path.iterdir, lazy=True))
    monkeypatch.setattr(os, "listdir", counting(os.listdir))
    monkeypatch.setattr(os, "scandir", counting(os.scandir))
    return counts


def test_a_series_folder_is_listed_once(tmp_path, listings):
    folder = tmp_path / "series"
    _series(folder, n=8)
    (folder / "README.txt").write_text("exported by a PACS\n")
    _write_dose_report(folder / "dose.dcm")
    ct = load_ct(folder)
    assert ct.size[2] == 8
    assert any("dose.dcm" in note for note in ct.notes), ct.notes  # the skipped-file check still ran
    assert listings.get(folder.resolve()) == 1, listings


def test_a_damaged_slice_is_refused_alike_with_and_without_the_passed_listing(tmp_path, listings):
    folder = tmp_path / "series"
    files = _series(folder, n=8)
    _truncate(files[-1])
    with pytest.raises(InputError) as through_load:
        load_ct(folder)
    assert listings.get(folder.resolve()) == 1, listings
    with pytest.raises(InputError) as alone:
        dicom.read_series(folder)  # no listing passed: it lists the folder itself
    assert str(alone.value) == str(through_load.value)
    assert files[-1].name in str(alone.value) and "damaged or unreadable" in str(alone.value)


def test_the_passed_listing_gives_what_listing_the_folder_gives(tmp_path):
    folder = tmp_path / "series"
    _series(folder, n=8)
    _write_dose_report(folder / "dose.dcm")
    (folder / "DICOMDIR").write_bytes((folder / "dose.dcm").read_bytes())  # a companion, whatever its content
    listed = [p for p in folder.iterdir() if classify(p) == "dicom"]
    passed = dicom.read_series(folder, listed)
    alone = dicom.read_series(folder)
    assert passed[2] == alone[2] and passed[3] == alone[3]  # notes (dose.dcm ignored) and files
    assert any("dose.dcm" in note for note in passed[2]) and not any("DICOMDIR" in n for n in passed[2])
