"""De-identification by default (issue 22): a DICOM input carrying a patient name, ID and birth date (the folder is
named after the ID, as hospital exports often are) yields outputs, reports and progress lines without them;
--keep-identifiers keeps them."""

from __future__ import annotations

import json
import re

import pydicom
import pytest

from conftest import PATIENT, covidct
from CovidCTAnalysis.io.dicom_source import identifiers, scrub
from CovidCTAnalysis.pipeline.privacy import Privacy

FORBIDDEN = re.compile(r"doe|jane|mrn4711|19700402|1970-04-02", re.IGNORECASE)


def test_identifiers_come_from_the_headers(dicom_demo_series):
    found = set(identifiers(sorted(dicom_demo_series.glob("*.dcm"))[:2]))
    assert {"Doe^Jane", "Doe", "Jane", "MRN4711", "19700402", "1970-04-02"} <= found


def test_scrub_replaces_names_as_words_and_ids_anywhere():
    secrets = ("Doe", "MRN4711", "19700402")
    text = "/data/DOE/scans-mrn4711/x19700402.dcm: Doe does not know"
    assert scrub(text, secrets) == "/data/[removed]/scans-[removed]/x[removed].dcm: [removed] does not know"


def test_privacy_keeps_identifiers_when_asked(dicom_demo_series):
    assert Privacy(dicom_demo_series, keep=True).text("scans-MRN4711") == "scans-MRN4711"
    assert Privacy(dicom_demo_series).text("scans-MRN4711") == "scans-[removed]"
    assert Privacy(None).secrets == ()


def texts_of(path) -> str:
    """The readable text of an output: JSON as is, HTML without its embedded images (base64 may spell anything),
    every DICOM attribute value except bulk data (pixels)."""
    if path.suffix == ".dcm":
        ds = pydicom.dcmread(str(path))
        return "\n".join(str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "OF", "OD", "OL", "UN", "SQ"))
    if path.suffix == ".html":
        return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text(encoding="utf-8"))
    return path.read_text(encoding="utf-8")


def test_default_outputs_logs_and_names_hold_no_identifier(dicom_analysis):
    out, proc = dicom_analysis
    assert not FORBIDDEN.search(proc.stdout + proc.stderr), "progress lines and messages"
    checked = [p for p in out.iterdir() if p.suffix in (".json", ".html", ".dcm")]
    assert {p.suffix for p in checked} == {".json", ".html", ".dcm"}
    for path in out.iterdir():
        assert not FORBIDDEN.search(path.name)
    for path in checked:
        assert not FORBIDDEN.search(texts_of(path)), f"{path.name} holds an identifier"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert "[removed]" in report["input"]["path"], "the ID in the input folder's name is removed"
    assert "patient" not in report
    seg = pydicom.dcmread(str(out / "lungs.seg.dcm"))
    assert (str(seg.PatientName), seg.PatientID, seg.PatientBirthDate) == ("", "", "")


def test_keep_identifiers_keeps_them(dicom_demo_series, tmp_path):
    out = tmp_path / "out"
    proc = covidct("analyze", dicom_demo_series, "-o", out, "--models", "slice-resnet", "--keep-identifiers")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["patient"] == {"name": PATIENT["PatientName"], "id": PATIENT["PatientID"],
                                 "birth_date": PATIENT["PatientBirthDate"]}
    assert PATIENT["PatientID"] in report["input"]["path"]
    assert PATIENT["PatientID"] in (out / "report.html").read_text(encoding="utf-8")
    seg = pydicom.dcmread(str(out / "lesions.seg.dcm"))
    assert (str(seg.PatientName), seg.PatientID, seg.PatientBirthDate) == (
        PATIENT["PatientName"], PATIENT["PatientID"], PATIENT["PatientBirthDate"])


@pytest.mark.parametrize("flag", ["--keep-identifiers"])
def test_keep_identifiers_is_an_analyze_option(flag):
    from CovidCTAnalysis.cli import build_parser

    args = build_parser().parse_args(["analyze", "x", "-o", "y", flag])
    assert args.keep_identifiers is True
    assert build_parser().parse_args(["analyze", "x", "-o", "y"]).keep_identifiers is False
