"""DICOM outputs (issue 22) when the input is DICOM: lungs.seg.dcm and lesions.seg.dcm (Segmentation) beside the
.seg.nrrd files, the same masks voxel for voxel, coded with the project terminology; heatmap-MODEL[-METHOD].dcm
(Parametric Map) beside each heatmap .nrrd, the same values. All reference the source series, are valid for dciodvfy
(dicom3tools), and are read back by highdicom and pydicom."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import covidct

hd = pytest.importorskip("highdicom", reason="highdicom (Python 3.10 or newer) writes the DICOM outputs")

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
PM_STORAGE = "1.2.840.10008.5.1.4.1.1.30"
SEGS = ("lungs", "lesions")
# real DICOM inputs of ../shared/data: a 2-slice series without patient/study module or frame of reference, and
# single NY-SBU slices (axial and coronal)
REAL_INPUTS = ("lungmask-testdata/tests/testdata", "ny-sbu-slices/A002304/axial/19001231-076.dcm",
               "ny-sbu-slices/A002304/coronal/19001231-076.dcm")


def source_files(source: Path) -> list[Path]:
    return sorted(source.glob("*.dcm")) if source.is_dir() else [source]


def assert_seg_equals_nrrd(seg_path: Path, nrrd_path: Path, source: Path) -> None:
    """Every source slice: the SEG's label map (segment number = label) equals the NRRD mask's slice through the
    source slice's Image Position (Patient), located with the NRRD's own geometry."""
    seg = hd.seg.segread(str(seg_path))
    nrrd = sitk.ReadImage(str(nrrd_path))
    labels = sitk.GetArrayFromImage(nrrd)
    seen = set()
    for f in source_files(source):
        ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        i, j, k = nrrd.TransformPhysicalPointToIndex([float(v) for v in ds.ImagePositionPatient])
        assert (i, j) == (0, 0), "the source slice's first pixel is the mask's first voxel"
        got = seg.get_pixels_by_source_instance([ds.SOPInstanceUID], combine_segments=True,
                                                skip_overlap_checks=True)[0]
        np.testing.assert_array_equal(got, labels[k], err_msg=f"{seg_path.name} slice of {f.name}")
        seen.add(k)
    assert seen == set(range(labels.shape[0])), "every mask slice has a source slice"


def assert_pm_equals_nrrd(pm_path: Path, nrrd_path: Path) -> None:
    """Every frame of the Parametric Map equals the NRRD heatmap's slice at the frame's Image Position (Patient)."""
    ds = pydicom.dcmread(str(pm_path))
    pm = hd.pm.ParametricMap.from_dataset(ds)
    assert pm.SOPClassUID == PM_STORAGE
    nrrd = sitk.ReadImage(str(nrrd_path))
    heat = sitk.GetArrayFromImage(nrrd)
    frames = ds.pixel_array.reshape(-1, *heat.shape[1:])
    seen = set()
    for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        i, j, k = nrrd.TransformPhysicalPointToIndex(position)
        assert (i, j) == (0, 0)
        np.testing.assert_array_equal(frame, heat[k].astype(np.float32), err_msg=f"{pm_path.name} slice {k}")
        seen.add(k)
    assert seen == set(range(heat.shape[0])), "every heatmap slice is a frame"


def heatmap_pairs(out: Path) -> list[tuple[Path, Path]]:
    """(Parametric Map, NRRD) of every heatmap report.json lists under heatmaps_dicom."""
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return [(out / report["classifiers"][name]["heatmaps_dicom"][method], out / nrrd)
            for name, entry in report["classifiers"].items()
            for method, nrrd in entry.get("heatmaps", {}).items()]


def assert_valid(path: Path, iod: str = "Segmentation") -> list[str]:
    """dciodvfy's lines for ``path``: it recognises the IOD, and none of its lines is an error."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy is not installed (Debian package dicom3tools: apt-get install dicom3tools)")
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert any(l.strip() == iod for l in lines), lines
    assert not [l for l in lines if l.startswith("Error")], "\n".join(lines)
    return lines


