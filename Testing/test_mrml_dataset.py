"""'Save correction': a (corrected) lesion segmentation node written as training data (CovidCTAnalysis.mrml.dataset),
in the folder layout the lesion training script reads (checked with that script's own reader).

The mask is the generated demo CT's exact lesion truth, loaded as a segmentation node and then edited the way an
annotator would (a voxel block painted as consolidation) before saving.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.errors import InputError  # noqa: E402
from CovidCTAnalysis.io import write_label_map  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml.dataset import save_correction  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import load_segmentation, segment_ids_by_name, segment_mask  # noqa: E402
from CovidCTAnalysis.mrml.volumes import load_volume  # noqa: E402

pytestmark = pytest.mark.mrml


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    case = make_demo_ct(size=(80, 80, 40), seed=1)
    ct = write_demo_case(case, folder)
    write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
    write_label_map(case.lungs, folder / "lungs.seg.nrrd", LUNG_SEGMENTS)
    return ct, folder / "lesions.seg.nrrd", folder / "lungs.seg.nrrd", case


@pytest.fixture
def scene_with_mask(case_files):
    ct_path, lesions_path, _, case = case_files
    with new_scene() as headless:
        ct = load_volume(headless.scene, ct_path)
        lesions = load_segmentation(headless.scene, lesions_path, LESION_SEGMENTS, name="lesions",
                                    reference_volume=ct)
        yield headless, ct, lesions, case


def _paint(segmentation, ct, name: str, box) -> None:
    """Add a block of voxels to one segment, as Segment Editor's paint does (whole-segment replace on the CT grid)."""
    import slicer
    from vtk.util import numpy_support

    logic = slicer.vtkSlicerSegmentationsModuleLogic
    segment_id = segment_ids_by_name(segmentation)[name]
    mask = segment_mask(segmentation, segment_id, ct).astype(np.uint8)
    mask[box] = 1
    labelmap = logic.CreateOrientedImageDataFromVolumeNode(ct)
    labelmap.GetPointData().SetScalars(numpy_support.numpy_to_vtk(mask.ravel(), deep=True))
    assert logic.SetBinaryLabelmapToSegment(labelmap, segmentation, segment_id, logic.MODE_REPLACE,
                                            labelmap.GetExtent())


def test_correction_is_written_as_image_and_mask_on_the_ct_grid(scene_with_mask, tmp_path):
    _, ct, lesions, case = scene_with_mask
    box = np.s_[20:24, 30:36, 30:36]
    _paint(lesions, ct, "consolidation", box)
    image_path, mask_path = save_correction(ct, lesions, tmp_path / "dataset", "demo_001")
    assert image_path == tmp_path / "dataset" / "images" / "demo_001.nii.gz"
    assert mask_path == tmp_path / "dataset" / "masks" / "demo_001.nii.gz"

    expected = sitk.GetArrayFromImage(case.lesions).copy()
    expected[box] = 2  # the painted block is consolidation now
    saved = sitk.ReadImage(str(mask_path))
    assert saved.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(saved), expected)
    image = sitk.ReadImage(str(image_path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(case.image))
    for a, b in ((image, case.image), (saved, case.image)):  # on the CT's own physical grid (LPS on disk)
        np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
        np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    # saving the case again replaces it
    save_correction(ct, lesions, tmp_path / "dataset", "demo_001")
    assert sorted(p.name for p in (tmp_path / "dataset").rglob("*") if p.is_file()) == ["demo_001.nii.gz"] * 2


def test_the_lesion_training_reader_reads_saved_corrections(scene_with_mask, tmp_path):
    corrected = pytest.importorskip("CovidCTAnalysis.lesions.corrected")
    _, ct, lesions, case = scene_with_mask
    save_correction(ct, lesions, tmp_path, "a")
    save_correction(ct, lesions, tmp_path, "b")
    samples = corrected.read_corrected_folder(tmp_path)
    truth = sitk.GetArrayFromImage(case.lesions)
    labelled = np.flatnonzero(truth.any(axis=(1, 2)))
    per_case = labelled[-1] - labelled[0] + 1  # every slice from the first to the last labelled one
    assert len(samples) == 2 * per_case
    found = {int(v) for s in samples for v in np.unique(s.target)}
    assert found >= {0, 1, 2}


def test_bad_case_id_and_missing_lesion_segments_are_refused(scene_with_mask, case_files, tmp_path):
    headless, ct, lesions, _ = scene_with_mask
    for case_id in ("../escape", "", "a/b", "name with space"):
        with pytest.raises(InputError):
            save_correction(ct, lesions, tmp_path, case_id)
    lungs = load_segmentation(headless.scene, case_files[2], LUNG_SEGMENTS, name="lungs", reference_volume=ct)
    with pytest.raises(InputError, match="no lesion segment"):
        save_correction(ct, lungs, tmp_path, "lungs_only")
    empty = load_segmentation(headless.scene, case_files[1], LESION_SEGMENTS, name="empty", reference_volume=ct)
    for index in range(empty.GetSegmentation().GetNumberOfSegments()):
        import slicer

        slicer.vtkSlicerSegmentationsModuleLogic.ClearSegment(empty, empty.GetSegmentation().GetNthSegmentID(index))
    with pytest.raises(InputError, match="no lesion voxel"):
        save_correction(ct, empty, tmp_path, "empty")
    assert not any(tmp_path.iterdir())  # nothing written
