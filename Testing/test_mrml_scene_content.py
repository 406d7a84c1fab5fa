"""Outputs of a real `covidct analyze --demo` run turned into a real MRML scene (slicer-core), node kind by node kind.

One analyze run on a small demo CT (module-scoped fixture), through the same background runner the Slicer modules
use. This version ships no lesion model and no classifier, so analyze writes neither lesions.seg.nrrd nor
heatmap-MODEL.nrrd yet: the fixture writes them itself, the lesion map from the demo CT's exact truth
(demo-truth-lesions.nrrd, which analyze --demo leaves in OUT) and a smooth heatmap on the CT grid (the truth
lesions blurred, scaled to 0..1). When the models arrive, the real files take their place and these tests stay.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402
import vtk  # noqa: E402

from CovidCTAnalysis.errors import InputError  # noqa: E402
from CovidCTAnalysis.io import write_label_map, write_volume  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml import heatmaps  # noqa: E402
from CovidCTAnalysis.mrml.markups import markup_points  # noqa: E402
from CovidCTAnalysis.mrml.process import BackgroundProcess, ProcessState, analyze_command, process_environment  # noqa: E402
from CovidCTAnalysis.mrml.results import load_analysis  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import (  # noqa: E402
    label_array,
    load_segmentation,
    polydata_of,
    save_segmentation,
    segment_ids_by_name,
    segment_voxel_counts,
)
from CovidCTAnalysis.mrml.tables import table_rows  # noqa: E402
from CovidCTAnalysis.mrml.terminology import terminology_entries  # noqa: E402
from CovidCTAnalysis.mrml.volumes import array_from_volume, geometry, ijk_to_ras, load_volume, write_volume_copy  # noqa: E402

pytestmark = pytest.mark.mrml

DEMO_SIZE = (112, 112, 56)
HEATMAP_MODEL = "demo"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def outdir(tmp_path_factory) -> Path:
    """OUT of one real analyze run (through BackgroundProcess), plus truth-made lesions and heatmap files."""
    out = tmp_path_factory.mktemp("analysis") / "out"
    process = BackgroundProcess(analyze_command(None, out, demo_size=DEMO_SIZE, device="cpu", python=sys.executable),
                                env=process_environment())
    process.start()
    events = process.wait(timeout_s=900)
    assert process.state is ProcessState.SUCCEEDED, process.error_message
    assert {e.stage for e in events} >= {"demo", "load", "lungs", "report"}

    truth = sitk.ReadImage(str(out / "demo-truth-lesions.nrrd"))
    write_label_map(truth, out / "lesions.seg.nrrd", LESION_SEGMENTS)
    blurred = sitk.SmoothingRecursiveGaussian(sitk.Cast(truth > 0, sitk.sitkFloat32), 6.0)
    array = sitk.GetArrayFromImage(blurred)
    heat = sitk.GetImageFromArray(np.clip(array / array.max(), 0.0, 1.0).astype(np.float32))
    heat.CopyInformation(truth)
    write_volume(heat, out / f"heatmap-{HEATMAP_MODEL}.nrrd")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))  # the loader loads the maps it names
    report["classifiers"][HEATMAP_MODEL] = {"probability": 0.5, "label": "COVID-19",
                                            "heatmap": f"heatmap-{HEATMAP_MODEL}.nrrd"}
    (out / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def loaded(outdir):
    """A fresh headless scene with the analysis loaded (the CT from the report, like a --demo run in Slicer)."""
    headless = new_scene()
    renderer = headless.slice_renderer("Red", "Axial", (160, 160))
    result = load_analysis(headless.scene, outdir)
    yield headless, renderer, result
    headless.close()


@pytest.fixture
def headless():
    """A fresh scene for one test, closed afterwards."""
    with new_scene() as fresh:
        yield fresh


def _sitk_array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _sitk_ijk_to_ras(path: Path) -> np.ndarray:
    image = sitk.ReadImage(str(path))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin())
    return matrix


def _segment_names(node) -> list[str]:
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


# -- volumes and geometry -------------------------------------------------------------------------------------------
def test_ct_volume_is_the_analyzed_ct_on_its_grid(loaded, outdir):
    _, _, result = loaded
    ct = result.volume
    assert ct.IsA("vtkMRMLScalarVolumeNode") and ct.GetName() == "demo-ct"
    g = geometry(ct)
    assert g.dimensions == tuple(json.loads((outdir / "report.json").read_text(encoding="utf-8"))["input"]["size"]) == DEMO_SIZE
    np.testing.assert_allclose(g.ijk_to_ras, _sitk_ijk_to_ras(outdir / "demo-ct.nrrd"), atol=1e-4)
    np.testing.assert_array_equal(array_from_volume(ct), _sitk_array(outdir / "demo-ct.nrrd"))


def test_segmentations_lie_on_the_ct_geometry(loaded):
    _, _, result = loaded
    ct_geometry = geometry(result.volume)
    for node in (result.lungs, result.lesions):
        labelmap = slicer.vtkOrientedImageData()
        segment_id = node.GetSegmentation().GetNthSegmentID(0)
        assert slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(node, segment_id,
                                                                                                labelmap)
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        own = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        # same axes and spacing, and a voxel grid that coincides with the CT's (integer index offset)
        np.testing.assert_allclose(own[:3, :3], ct_geometry.ijk_to_ras[:3, :3], atol=1e-5)
        offset = np.linalg.solve(ct_geometry.ijk_to_ras[:3, :3], own[:3, 3] - ct_geometry.ijk_to_ras[:3, 3])
        np.testing.assert_allclose(offset, np.round(offset), atol=1e-4)
        reference = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        assert reference is result.volume or reference.GetID() == result.volume.GetID()


# -- lungs ----------------------------------------------------------------------------------------------------------
def test_lung_segments_have_names_colours_and_terminology(loaded):
    _, _, result = loaded
    node = result.lungs
    assert node.IsA("vtkMRMLSegmentationNode") and node.GetName() == "lungs"
    assert _segment_names(node) == ["right lung", "left lung"]
    expected = {"right lung": "24028007", "left lung": "7771000"}
    for segment in LUNG_SEGMENTS:
        item = node.GetSegmentation().GetSegment(segment_ids_by_name(node)[segment.name])
        np.testing.assert_allclose(item.GetColor(), segment.color, atol=1e-6)
        entry = slicer.vtkSlicerTerminologyEntry()
        assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(item.GetTerminology(), entry)
        assert (entry.GetCategoryObject().GetCodeValue(), entry.GetTypeObject().GetCodeValue()) == \
            ("123037004", "39607008")
        assert entry.GetTypeModifierObject().GetCodeValue() == expected[segment.name]


def test_lung_voxel_counts_equal_the_label_map(loaded, outdir):
    _, _, result = loaded
    truth = _sitk_array(outdir / "lungs.seg.nrrd")
    counts = segment_voxel_counts(result.lungs, result.volume)
    assert counts == {"right lung": int((truth == 1).sum()), "left lung": int((truth == 2).sum())}
    assert counts["right lung"] > 1000 and counts["left lung"] > 1000
    np.testing.assert_array_equal(label_array(result.lungs, result.volume, LUNG_SEGMENTS), truth)


# -- lesions --------------------------------------------------------------------------------------------------------
def test_lesion_segments_equal_the_demo_truth(loaded, outdir):
    _, _, result = loaded
    truth = _sitk_array(outdir / "demo-truth-lesions.nrrd")
    present = [s.name for s in LESION_SEGMENTS if (truth == s.label).any()]
    assert present == ["ground-glass opacity", "consolidation"]  # the demo has no crazy paving
    assert _segment_names(result.lesions) == [s.name for s in LESION_SEGMENTS]  # the file lists every class
    counts = segment_voxel_counts(result.lesions, result.volume)
    assert counts == {s.name: int((truth == s.label).sum()) for s in LESION_SEGMENTS}
    assert counts["ground-glass opacity"] > 100 and counts["consolidation"] > 50
    np.testing.assert_array_equal(label_array(result.lesions, result.volume, LESION_SEGMENTS), truth)
    codes = {}
    for name in present:
        segment_id = segment_ids_by_name(result.lesions)[name]
        entry = slicer.vtkSlicerTerminologyEntry()
        tag = result.lesions.GetSegmentation().GetSegment(segment_id).GetTerminology()
        assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(tag, entry)
        assert entry.GetCategoryObject().GetCodeValue() == "49755003"  # morphologically altered structure
        assert entry.GetRegionObject().GetCodeValue() == "39607008"  # in the lung
        codes[name] = (entry.GetTypeObject().GetCodingSchemeDesignator(), entry.GetTypeObject().GetCodeValue())
    assert codes == {"ground-glass opacity": ("DCM", "112120"), "consolidation": ("RADLEX", "RID43255")}


def test_lesions_have_closed_surfaces_in_3d(loaded):
    _, _, result = loaded
    node = result.lesions
    display = node.GetDisplayNode()
    assert display.GetVisibility3D() and display.GetPreferredDisplayRepresentationName3D() == "Closed surface"
    assert node.GetSegmentation().ContainsRepresentation("Closed surface")
    counts = segment_voxel_counts(node, result.volume)
    for name, segment_id in segment_ids_by_name(node).items():
        surface = polydata_of(node, segment_id)
        if counts[name] == 0:
            assert surface.GetNumberOfPolys() == 0, name
            continue
        assert surface.GetNumberOfPolys() > 20, name
        # the surface encloses the segment: its bounds match the voxels' RAS extent within a voxel
        mask = label_array(node, result.volume, LESION_SEGMENTS) == next(
            s.label for s in LESION_SEGMENTS if s.name == name)
        k, j, i = np.nonzero(mask)
        corners = ijk_to_ras(result.volume) @ np.vstack([i, j, k, np.ones_like(i)])
        bounds = surface.GetBounds()
        spacing = max(result.volume.GetSpacing())
        for axis in range(3):
            assert bounds[2 * axis] == pytest.approx(corners[axis].min(), abs=spacing)
            assert bounds[2 * axis + 1] == pytest.approx(corners[axis].max(), abs=spacing)


def test_markups_localize_the_demo_lesions(loaded, outdir):
    from scipy import ndimage

    _, _, result = loaded
    assert result.markups.IsA("vtkMRMLMarkupsFiducialNode")
    points = markup_points(result.markups)
    # independent reference: 26-connected components of the truth file, centroids through SimpleITK (LPS -> RAS)
    image = sitk.ReadImage(str(outdir / "demo-truth-lesions.nrrd"))
    truth = sitk.GetArrayFromImage(image)
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    expected = []
    for segment in LESION_SEGMENTS:
        components, count = ndimage.label(truth == segment.label, structure=np.ones((3, 3, 3)))
        for index in range(1, count + 1):
            k, j, i = np.nonzero(components == index)
            if k.size * voxel_ml >= 0.05:
                lps = image.TransformContinuousIndexToPhysicalPoint((i.mean(), j.mean(), k.mean()))
                expected.append((segment.name, LPS_TO_RAS @ np.array(lps)))
    assert len(points) == len(expected) >= 3
    for name, ras in expected:
        distances = [np.linalg.norm(np.array(p) - ras) for _, p in points]
        nearest = int(np.argmin(distances))
        assert distances[nearest] < 1e-3 and points[nearest][0].startswith(name)
    # and the report's own truth list: lesions that are one component sit exactly on a point, on the right side
    lesions = json.loads((outdir / "report.json").read_text(encoding="utf-8"))["demo_truth"]["lesion_list"]
    on_point = 0
    for lesion in lesions:
        ras = LPS_TO_RAS @ np.array(lesion["centre_mm"])
        distances = [np.linalg.norm(np.array(p) - ras) for _, p in points]
        if min(distances) < 0.5:
            on_point += 1
            assert f"{lesion['side']} lung" in points[int(np.argmin(distances))][0]
    assert on_point >= len(lesions) // 2


# -- heatmaps -------------------------------------------------------------------------------------------------------
def test_heatmap_volume_has_colour_table_range_and_threshold(loaded, outdir):
    _, _, result = loaded
    node = result.heatmaps[HEATMAP_MODEL]
    assert node.IsA("vtkMRMLScalarVolumeNode") and node.GetName() == f"{HEATMAP_MODEL} heatmap"
    np.testing.assert_array_equal(array_from_volume(node), _sitk_array(outdir / f"heatmap-{HEATMAP_MODEL}.nrrd"))
    assert geometry(node).matches(geometry(result.volume))
    display = node.GetDisplayNode()
    table = display.GetColorNode()
    assert table.GetName() == heatmaps.COLOR_TABLE_NAME and table.GetNumberOfColors() == 256
    rgba = [0.0] * 4
    table.GetColor(0, rgba)
    assert rgba[2] > 0.4 and rgba[0] == 0  # jet starts blue
    table.GetColor(255, rgba)
    assert rgba[0] > 0.4 and rgba[2] == 0  # and ends red
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == pytest.approx((0.0, 1.0))
    assert not display.GetAutoWindowLevel()
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == pytest.approx(heatmaps.DEFAULT_THRESHOLD)
    assert node.GetAttribute(heatmaps.MODEL_ATTRIBUTE) == HEATMAP_MODEL


def _axial_offset_through_heatmap_peak(node) -> float:
    values = array_from_volume(node)
    k = int(np.argmax(values.reshape(values.shape[0], -1).max(axis=1)))
    return float((ijk_to_ras(node) @ np.array([0, 0, k, 1.0]))[2])


def _heatmap_under_pixels(renderer, node) -> np.ndarray:
    """Heatmap value (nearest voxel) under each view pixel, NaN outside the volume."""
    rows, cols = renderer.rgba().shape[:2]
    y, x = np.mgrid[0:rows, 0:cols]
    xy = np.vstack([x.ravel(), y.ravel(), np.zeros(x.size), np.ones(x.size)])
    ijk = np.linalg.inv(ijk_to_ras(node)) @ renderer.xy_to_ras() @ xy
    index = np.round(ijk[:3]).astype(int)
    values = array_from_volume(node)
    inside = np.all((index >= 0) & (index < np.array(values.shape[::-1])[:, None]), axis=0)
    out = np.full(x.size, np.nan)
    out[inside] = values[index[2, inside], index[1, inside], index[0, inside]]
    return out.reshape(rows, cols)


def test_heatmap_is_composited_over_the_ct_in_a_slice_view(loaded):
    headless, renderer, result = loaded
    node = result.heatmaps[HEATMAP_MODEL]
    composite = renderer.composite
    if next(iter(result.heatmaps)) != HEATMAP_MODEL:  # a shipped classifier's heatmap is shown first
        heatmaps.show_heatmap(headless.scene, node)
    assert composite.GetBackgroundVolumeID() == result.volume.GetID()
    assert composite.GetForegroundVolumeID() == node.GetID()
    assert composite.GetForegroundOpacity() == pytest.approx(heatmaps.DEFAULT_OPACITY)
    renderer.fit()
    renderer.set_offset(_axial_offset_through_heatmap_peak(node))
    blended = renderer.rgba()[..., :3].astype(float)
    background = renderer.layer_rgba("background")[..., :3].astype(float)
    foreground = renderer.layer_rgba("foreground").astype(float)
    alpha = heatmaps.DEFAULT_OPACITY * foreground[..., 3:] / 255.0
    # Slicer's blend: out = (1 - opacity * a_fg) * background + opacity * a_fg * foreground
    np.testing.assert_allclose(blended, (1 - alpha) * background + alpha * foreground[..., :3], atol=2.0)
    values = _heatmap_under_pixels(renderer, node)
    tinted = np.abs(blended - background).max(axis=2) > 3
    clearly_hot = values > heatmaps.DEFAULT_THRESHOLD + 0.1
    clearly_cold = values < heatmaps.DEFAULT_THRESHOLD - 0.1
    assert clearly_hot.sum() > 20
    assert tinted[clearly_hot].mean() > 0.95  # the hot region is tinted
    assert tinted[clearly_cold].mean() < 0.02  # and the rest of the CT is not


def test_heatmap_opacity_and_visibility_are_adjustable(loaded):
    headless, renderer, result = loaded
    node = result.heatmaps[HEATMAP_MODEL]
    heatmaps.show_heatmap(headless.scene, node)
    renderer.set_offset(_axial_offset_through_heatmap_peak(node))
    heatmaps.set_heatmap_opacity(node, 0.8)
    assert renderer.composite.GetForegroundOpacity() == pytest.approx(0.8)
    strong = renderer.rgba()[..., :3].astype(float)
    heatmaps.hide_heatmap(headless.scene, node)
    assert renderer.composite.GetForegroundVolumeID() is None and not heatmaps.is_shown(headless.scene, node)
    plain = renderer.rgba()[..., :3].astype(float)
    np.testing.assert_allclose(plain, renderer.layer_rgba("background")[..., :3], atol=1.0)
    heatmaps.show_heatmap(headless.scene, node, result.volume)
    assert renderer.composite.GetForegroundOpacity() == pytest.approx(0.8)  # the heatmap kept its own opacity
    np.testing.assert_allclose(renderer.rgba()[..., :3], strong, atol=1.0)
    heatmaps.set_heatmap_opacity(node, heatmaps.DEFAULT_OPACITY)


# -- table ----------------------------------------------------------------------------------------------------------
def test_table_holds_the_report_numbers(loaded, outdir):
    _, _, result = loaded
    report = json.loads((outdir / "report.json").read_text(encoding="utf-8"))
    assert result.table.IsA("vtkMRMLTableNode")
    rows = {r.measurement: r for r in table_rows(result.table)}
    assert rows["Right lung volume"].value == pytest.approx(report["lungs"]["right_ml"])
    assert rows["Left lung volume"].value == pytest.approx(report["lungs"]["left_ml"])
    assert rows["Lung volume"].value == pytest.approx(report["lungs"]["total_ml"])
    assert rows["Right lung volume"].unit == "mL"
    if report["lesions"] is None:  # no lesion model in this version: the table says so
        assert math.isnan(rows["Lesions"].value) and "not available" in rows["Lesions"].note
    else:
        assert rows["Lesion volume"].value == pytest.approx(report["lesions"]["total_ml"])
        assert rows["Severity band"].note.startswith(report["lesions"]["severity"]["band"])
    for model, values in report["classifiers"].items():
        assert rows[f"P(COVID-19), {model}"].value == pytest.approx(values["probability"])
        if "corona_score_cm3" in values:
            assert rows[f"Corona score, {model}"].value == pytest.approx(values["corona_score_cm3"])


def test_table_puts_the_reports_warnings_first():
    """A slice analyzed without a lung mask: the warning heads the table, where the reader of the numbers sees it."""
    from CovidCTAnalysis.mrml.tables import report_rows

    warning = "lung mask not found: no lungs found in the image; % involvement and the severity band are missing"
    rows = report_rows({"warnings": [warning], "lungs": None,
                        "lesions": {"ggo_ml": 1.0, "consolidation_ml": 0.5, "total_ml": 1.5}})
    assert (rows[0].measurement, rows[0].note) == ("Warning", warning) and math.isnan(rows[0].value)
    assert [r.measurement for r in rows[1:]] == ["Ground-glass opacity volume", "Consolidation volume", "Lesion volume"]
    assert report_rows({"warnings": []}) == []


# -- the user's volume, untouched -----------------------------------------------------------------------------------
def _state(node) -> tuple:
    display = node.GetDisplayNode()
    voxels = hashlib.sha256(array_from_volume(node).tobytes()).hexdigest()
    return (node.GetMTime(), node.GetImageData().GetMTime(), display.GetMTime(), display.GetWindow(),
            display.GetLevel(), tuple(geometry(node).ijk_to_ras.ravel()), voxels, node.GetName())


def test_input_volume_node_is_never_modified(outdir, headless):
    renderer = headless.slice_renderer()
    ct = load_volume(headless.scene, outdir / "demo-ct.nrrd", "my CT")
    renderer.composite.SetBackgroundVolumeID(ct.GetID())
    renderer.fit()
    renderer.rgba()
    before = _state(ct)
    write_volume_copy(ct, outdir.parent / "copy.nrrd")  # what a module does before running the analysis
    result = load_analysis(headless.scene, outdir, reference_volume=ct)
    renderer.set_offset(_axial_offset_through_heatmap_peak(result.heatmaps[HEATMAP_MODEL]))
    renderer.rgba()
    assert result.volume is ct
    assert _state(ct) == before
    np.testing.assert_array_equal(_sitk_array(outdir.parent / "copy.nrrd"), array_from_volume(ct))
    assert ct.GetStorageNode().GetFileName().endswith("demo-ct.nrrd")


# -- files round trips and scene save/reload ------------------------------------------------------------------------
def test_seg_nrrd_round_trip_keeps_segments(loaded, tmp_path, headless):
    _, _, result = loaded
    path = save_segmentation(result.lesions, tmp_path / "lesions.seg.nrrd")
    ct = load_volume(headless.scene, result.volume.GetStorageNode().GetFileName())
    again = load_segmentation(headless.scene, path, LESION_SEGMENTS, name="again", reference_volume=ct)
    assert _segment_names(again) == _segment_names(result.lesions)
    for name, segment_id in segment_ids_by_name(again).items():
        original = result.lesions.GetSegmentation().GetSegment(segment_ids_by_name(result.lesions)[name])
        copy = again.GetSegmentation().GetSegment(segment_id)
        assert copy.GetTerminology() == original.GetTerminology()
        np.testing.assert_allclose(copy.GetColor(), original.GetColor())
    np.testing.assert_array_equal(label_array(again, ct, LESION_SEGMENTS),
                                  label_array(result.lesions, result.volume, LESION_SEGMENTS))
    # and the file is a plain label map on the CT grid for any reader
    np.testing.assert_array_equal(_sitk_array(path), label_array(again, ct, LESION_SEGMENTS))


def test_heatmap_nrrd_round_trip(loaded, tmp_path, headless):
    _, _, result = loaded
    node = result.heatmaps[HEATMAP_MODEL]
    path = write_volume_copy(node, tmp_path / "heatmap-copy.nrrd")
    np.testing.assert_array_equal(_sitk_array(path), array_from_volume(node))
    np.testing.assert_allclose(_sitk_ijk_to_ras(path), ijk_to_ras(node), atol=1e-5)
    again = heatmaps.load_heatmap(headless.scene, path, "copy", threshold=0.3)
    assert again.GetDisplayNode().GetLowerThreshold() == pytest.approx(0.3)
    np.testing.assert_array_equal(array_from_volume(again), array_from_volume(node))


def test_scene_save_and_reload(loaded, tmp_path, headless):
    first, _, result = loaded
    scene = first.scene
    scene.SetRootDirectory(str(tmp_path))
    color_table = heatmaps.heatmap_color_table(scene)
    # plot charts and series (an attention bar chart) are not storable: they are saved in the scene file itself
    storables = [n for n in (result.volume, *result.nodes(), color_table) if hasattr(n, "GetStorageNode")]
    for node in storables:  # write each node's data next to the scene, as Slicer's Save does
        if node.GetStorageNode() is None:
            node.AddDefaultStorageNode()
        storage = node.GetStorageNode()
        name = node.GetName().replace(" ", "_")
        storage.SetFileName(str(tmp_path / (name + "." + storage.GetDefaultWriteFileExtension())))
        assert storage.WriteData(node), node.GetName()
    scene.SetURL(str(tmp_path / "analysis.mrml"))
    assert scene.Commit()

    again = headless
    again.scene.SetURL(str(tmp_path / "analysis.mrml"))
    assert again.scene.Connect()

    def first(class_name, name):
        node = again.scene.GetFirstNode(name, class_name)
        assert node is not None, name
        return node

    ct = first("vtkMRMLScalarVolumeNode", result.volume.GetName())
    np.testing.assert_array_equal(array_from_volume(ct), array_from_volume(result.volume))
    lungs = first("vtkMRMLSegmentationNode", "lungs")
    lesions = first("vtkMRMLSegmentationNode", "lesions")
    assert _segment_names(lesions) == _segment_names(result.lesions)
    assert segment_voxel_counts(lungs, ct) == segment_voxel_counts(result.lungs, result.volume)
    heat = heatmaps.heatmap_nodes(again.scene)[HEATMAP_MODEL]
    assert heat.GetDisplayNode().GetColorNode().GetName() == heatmaps.COLOR_TABLE_NAME
    assert heat.GetDisplayNode().GetColorNode().GetNumberOfColors() == 256
    assert heat.GetDisplayNode().GetApplyThreshold()
    assert heat.GetDisplayNode().GetLowerThreshold() == pytest.approx(heatmaps.DEFAULT_THRESHOLD)
    table = first("vtkMRMLTableNode", result.table.GetName())
    reloaded_rows = table_rows(table)
    assert [r.measurement for r in reloaded_rows] == [r.measurement for r in table_rows(result.table)]
    # the table file keeps 6 significant digits
    assert reloaded_rows[0].value == pytest.approx(table_rows(result.table)[0].value, rel=1e-5, nan_ok=True)
    valued = [i for i, r in enumerate(table_rows(result.table)) if r.value == r.value]  # NaN: a row with no number
    assert valued and all(reloaded_rows[i].value == pytest.approx(table_rows(result.table)[i].value, rel=1e-5)
                          for i in valued)
    markups = first("vtkMRMLMarkupsFiducialNode", result.markups.GetName())
    np.testing.assert_allclose([p for _, p in markup_points(markups)],
                               [p for _, p in markup_points(result.markups)], atol=1e-3)


# -- refusals -------------------------------------------------------------------------------------------------------
def test_heatmap_off_the_ct_grid_is_refused_and_leaves_no_node(loaded, tmp_path):
    headless, _, result = loaded
    image = sitk.Image(8, 8, 8, sitk.sitkFloat32)
    path = write_volume(image, tmp_path / "heatmap-bad.nrrd")
    count = headless.scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="not on the grid"):
        heatmaps.load_heatmap(headless.scene, path, "bad", reference_volume=result.volume)
    assert headless.scene.GetNumberOfNodes() == count


def test_output_folder_without_report_is_refused(tmp_path, headless):
    with pytest.raises(InputError, match="analysis report not found") as error:
        load_analysis(headless.scene, tmp_path)
    assert str(tmp_path) in str(error.value)


def test_terminology_file_is_loaded_and_matches_the_label_colours(headless):
    assert headless.terminology_context == "Segmentation category and type - CovidCTAnalysis"
    logic = headless.terminologies_logic
    assert logic.GetNumberOfCategoriesInTerminology(headless.terminology_context) == 2
    entries = terminology_entries()
    from CovidCTAnalysis.labels import LOCALIZATION_SEGMENT
    from CovidCTAnalysis.lesions import PSEUDO_MASK_SEGMENT

    for segment in (*LUNG_SEGMENTS, *LESION_SEGMENTS, LOCALIZATION_SEGMENT, PSEUDO_MASK_SEGMENT):
        assert entries[segment.name].color == tuple(round(255 * c) for c in segment.color), segment.name
    assert entries["crazy paving"].type.scheme == "99COVIDCT"  # private code until a verified standard one


def test_segmentation_off_the_ct_grid_is_refused_and_leaves_no_node(loaded, outdir, tmp_path):
    headless, _, result = loaded
    labels = sitk.ReadImage(str(outdir / "lungs.seg.nrrd"))
    shifted = sitk.Image(labels)
    shifted.SetOrigin(tuple(o + 0.5 * s for o, s in zip(labels.GetOrigin(), labels.GetSpacing())))
    coarse = sitk.Image(labels)
    coarse.SetSpacing(tuple(2 * s for s in labels.GetSpacing()))
    count = headless.scene.GetNumberOfNodes()
    for name, image, problem in (("shifted", shifted, "voxel centres do not coincide"),
                                 ("coarse", coarse, "different voxel axes or spacing")):
        path = write_label_map(image, tmp_path / f"{name}.seg.nrrd", LUNG_SEGMENTS)
        with pytest.raises(InputError, match=problem) as error:
            load_segmentation(headless.scene, path, LUNG_SEGMENTS, name=name, reference_volume=result.volume)
        assert str(path) in str(error.value)
    assert headless.scene.GetNumberOfNodes() == count


# -- a classifier's localized lesion (DeCoVNet, seed 002 section II-E) ---------------------------------------------
def test_localized_lesion_becomes_a_segment_and_a_centre_point(loaded, outdir, tmp_path):
    from CovidCTAnalysis.labels import LOCALIZATION_SEGMENT
    from CovidCTAnalysis.mrml.results import load_localization

    headless, _, result = loaded
    truth = sitk.ReadImage(str(outdir / "demo-truth-lesions.nrrd"))
    labels = sitk.GetArrayFromImage(truth)
    components = sitk.GetArrayFromImage(sitk.RelabelComponent(sitk.ConnectedComponent(truth > 0)))
    mask = sitk.GetImageFromArray((components == 1).astype(np.uint8))  # the largest lesion
    mask.CopyInformation(truth)
    path = write_label_map(mask, tmp_path / "localization-demo.seg.nrrd", (LOCALIZATION_SEGMENT,))
    segmentation, points = load_localization(headless.scene, path, result.volume, "demo")
    try:
        assert _segment_names(segmentation) == [LOCALIZATION_SEGMENT.name]
        assert np.array_equal(label_array(segmentation, result.volume, (LOCALIZATION_SEGMENT,)),
                              (components == 1).astype(np.uint8))
        (label, ras), = markup_points(points)
        k, j, i = np.nonzero(components == 1)
        lps = truth.TransformContinuousIndexToPhysicalPoint((i.mean(), j.mean(), k.mean()))
        assert np.allclose(ras, LPS_TO_RAS @ np.array(lps), atol=1e-3)
        assert label.startswith(LOCALIZATION_SEGMENT.name) and labels[components == 1].all()
    finally:
        for node in (segmentation, points):
            headless.scene.RemoveNode(node)