def test_seg_files_written_and_listed(dicom_analysis):
    out, _ = dicom_analysis
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {"lungs.seg.dcm", "lesions.seg.dcm"} <= set(report["files"])
    # the demo's 3.1 mm pixels are coarser than lesions-unet was trained on, which is the one warning expected
    assert [w for w in report["warnings"] if "coarser than lesions-unet" not in w] == [], report["warnings"]
    for name in SEGS:
        ds = pydicom.dcmread(str(out / f"{name}.seg.dcm"))
        assert ds.SOPClassUID == SEG_STORAGE
        assert ds.SegmentationType == "BINARY"


@pytest.mark.parametrize("name", SEGS)
def test_seg_equals_nrrd_voxel_for_voxel(dicom_analysis, dicom_demo_series, name):
    out, _ = dicom_analysis
    assert_seg_equals_nrrd(out / f"{name}.seg.dcm", out / f"{name}.seg.nrrd", dicom_demo_series)


def test_seg_references_the_source_series(dicom_analysis, dicom_demo_series):
    out, _ = dicom_analysis
    source = pydicom.dcmread(str(source_files(dicom_demo_series)[0]), stop_before_pixels=True)
    uids = {pydicom.dcmread(str(f), stop_before_pixels=True).SOPInstanceUID for f in source_files(dicom_demo_series)}
    for name in SEGS:
        seg = pydicom.dcmread(str(out / f"{name}.seg.dcm"))
        assert seg.StudyInstanceUID == source.StudyInstanceUID
        assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
        assert seg.SeriesInstanceUID != source.SeriesInstanceUID
        (series,) = seg.ReferencedSeriesSequence
        assert series.SeriesInstanceUID == source.SeriesInstanceUID
        assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} == uids


def _codes(item) -> tuple:
    return item.CodingSchemeDesignator, item.CodeValue, item.CodeMeaning


def test_seg_segments_carry_the_project_terminology(dicom_analysis):
    out, _ = dicom_analysis
    lungs = pydicom.dcmread(str(out / "lungs.seg.dcm"))
    by_number = {s.SegmentNumber: s for s in lungs.SegmentSequence}
    assert by_number[1].SegmentLabel == "right lung"
    assert _codes(by_number[1].SegmentedPropertyTypeCodeSequence[0]) == ("SCT", "39607008", "Lung")
    assert _codes(by_number[1].SegmentedPropertyTypeCodeSequence[0]
                  .SegmentedPropertyTypeModifierCodeSequence[0]) == ("SCT", "24028007", "Right")
    assert _codes(by_number[2].SegmentedPropertyTypeCodeSequence[0]
                  .SegmentedPropertyTypeModifierCodeSequence[0]) == ("SCT", "7771000", "Left")
    assert by_number[1].SegmentAlgorithmName == "lungs-classic"

    lesions = pydicom.dcmread(str(out / "lesions.seg.dcm"))
    by_number = {s.SegmentNumber: s for s in lesions.SegmentSequence}
    assert [by_number[n].SegmentLabel for n in (1, 2, 3)] == ["ground-glass opacity", "consolidation", "crazy paving"]
    assert _codes(by_number[1].SegmentedPropertyTypeCodeSequence[0]) == ("DCM", "112120", "Ground glass opacity")
    assert _codes(by_number[3].SegmentedPropertyTypeCodeSequence[0]) == ("99COVIDCT", "CRAZYPAVING",
                                                                         "Crazy paving pattern")
    assert _codes(by_number[2].AnatomicRegionSequence[0]) == ("SCT", "39607008", "Lung")
    assert [s.CodingSchemeDesignator for s in lesions.CodingSchemeIdentificationSequence] == ["99COVIDCT"]


def test_empty_mask_keeps_its_frames_without_a_warning(dicom_demo_series, caplog):
    """A CT without lungs found still gets a SEG (every frame empty), and no library warning reaches the log."""
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.io.dicom_source import source_datasets
    from CovidCTAnalysis.io.dicomseg import build_segmentation
    from CovidCTAnalysis.labels import LUNG_SEGMENTS

    ct = load_ct(dicom_demo_series)
    empty = sitk.Image([int(n) for n in ct.input_size], sitk.sitkUInt8)
    with caplog.at_level(logging.WARNING):
        seg = build_segmentation(empty, source_datasets(ct), LUNG_SEGMENTS, algorithm=("lungs-classic", "1"),
                                 series_number=1, label="LUNGS", description="lungs")
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert seg.NumberOfFrames == len(LUNG_SEGMENTS) * ct.input_size[2]
    assert not seg.pixel_array.any()


