"""Shared fixtures: the generated demo CT and the real data folder (skipped when absent)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("COVIDCT_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $COVIDCT_DATA); tests that need it skip with the reason when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent (developers and CI have it; a fresh clone does not)")
    return DATA


def load_script(name: str):
    """scripts/NAME.py imported as a module, so a test can call its functions and ``main``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256_tree(path: Path) -> str:
    """Hash of a file or of every file below a folder, to prove inputs are left unchanged."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path if path.is_dir() else path.parent)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


#: Identifiers written into the DICOM demo series: no output, report or log of a default run may contain them.
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "MRN4711", "PatientBirthDate": "19700402"}


def write_dicom_series(image, folder: Path, patient: dict = PATIENT) -> list[Path]:
    """A CT (SimpleITK, HU, identity direction) as a DICOM CT series of one file per slice, with patient identifiers,
    so DICOM outputs and de-identification are tested without ../shared/data."""
    import numpy as np
    import pydicom
    import SimpleITK as sitk
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    arr = np.round(sitk.GetArrayFromImage(image)).astype(np.int16)  # z, y, x
    sx, sy, sz = image.GetSpacing()
    ox, oy, oz = image.GetOrigin()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for k, plane in enumerate(arr):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.update({pydicom.datadict.tag_for_keyword(k_): pydicom.DataElement(
            pydicom.datadict.tag_for_keyword(k_), pydicom.datadict.dictionary_VR(k_), v) for k_, v in patient.items()})
        ds.PatientSex = "F"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20200401", "120000", "1", ""
        ds.ReferringPhysicianName, ds.PositionReferenceIndicator = "", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, k + 1
        ds.Manufacturer = "test"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [f"{v:.6g}" for v in (ox, oy, oz + k * sz)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [f"{sy:.6g}", f"{sx:.6g}"]
        ds.SliceThickness = f"{sz:.6g}"
        ds.PatientPosition, ds.BodyPartExamined = "HFS", "CHEST"
        ds.KVP, ds.AcquisitionNumber = 120, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = plane.tobytes()
        path = folder / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


@pytest.fixture(scope="session")
def dicom_demo_series(tmp_path_factory) -> Path:
    """The demo CT (112 x 112 x 56) as a DICOM series carrying PATIENT's identifiers; the folder name holds the ID."""
    from CovidCTAnalysis.demo import make_demo_ct

    folder = tmp_path_factory.mktemp("dicom") / f"scans-{PATIENT['PatientID']}"
    write_dicom_series(make_demo_ct(size=(112, 112, 56), seed=0).image, folder)
    return folder


def covidct(*args, **kw):
    """``python -m CovidCTAnalysis ARGS`` as a subprocess (the real command line: exit status, stdout, stderr)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "CovidCTAnalysis", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kw)


@pytest.fixture(scope="session")
def dicom_analysis(dicom_demo_series, tmp_path_factory):
    """``covidct analyze`` of the DICOM demo series (slice-resnet only, to keep it short): (OUTDIR, process)."""
    out = tmp_path_factory.mktemp("dicom-analysis") / "out"
    proc = covidct("analyze", dicom_demo_series, "-o", out, "--models", "slice-resnet", "--progress", "jsonl")
    assert proc.returncode == 0, proc.stderr
    return out, proc
