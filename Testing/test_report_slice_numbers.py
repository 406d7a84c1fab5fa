"""Slice names in report.html and report.pdf: a reader must find the slice the report chose in their own viewer.

report.json counts axial slices on the canonical grid (0 = lowest slice); report.html names each slice by its z in
patient coordinates (mm), for a DICOM series also by its instance number and file, for a NIfTI/NRRD file stored in
another order by its own voxel index. Small synthetic inputs whose own order runs head to feet, written directly."""

from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.io import load_ct
from CovidCTAnalysis.pipeline.report import _classifier_line, write_html
from CovidCTAnalysis.pipeline.report_images import attention_charts, key_figures

N_SLICES, SIZE = 8, 24
SPACING = (1.5, 1.5, 5.0)
TOP_Z = -40.0  # z of the most superior slice (mm)
PATIENT_ID = "MRN0815"


def phantom() -> np.ndarray:
    """(rows, columns) HU: air around a soft-tissue disc with an air-filled 'lung' inside."""
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    hu = np.full((SIZE, SIZE), -1000.0)
    hu[yy ** 2 + xx ** 2 < 10 ** 2] = 40.0
    hu[yy ** 2 + xx ** 2 < 6 ** 2] = -850.0
    return hu


def write_top_first_series(folder) -> dict[int, float]:
    """An axial DICOM CT series whose instance 1 is the most superior slice; file names carry the patient ID, as
    some exports write them. Returns {instance number: z of its Image Position (Patient)}."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    pixels = np.round(phantom()).astype(np.int16)
    positions = {}
    for number in range(1, N_SLICES + 1):
        z = TOP_Z - (number - 1) * SPACING[2]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Roe^Richard", PATIENT_ID, "19650304"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, number
        ds.ImagePositionPatient = ["-17.25", "-17.25", f"{z:g}"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [f"{SPACING[1]:g}", f"{SPACING[0]:g}"]
        ds.SliceThickness = f"{SPACING[2]:g}"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = pixels.tobytes()
        ds.save_as(str(folder / f"{PATIENT_ID}_{number:03d}.dcm"), enforce_file_format=True)
        positions[number] = z
    return positions


def write_z_flipped_nrrd(path) -> None:
    """A NRRD whose third axis runs from head to feet (direction -z): file slice k lies at TOP_Z - k * 5 mm."""
    image = sitk.GetImageFromArray(np.repeat(phantom()[None], N_SLICES, axis=0).astype(np.float32))
    image.SetSpacing(SPACING)
    image.SetOrigin((-17.25, -17.25, TOP_Z))
    image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    sitk.WriteImage(image, str(path))


def lesion_at(ct, z_mm: float) -> tuple[sitk.Image, int]:
    """A lesion label map on the canonical grid with its largest part on the slice at ``z_mm`` (and a little on the
    slice below, so the report has to choose); returns it and that slice's canonical index."""
    index = ct.image.TransformPhysicalPointToIndex((0.0, 0.0, z_mm))[2]
    labels = np.zeros(sitk.GetArrayViewFromImage(ct.image).shape, np.uint8)
    labels[index, 8:16, 8:16] = 1
    labels[index - 1, 10:13, 10:13] = 1
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(ct.image)
    return image, index


def html_of(tmp_path, ct, lesions, classifiers=None, **kw) -> str:
    path = tmp_path / "report.html"
    write_html(path, ct=ct, input_path=ct.source, lungs=None, lesions=lesions, lung_ml=None, lesion_numbers=None,
               classifiers=classifiers or {}, unavailable={}, timings_s={"load": 0.1}, version="test", **kw)
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text(encoding="utf-8"))


def captions(page: str) -> list[str]:
    return re.findall(r"<figcaption>(.*?)</figcaption>", page)


@pytest.fixture(scope="module")
def dicom_ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("series") / "top-first"
    positions = write_top_first_series(folder)
    return load_ct(folder), positions


def test_dicom_series_slice_is_named_by_z_and_instance(dicom_ct, tmp_path):
    ct, positions = dicom_ct
    instance = 3  # the third file from the top
    lesions, index = lesion_at(ct, positions[instance])
    assert index == N_SLICES - instance  # report.json's number for it: counted from the feet, from 0
    page = html_of(tmp_path, ct, lesions)
    axial = captions(page)[0]
    assert axial.startswith(f"axial slice at z = {positions[instance]:.1f} mm (DICOM instance {instance}, ")
    assert f"[removed]_{instance:03d}.dcm" in axial, "the file, without the patient ID its name holds"
    assert PATIENT_ID not in page
    assert "report.json counts axial slices from 0 at the lowest" in page
    kept = html_of(tmp_path, ct, lesions, patient={"name": "Roe^Richard", "id": PATIENT_ID, "birth_date": ""})
    assert f"{PATIENT_ID}_{instance:03d}.dcm" in captions(kept)[0]


def test_dicom_series_attended_slices_are_named_by_z_and_instance(dicom_ct, tmp_path):
    ct, positions = dicom_ct
    top = [N_SLICES - 2, N_SLICES - 5]  # canonical indices, as report.json's top_slices: instances 2 and 5
    result = {"probability": 0.8, "label": "COVID-19", "top_slices": top,
              "slice_attention": {str(z): w for z, w in zip(top, (0.7, 0.3))}}
    page = html_of(tmp_path, ct, lesion_at(ct, positions[4])[0], {"da-cmil": result})
    expected = "; ".join(f"z = {positions[n]:.1f} mm (DICOM instance {n}, [removed]_{n:03d}.dcm)" for n in (2, 5))
    assert f"most attended axial slices: {expected}" in page
    assert any(c.startswith("da-cmil attention per axial slice") and "z in mm" in c for c in captions(page))


def test_z_flipped_nrrd_slice_is_named_by_z_and_its_own_index(tmp_path):
    path = tmp_path / "flipped.nrrd"
    write_z_flipped_nrrd(path)
    ct = load_ct(path)
    k = 2  # the file's own slice index (0-based), 10 mm below the top
    z = TOP_Z - k * SPACING[2]
    lesions, index = lesion_at(ct, z)
    assert index == N_SLICES - 1 - k
    axial = captions(html_of(tmp_path, ct, lesions))[0]
    assert axial.startswith(f"axial slice at z = {z:.1f} mm (k = {k} in the input file, 0-based)")


def test_figures_without_the_input_geometry_say_how_they_count(dicom_ct):
    ct, positions = dicom_ct

    lesions, index = lesion_at(ct, positions[3])
    caption = key_figures(ct.image, lesions=lesions)[0][0]  # as report.pdf gets them when no names are passed
    assert caption.startswith(f"axial slice {index + 1} of {N_SLICES} (counted from the feet, 1 = lowest slice)")
    from CovidCTAnalysis.pipeline.report_images import SliceNames

    named = key_figures(ct.image, lesions=lesions, names=SliceNames(ct.image, ct))[0][0]
    assert named.startswith(f"axial slice at z = {positions[3]:.1f} mm (DICOM instance 3, ")
    line = _classifier_line({"probability": 0.8, "label": "COVID-19", "top_slices": [index]})
    assert f"most attended axial slices {index + 1} (counted from the feet, 1 = lowest slice)" in line
    chart = attention_charts({"da-cmil": {"slice_attention": {str(index): 1.0}}})
    assert "counted from the feet" in chart[0][0]
