"""'Save correction' as a demanding annotator uses it: saving again, a case id that holds another CT, files of the
case in another format, unsafe names, a dataset path that is a file, a failed or interrupted write, a segmentation
kept as surfaces. A refusal is an InputError; the dataset, the scene and the nodes are left as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402
import slicer  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct, write_demo_case  # noqa: E402
from CovidCTAnalysis.errors import InputError  # noqa: E402
from CovidCTAnalysis.io import write_label_map  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS  # noqa: E402
from CovidCTAnalysis.lesions.corrected import read_corrected_folder  # noqa: E402
from CovidCTAnalysis.mrml import dataset as dataset_module  # noqa: E402
from CovidCTAnalysis.mrml.dataset import save_correction  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import load_segmentation  # noqa: E402
from CovidCTAnalysis.mrml.volumes import load_volume  # noqa: E402

from test_mrml_correction_segments import _add_segment  # noqa: E402  (the Segment Editor's Add, painted)

pytestmark = pytest.mark.mrml

BOX = np.s_[2:4, 2:6, 2:6]  # [k, j, i], away from the demo lesions


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Two different small demo CTs, each with its lesion truth as lesions.seg.nrrd."""
    out = []
    for seed in (1, 2):
        folder = tmp_path_factory.mktemp(f"ct{seed}")
        case = make_demo_ct(size=(48, 48, 20), seed=seed)
        ct = write_demo_case(case, folder)
        write_label_map(case.lesions, folder / "lesions.seg.nrrd", LESION_SEGMENTS)
        out.append((ct, folder / "lesions.seg.nrrd", sitk.GetArrayFromImage(case.lesions)))
    return out


@pytest.fixture
def scene():
    with new_scene() as headless:
        yield headless.scene


def _load(scene, files):
    ct = load_volume(scene, files[0])
    return ct, load_segmentation(scene, files[1], LESION_SEGMENTS, name="lesions", reference_volume=ct)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def test_saving_again_replaces_the_mask_and_another_ct_never_replaces_a_case(scene, cases, tmp_path):
    dataset = tmp_path / "dataset"
    ct, lesions = _load(scene, cases[0])
    image_path, mask_path = save_correction(ct, lesions, dataset, "c1")
    first = _files(dataset)
    _add_segment(lesions, ct, "crazy paving", BOX)  # the annotator corrects more, saves again: the mask is replaced
    save_correction(ct, lesions, dataset, "c1")
    assert image_path.read_bytes() == first["images/c1.nii.gz"]
    assert (sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path)))[BOX] == 3).all()
    saved = _files(dataset)

    other_ct, other_lesions = _load(scene, cases[1])  # another CT under the same case id: refused, case kept
    with pytest.raises(InputError, match=r"images/c1\.nii\.gz: holds another CT"):
        save_correction(other_ct, other_lesions, dataset, "c1")
    assert _files(dataset) == saved
    save_correction(other_ct, other_lesions, dataset, "c2")
    assert len(read_corrected_folder(dataset)) > 0


@pytest.mark.parametrize("existing", ["masks/c1.seg.nrrd", "images/c1.nrrd", "images/C1.nii.gz"])
def test_a_case_in_another_format_or_letter_case_is_refused(scene, cases, tmp_path, existing):
    dataset = tmp_path / "dataset"
    (dataset / existing).parent.mkdir(parents=True)
    (dataset / existing).write_bytes(b"an earlier export")
    ct, lesions = _load(scene, cases[0])
    with pytest.raises(InputError, match=f"{existing}: is case"):
        save_correction(ct, lesions, dataset, "c1")
    assert _files(dataset) == {existing: b"an earlier export"}


def test_unsafe_and_reserved_case_ids_are_refused_and_spaces_trimmed(scene, cases, tmp_path):
    ct, lesions = _load(scene, cases[0])
    for case_id in ("a/b", "a:b", "a b", "Jöhn", "CON", "nul.1", "com1"):
        with pytest.raises(InputError, match="case id"):
            save_correction(ct, lesions, tmp_path / "dataset", case_id)
    assert not (tmp_path / "dataset").exists()
    image_path, _ = save_correction(ct, lesions, tmp_path / "dataset", " c1 ")
    assert image_path.name == "c1.nii.gz"


def test_a_dataset_path_that_is_a_file_is_refused(scene, cases, tmp_path):
    ct, lesions = _load(scene, cases[0])
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for dataset in (a_file, a_file / "dataset"):
        with pytest.raises(InputError, match="notes.txt: is a file"):
            save_correction(ct, lesions, dataset, "c1")
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").write_text("x")
    with pytest.raises(InputError, match="masks: is a file"):
        save_correction(ct, lesions, tmp_path / "d", "c1")
    assert a_file.read_text() == "x" and sorted(p.name for p in (tmp_path / "d").rglob("*")) == ["images", "masks"]


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), RuntimeError("ImageFileWriter_Execute: disk full")])
def test_a_failed_or_interrupted_save_leaves_no_half_pair(scene, cases, tmp_path, monkeypatch, failure):
    ct, lesions = _load(scene, cases[0])
    save_correction(ct, lesions, tmp_path / "kept", "c1")
    kept = _files(tmp_path / "kept")
    real = sitk.WriteImage

    def write(image, path, *args, **kwargs):  # the mask's write fails, after the image's went through
        if "masks" in str(path):
            raise failure
        return real(image, path, *args, **kwargs)

    monkeypatch.setattr(dataset_module.sitk, "WriteImage", write)
    _add_segment(lesions, ct, "crazy paving", BOX)
    expected = KeyboardInterrupt if isinstance(failure, KeyboardInterrupt) else InputError
    with pytest.raises(expected):
        save_correction(ct, lesions, tmp_path / "new", "c1")  # a new dataset: nothing of it stays
    assert not (tmp_path / "new").exists()
    with pytest.raises(expected):
        save_correction(ct, lesions, tmp_path / "kept", "c1")  # a saved case: kept as it was
    assert _files(tmp_path / "kept") == kept


def test_a_segmentation_kept_as_surfaces_is_refused_and_left_as_it_is(scene, cases, tmp_path):
    ct, lesions = _load(scene, cases[0])
    segmentation = lesions.GetSegmentation()
    surface = slicer.vtkSegmentationConverter.GetClosedSurfaceRepresentationName()
    assert lesions.CreateClosedSurfaceRepresentation()
    if hasattr(segmentation, "SetSourceRepresentationName"):
        segmentation.SetSourceRepresentationName(surface)
    else:
        segmentation.SetMasterRepresentationName(surface)
    labelmap = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    segmentation.RemoveRepresentation(labelmap)
    nodes = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="keeps its segments as 'Closed surface'"):
        save_correction(ct, lesions, tmp_path / "dataset", "c1")
    assert not (tmp_path / "dataset").exists() and scene.GetNumberOfNodes() == nodes
    assert not segmentation.ContainsRepresentation(labelmap)
