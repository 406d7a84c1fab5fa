"""report.json gives the position of every slice index it reports, as report.html names the slice.

Slice indices in report.json count the canonical grid's axial slices from 0 at the feet (docs/CONTRACTS.md), not the
input's own numbering; report.html names each slice by z in mm, DICOM instance and file (report_images.SliceNames).
A classifier entry that reports slice indices now carries ``slice_positions``: {index: {"z_mm", "dicom_instance",
"file"}}, from the same SliceNames; every existing key stays as it was.
"""

from __future__ import annotations

import json
import re

import pydicom
import pytest
from test_report_slice_numbers import N_SLICES, PATIENT_ID, SPACING, TOP_Z, write_top_first_series, write_z_flipped_nrrd

from conftest import PATIENT
from CovidCTAnalysis.io import load_ct
from CovidCTAnalysis.pipeline import report as report_py
from CovidCTAnalysis.pipeline.report import build_report
from CovidCTAnalysis.pipeline.report_images import SliceNames


def report_of(ct, classifiers, **kw) -> dict:
    """build_report as analyze calls it, through JSON as report.json is read back."""
    report = build_report(ct=ct, input_path=ct.source, truth=None, lung_ml=None, lesion_numbers=None,
                          classifiers=classifiers, versions={}, unavailable={}, timings_s={"load": 0.1}, **kw)
    return json.loads(json.dumps(report))


@pytest.fixture(scope="module")
def dicom_ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("series") / "top-first"
    positions = write_top_first_series(folder)
    return load_ct(folder), positions


def test_dicom_slice_indices_get_z_instance_and_file(dicom_ct):
    ct, positions = dicom_ct
    top = [N_SLICES - 2, N_SLICES - 5]  # canonical indices of instances 2 and 5 (instance 1 is the top slice)
    entry = {"probability": 0.8, "label": "COVID-19", "top_slices": top,
             "slice_attention": {z: w for z, w in zip(top, (0.7, 0.3))}}
    report = report_of(ct, {"da-cmil": entry, "decovnet": {"probability": 0.4, "label": "non-COVID"}})
    da = report["classifiers"]["da-cmil"]
    for key in ("probability", "label", "top_slices", "slice_attention"):  # additive only
        assert da[key] == json.loads(json.dumps(entry))[key]
    assert sorted(da["slice_positions"], key=int) == [str(z) for z in sorted(top)]
    for number in (2, 5):
        assert da["slice_positions"][str(N_SLICES - number)] == {
            "z_mm": positions[number], "dicom_instance": number, "file": f"[removed]_{number:03d}.dcm"}
    assert "slice_positions" not in report["classifiers"]["decovnet"], "no slice index, no positions"
    assert PATIENT_ID not in json.dumps(report)
    kept = report_of(ct, {"da-cmil": entry}, keep_identifiers=True)
    assert kept["classifiers"]["da-cmil"]["slice_positions"][str(N_SLICES - 2)]["file"] == f"{PATIENT_ID}_002.dcm"


def test_positions_are_what_report_html_names_the_slice_by(dicom_ct):
    ct, _ = dicom_ct
    names = SliceNames(ct.image, ct)
    entry = report_py.with_slice_positions({"slice_probabilities": {z: 0.5 for z in range(N_SLICES)}}, names)
    assert sorted(entry["slice_positions"]) == list(range(N_SLICES))
    for z, position in entry["slice_positions"].items():
        where = names.where(z)  # report.html's words, e.g. "z = -45.0 mm (DICOM instance 2, [removed]_002.dcm)"
        assert where == f"z = {position['z_mm']:.1f} mm (DICOM instance {position['dicom_instance']}, " \
                        f"{position['file']})"


def test_every_slice_index_key_of_the_contract_is_located(dicom_ct):
    ct, _ = dicom_ct
    entry = {"slice_probabilities": {1: 0.9}, "slice_relevance": {"2": 0.1}, "most_probable_slices": [3],
             "refined_slices": [4], "top_slices": [5], "slice_attention": {6: 1.0}, "lung_slices": 7}
    located = report_py.with_slice_positions(entry, SliceNames(ct.image, ct))
    assert sorted(located["slice_positions"]) == [1, 2, 3, 4, 5, 6]  # lung_slices is a count, not an index
    assert {k: v for k, v in located.items() if k != "slice_positions"} == entry
    assert "slice_positions" not in entry, "the classifier's own entry is not changed"


def test_a_volume_file_gives_z_only(tmp_path):
    path = tmp_path / "flipped.nrrd"
    write_z_flipped_nrrd(path)
    ct = load_ct(path)
    k = 2  # the file's own slice index, 10 mm below the top
    z = N_SLICES - 1 - k
    report = report_of(ct, {"slice-resnet": {"probability": 0.5, "label": "COVID-19", "slice_probabilities": {z: 1}}})
    assert report["classifiers"]["slice-resnet"]["slice_positions"] == {
        str(z): {"z_mm": TOP_Z - k * SPACING[2], "dicom_instance": None, "file": None}}


def test_a_slice_stack_gives_its_files(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "stack"
    folder.mkdir()
    yy, xx = np.mgrid[:64, :64] - 31.5
    for n in range(1, 5):
        Image.fromarray(np.where(yy ** 2 + xx ** 2 < 25 ** 2, 170, 20).astype(np.uint8)).save(folder / f"{n:02d}.png")
    ct = load_ct(folder)
    report = report_of(ct, {"m": {"probability": 0.5, "label": "COVID-19", "top_slices": [0, 3]}})
    positions = report["classifiers"]["m"]["slice_positions"]
    # the first file is the top slice: canonical 0 (the lowest) is the last file
    assert positions == {"0": {"z_mm": None, "dicom_instance": None, "file": "04.png"},
                         "3": {"z_mm": None, "dicom_instance": None, "file": "01.png"}}


def test_analyze_writes_slice_positions_into_report_json(dicom_analysis, dicom_demo_series):
    """The real command on the DICOM demo series (slice-resnet reports a probability per lung slice)."""
    out, _ = dicom_analysis
    text = (out / "report.json").read_text(encoding="utf-8")
    entry = json.loads(text)["classifiers"]["slice-resnet"]
    assert entry["slice_probabilities"], "the run reports slice indices"
    positions = entry["slice_positions"]
    assert sorted(positions, key=int) == sorted(entry["slice_probabilities"], key=int)
    for index, position in positions.items():
        ds = pydicom.dcmread(str(dicom_demo_series / position["file"]), stop_before_pixels=True)
        assert position["dicom_instance"] == int(ds.InstanceNumber)
        assert position["z_mm"] == pytest.approx(float(ds.ImagePositionPatient[2]))
        assert re.fullmatch(r"IM\d{4}\.dcm", position["file"])
    lowest = min(positions, key=int)
    assert positions[lowest]["z_mm"] == min(p["z_mm"] for p in positions.values()), "index 0 is at the feet"
    assert PATIENT["PatientID"] not in text
