"""'Save correction' reads every segment an annotator may paint in (CovidCTAnalysis.mrml.dataset).

Segment Editor's "Add" makes a segment named "Segment_1"; choosing a terminology names it after the terminology type
("Ground glass opacity", "Crazy paving pattern"). Such segments are read as their lesion class (terminology first,
then name), and a painted segment of no lesion class makes the save refuse instead of dropping its voxels.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402
import slicer  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.errors import InputError  # noqa: E402
from CovidCTAnalysis.io import write_label_map  # noqa: E402
from CovidCTAnalysis.labels import CONSOLIDATION, CRAZY_PAVING, GGO, LESION_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml.dataset import save_correction  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import load_segmentation  # noqa: E402
from CovidCTAnalysis.mrml.terminology import entry_for  # noqa: E402
from CovidCTAnalysis.mrml.volumes import load_volume  # noqa: E402

pytestmark = pytest.mark.mrml

BOX = np.s_[18:21, 10:14, 10:14]  # [k, j, i], outside the demo case's lesions (checked below)


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    case = make_demo_ct(size=(80, 80, 40), seed=1)
    ct = write_demo_case(case, folder)
    write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
    truth = sitk.GetArrayFromImage(case.lesions)
    assert truth.any() and not truth[BOX].any()
    return ct, folder / "lesions.seg.nrrd", truth


@pytest.fixture
def scene_with_mask(case_files):
    ct_path, lesions_path, truth = case_files
    with new_scene() as headless:
        ct = load_volume(headless.scene, ct_path)
        lesions = load_segmentation(headless.scene, lesions_path, LESION_SEGMENTS, name="lesions",
                                    reference_volume=ct)
        yield ct, lesions, truth


def _add_segment(segmentation_node, ct, name: str, box=None, terminology: str = "") -> str:
    """A segment added as Segment Editor's "Add" does, painted in ``box`` ([k, j, i] on the CT grid) when given."""
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    segment_id = segmentation_node.GetSegmentation().AddEmptySegment("", name)
    if terminology:
        segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
        segment.SetTag(segment.GetTerminologyEntryTagName(), entry_for(terminology).serialized())
    if box is not None:
        dims = ct.GetImageData().GetDimensions()
        mask = np.zeros(dims[::-1], dtype=np.uint8)
        mask[box] = 1
        labelmap = logic.CreateOrientedImageDataFromVolumeNode(ct)
        labelmap.UnRegister(None)
        labelmap.GetPointData().SetScalars(numpy_support.numpy_to_vtk(mask.ravel(), deep=True))
        assert logic.SetBinaryLabelmapToSegment(labelmap, segmentation_node, segment_id, logic.MODE_REPLACE,
                                                labelmap.GetExtent())
    return segment_id


def _saved_mask(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize("name, label", [
    ("Crazy paving pattern", CRAZY_PAVING),
    ("Ground glass opacity", GGO),
    ("GGO", GGO),
    ("Consolidation", CONSOLIDATION),
])
def test_a_segment_named_after_a_class_variant_is_saved_as_that_class(scene_with_mask, tmp_path, name, label):
    ct, lesions, truth = scene_with_mask
    _add_segment(lesions, ct, name, BOX)
    _, mask_path = save_correction(ct, lesions, tmp_path, "variant")
    expected = truth.copy()
    expected[BOX] = label
    np.testing.assert_array_equal(_saved_mask(mask_path), expected)


def test_a_segment_is_read_by_its_terminology_before_its_name(scene_with_mask, tmp_path):
    ct, lesions, truth = scene_with_mask
    _add_segment(lesions, ct, "Segment_1", BOX, terminology="consolidation")
    other = np.s_[22:24, 10:14, 10:14]
    assert not truth[other].any()
    _add_segment(lesions, ct, "ground glass opacity", other, terminology="crazy paving")
    _, mask_path = save_correction(ct, lesions, tmp_path, "coded")
    expected = truth.copy()
    expected[BOX] = CONSOLIDATION
    expected[other] = CRAZY_PAVING
    np.testing.assert_array_equal(_saved_mask(mask_path), expected)


def test_a_painted_segment_of_no_class_is_refused_and_nothing_is_written(scene_with_mask, tmp_path):
    ct, lesions, _ = scene_with_mask
    _add_segment(lesions, ct, "Segment_1", BOX)
    _add_segment(lesions, ct, "right lung", np.s_[5:30, 30:50, 10:30])  # a lung is no lesion, and never refused
    with pytest.raises(InputError) as raised:
        save_correction(ct, lesions, tmp_path / "dataset", "unknown")
    message = str(raised.value)
    assert "'Segment_1'" in message and "rename it" in message and "terminology" in message
    assert "right lung" not in message and "\n" not in message
    assert not (tmp_path / "dataset").exists()


def test_an_empty_segment_of_no_class_is_ignored(scene_with_mask, tmp_path):
    ct, lesions, truth = scene_with_mask
    _add_segment(lesions, ct, "Segment_1")  # added, never painted
    _add_segment(lesions, ct, "Crazy paving pattern", BOX)
    _, mask_path = save_correction(ct, lesions, tmp_path, "empty_extra")
    expected = truth.copy()
    expected[BOX] = CRAZY_PAVING
    np.testing.assert_array_equal(_saved_mask(mask_path), expected)


def test_the_project_segments_alone_save_the_mask_unchanged(scene_with_mask, tmp_path):
    ct, lesions, truth = scene_with_mask
    _, mask_path = save_correction(ct, lesions, tmp_path, "plain")
    saved = sitk.ReadImage(str(mask_path))
    assert saved.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(saved), truth)
