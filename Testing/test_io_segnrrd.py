"""Our .seg.nrrd files as 3D Slicer reads them (slicer-core's vtkMRMLSegmentationStorageNode, no GUI)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.io import load_ct, to_input_grid, write_label_map
from CovidCTAnalysis.io.segnrrd import header, segment_id, terminology_tags
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS, Segment


def read_with_slicer(path):
    """{name: (id, color, label value, voxels of that segment, ijk->ras 3x4)} as Slicer loads the file."""
    slicer = pytest.importorskip("slicer")
    from vtk import vtkMatrix4x4
    from vtk.util.numpy_support import vtk_to_numpy

    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    node.SetAndObserveStorageNodeID(storage.GetID())
    storage.SetFileName(str(path))
    assert storage.ReadData(node) == 1
    segmentation = node.GetSegmentation()
    assert segmentation.GetSourceRepresentationName() == "Binary labelmap"
    out = {}
    for i in range(segmentation.GetNumberOfSegments()):
        sid = segmentation.GetNthSegmentID(i)
        seg = segmentation.GetSegment(sid)
        labelmap = seg.GetRepresentation("Binary labelmap")
        scalars = labelmap.GetPointData().GetScalars()
        values = vtk_to_numpy(scalars) if scalars is not None else np.zeros(0)
        m = vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(m)
        ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(3)])
        out[seg.GetName()] = (sid, tuple(seg.GetColor()), seg.GetLabelValue(),
                              int(np.count_nonzero(values == seg.GetLabelValue())), ijk_to_ras, labelmap.GetExtent())
    return out


def _lps_to_ras_matrix(img: sitk.Image) -> np.ndarray:
    d = np.asarray(img.GetDirection()).reshape(3, 3) * np.asarray(img.GetSpacing())
    flip = np.diag([-1.0, -1.0, 1.0])
    return np.hstack([flip @ d, (flip @ np.asarray(img.GetOrigin()))[:, None]])


@pytest.mark.mrml
def test_slicer_reads_names_colours_counts_and_geometry(tmp_path):
    arr = np.zeros((5, 20, 24), np.uint8)
    arr[1:4, 3:12, 2:10] = 1    # 3*9*8 = 216
    arr[2:4, 4:15, 14:20] = 2   # 2*11*6 = 132
    labels = sitk.GetImageFromArray(arr)
    labels.SetSpacing((0.7, 0.8, 2.5))
    labels.SetOrigin((-12.0, 30.0, 100.0))
    labels.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # a RAS input grid
    write_label_map(labels, tmp_path / "lungs.seg.nrrd", LUNG_SEGMENTS)
    seen = read_with_slicer(tmp_path / "lungs.seg.nrrd")
    assert list(seen) == ["right lung", "left lung"]
    for seg, count in zip(LUNG_SEGMENTS, (216, 132)):
        sid, color, value, voxels, ijk_to_ras, _ = seen[seg.name]
        assert sid == segment_id(seg) and value == seg.label and voxels == count
        assert color == pytest.approx(seg.color, abs=1e-6)
        np.testing.assert_allclose(ijk_to_ras, _lps_to_ras_matrix(labels), atol=1e-6)


@pytest.mark.mrml
def test_empty_segments_are_listed(tmp_path):
    arr = np.zeros((3, 20, 24), np.uint8)
    arr[1, 5:9, 5:9] = 1  # only GGO present
    write_label_map(sitk.GetImageFromArray(arr), tmp_path / "lesions.seg.nrrd", LESION_SEGMENTS)
    seen = read_with_slicer(tmp_path / "lesions.seg.nrrd")
    assert list(seen) == ["ground-glass opacity", "consolidation", "crazy paving"]
    assert [seen[s.name][3] for s in LESION_SEGMENTS] == [16, 0, 0]
    assert [seen[s.name][2] for s in LESION_SEGMENTS] == [1, 2, 3]


@pytest.mark.mrml
def test_all_empty_and_single_slice(tmp_path):
    write_label_map(sitk.Image(24, 20, 1, sitk.sitkUInt8), tmp_path / "none.seg.nrrd", LUNG_SEGMENTS)
    seen = read_with_slicer(tmp_path / "none.seg.nrrd")
    assert {k: v[3] for k, v in seen.items()} == {"right lung": 0, "left lung": 0}


@pytest.mark.mrml
def test_slicer_reads_a_label_map_put_back_on_a_stack_grid(tmp_path):
    """End to end on a PNG stack (input grid z toward the feet): Slicer places segment voxels on the input grid."""
    from PIL import Image

    (tmp_path / "st").mkdir()
    for k in range(1, 5):
        g = np.full((20, 24), 40 * k, np.uint8)
        g[0, 0] = 0
        Image.fromarray(g).save(tmp_path / "st" / f"{k}.png")
    ct = load_ct(tmp_path / "st")
    canonical = sitk.Cast(ct.image > -900, sitk.sitkUInt8)  # files 2-4 (display value >= 80) but pixel [0, 0]
    back = to_input_grid(canonical, ct)
    write_label_map(back, tmp_path / "lungs.seg.nrrd", LUNG_SEGMENTS[:1])
    seen = read_with_slicer(tmp_path / "lungs.seg.nrrd")
    expected = int(np.count_nonzero(sitk.GetArrayViewFromImage(canonical)))
    assert seen["right lung"][3] == expected
    np.testing.assert_allclose(seen["right lung"][4], _lps_to_ras_matrix(back), atol=1e-6)


def test_header_keys_are_numbered_without_gaps():
    keys = header([Segment(3, "a b", (1, 0, 0)), Segment(1, "c", (0, 1, 0))], (4, 5, 6))
    assert keys["Segment0_LabelValue"] == "3" and keys["Segment1_ID"] == "c" and keys["Segment0_ID"] == "a_b"
    assert keys["Segment1_Extent"] == "0 3 0 4 0 5"
    assert "Segment2_ID" not in keys
    with pytest.raises(ValueError, match="share the ID"):
        header([Segment(1, "a b", (1, 0, 0)), Segment(2, "a_b", (0, 1, 0))], (4, 5, 6))


@pytest.mark.mrml
@pytest.mark.parametrize("segment", LUNG_SEGMENTS + LESION_SEGMENTS, ids=lambda s: s.name)
def test_terminology_tag_is_what_slicer_serializes(segment):
    """Our JSON-only serialization equals Slicer's vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry."""
    pytest.importorskip("slicer")
    from CovidCTAnalysis.mrml.terminology import entry_for

    assert terminology_tags()[segment.name] == entry_for(segment.name).serialized()


@pytest.mark.mrml
def test_slicer_reads_the_terminology_tag(tmp_path):
    arr = np.zeros((3, 20, 24), np.uint8)
    arr[1, 2:5, 2:5] = 1
    write_label_map(sitk.GetImageFromArray(arr), tmp_path / "lungs.seg.nrrd", LUNG_SEGMENTS)
    slicer = pytest.importorskip("slicer")
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "lungs.seg.nrrd"))
    assert storage.ReadData(node) == 1
    from vtk import reference

    holder = reference("")
    assert node.GetSegmentation().GetSegment("right_lung").GetTag("TerminologyEntry", holder)
    value = str(holder)
    assert "SCT^24028007^Right" in value and value.startswith("Segmentation category and type - CovidCTAnalysis")


def test_missing_terminology_file_means_no_terminology(tmp_path):
    assert terminology_tags(tmp_path / "absent.json") == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert terminology_tags(tmp_path / "bad.json") == {}