def test_without_highdicom_the_dcm_files_are_left_out_with_a_warning(dicom_demo_series, monkeypatch, tmp_path):
    """Python 3.9 (Slicer 5.8) or an install without the dicom extra: the analysis goes on, the report says why."""
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.labels import LUNG_SEGMENTS
    from CovidCTAnalysis.pipeline.dicom_outputs import DicomOutputs

    monkeypatch.setitem(__import__("sys").modules, "highdicom", None)  # import highdicom -> ImportError
    ct = load_ct(dicom_demo_series)
    warnings: list[str] = []
    outputs = DicomOutputs(ct, warnings)
    empty = sitk.Image([int(n) for n in ct.input_size], sitk.sitkUInt8)
    assert outputs.segmentation(empty, tmp_path / "lungs.seg.dcm", LUNG_SEGMENTS, ("lungs-classic", "1"), "lungs") \
        is False
    assert outputs.parametric_map(sitk.Cast(empty, sitk.sitkFloat32), tmp_path / "h.dcm", "m", "cam") is False
    assert not list(tmp_path.iterdir())
    assert len(warnings) == 1 and "highdicom" in warnings[0] and "[dicom]" in warnings[0]


@pytest.mark.parametrize("name", SEGS)
def test_seg_is_valid_for_dciodvfy(dicom_analysis, name):
    out, _ = dicom_analysis
    assert_valid(out / f"{name}.seg.dcm")


def test_heatmaps_written_as_parametric_maps_and_listed(dicom_analysis):
    out, _ = dicom_analysis
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    entry = report["classifiers"]["slice-resnet"]
    assert set(entry["heatmaps_dicom"]) == set(entry["heatmaps"])
    assert entry["heatmaps_dicom"][next(iter(entry["heatmaps"]))] in ("heatmap-slice-resnet.dcm",
                                                                       "heatmap-slice-resnet-lrp.dcm")
    assert "heatmap-slice-resnet.dcm" in report["files"]
    assert set(entry["heatmaps_dicom"].values()) <= set(report["files"])


def test_parametric_maps_equal_the_nrrd_heatmaps(dicom_analysis):
    out, _ = dicom_analysis
    pairs = heatmap_pairs(out)
    assert len(pairs) == 2  # slice-resnet: Grad-CAM and LRP
    for pm, nrrd in pairs:
        assert_pm_equals_nrrd(pm, nrrd)


def test_parametric_maps_reference_the_source_and_are_valid(dicom_analysis, dicom_demo_series):
    out, _ = dicom_analysis
    source = pydicom.dcmread(str(source_files(dicom_demo_series)[0]), stop_before_pixels=True)
    for pm, _ in heatmap_pairs(out):
        ds = pydicom.dcmread(str(pm), stop_before_pixels=True)
        assert ds.FrameOfReferenceUID == source.FrameOfReferenceUID
        assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
        mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
        assert mapping.LUTExplanation.startswith("slice-resnet")
        assert_valid(pm, "ParametricMap")


@pytest.mark.realdata
@pytest.mark.parametrize("relative", REAL_INPUTS)
def test_real_dicom_inputs_give_valid_outputs_equal_to_nrrd(shared_data, tmp_path, relative):
    source = shared_data / relative
    if not source.exists():
        pytest.skip(f"{source} is absent")
    out = tmp_path / "out"
    proc = covidct("analyze", source, "-o", out, "--models", "slice-resnet")
    assert proc.returncode == 0, proc.stderr
    for name in SEGS:
        assert_seg_equals_nrrd(out / f"{name}.seg.dcm", out / f"{name}.seg.nrrd", source)
        assert_valid(out / f"{name}.seg.dcm")
    pairs = heatmap_pairs(out)
    assert pairs, "slice-resnet wrote heatmaps"
    for pm, nrrd in pairs:
        assert_pm_equals_nrrd(pm, nrrd)
        assert_valid(pm, "ParametricMap")
