"""Results of a CT with left-handed voxel axes (only the x axis flipped) loaded into a real MRML scene (slicer-core).

Slicer's volume reader reverses the slice axis of a left-handed CT so that its IJK-to-RAS matrix is right-handed,
while the segmentation reader keeps the file's grid: the CT node and a label map saved on the CT file's grid then
hold the same voxel centres with one axis in opposite orders. Such results (a saved analysis folder, an imported
lesion mask, the Analyze module's results on the CT node shown) must load, every voxel at its own world position and
the label maps exactly on the CT node's grid; grids that really differ must still be refused.

One real `covidct analyze` run (two classifiers, so localization and lobe segmentations are written too) on a small
x-flipped demo CT, module-scoped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

import SimpleITK as sitk  # noqa: E402
import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from CovidCTAnalysis.demo import make_demo_ct  # noqa: E402
from CovidCTAnalysis.errors import InputError  # noqa: E402
from CovidCTAnalysis.io import write_label_map, write_volume  # noqa: E402
from CovidCTAnalysis.labels import LESION_SEGMENTS  # noqa: E402
from CovidCTAnalysis.mrml.heatmaps import load_heatmap  # noqa: E402
from CovidCTAnalysis.mrml.lesion_logic import LesionSegmentationLogic, LesionSegmentationParameters  # noqa: E402
from CovidCTAnalysis.mrml.process import (  # noqa: E402
    BackgroundProcess,
    ProcessState,
    analyze_command,
    process_environment,
)
from CovidCTAnalysis.mrml.results import load_analysis  # noqa: E402
from CovidCTAnalysis.mrml.scene import new_scene  # noqa: E402
from CovidCTAnalysis.mrml.segmentations import label_array, load_segmentation  # noqa: E402
from CovidCTAnalysis.mrml.volumes import (  # noqa: E402
    array_from_image,
    array_from_volume,
    geometry,
    ijk_to_ras,
    load_volume,
)

pytestmark = pytest.mark.mrml

SIZE = (64, 64, 32)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
#: a voxel of the CT file (i, j, k) away from every symmetry of the grid, so any wrong flip moves it
MARKER = (5, 9, 3)


def _flip_x(image: sitk.Image) -> sitk.Image:
    """The same image on a left-handed grid: the x axis runs the other way, every voxel keeps its world position."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(image.GetOrigin()) + direction[:, 0] * image.GetSpacing()[0] * (image.GetSize()[0] - 1)
    direction[:, 0] *= -1
    flipped = sitk.GetImageFromArray(np.ascontiguousarray(sitk.GetArrayFromImage(image)[:, :, ::-1]))
    flipped.SetSpacing(image.GetSpacing())
    flipped.SetOrigin(tuple(origin))
    flipped.SetDirection(tuple(direction.ravel()))
    return flipped


def _ijk_to_ras(image: sitk.Image) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    matrix[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin())
    return matrix


def _file_values_on_grid(path: Path, matrix: np.ndarray, dims) -> np.ndarray:
    """The file's voxel values at the voxel centres of a grid (IJK-to-RAS ``matrix``, ``dims`` i, j, k), [k, j, i];
    every centre must be one of the file's voxel centres."""
    image = sitk.ReadImage(str(path))
    to_file = np.linalg.inv(_ijk_to_ras(image)) @ matrix
    assert np.allclose(to_file, np.round(to_file), atol=1e-4), "the grids do not share voxel centres"
    k, j, i = np.indices(tuple(dims)[::-1])
    index = np.round(to_file).astype(int) @ np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size, int)])
    return sitk.GetArrayFromImage(image)[index[2], index[1], index[0]].reshape(tuple(dims)[::-1])


@pytest.fixture(scope="module")
def flipped(tmp_path_factory):
    """(CT file with left-handed axes, OUT of a real analyze run on it, the demo case)."""
    folder = tmp_path_factory.mktemp("flipped")
    case = make_demo_ct(size=SIZE, seed=1)
    ct = write_volume(_flip_x(case.image), folder / "ct.nrrd")
    assert np.linalg.det(np.array(sitk.ReadImage(str(ct)).GetDirection()).reshape(3, 3)) < 0
    out = folder / "out"
    command = analyze_command(ct, out, device="cpu", models="decovnet,lobe-patch", python=sys.executable)
    process = BackgroundProcess(command, env=process_environment())
    process.start()
    process.wait(timeout_s=900)
    assert process.state is ProcessState.SUCCEEDED, process.error_message
    return ct, out, case


@pytest.fixture
def headless():
    with new_scene() as fresh:
        yield fresh


def _assert_on_ct_grid(node, ct, path: Path) -> None:
    """Each label map of the segmentation node lies exactly on the CT node's grid and holds the file's labels at the
    same world positions."""
    ct_matrix, dims = ijk_to_ras(ct), geometry(ct).dimensions
    expected = _file_values_on_grid(path, ct_matrix, dims)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() > 0
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        labelmap = slicer.vtkOrientedImageData()
        assert slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
            node, segmentation.GetNthSegmentID(index), labelmap)
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        own = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        np.testing.assert_allclose(own, ct_matrix, atol=1e-6, err_msg=f"{path.name}: {segment.GetName()}")
        assert list(labelmap.GetExtent()) == [0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1]
        label = segment.GetLabelValue()
        np.testing.assert_array_equal(array_from_image(labelmap) == label, expected == label,
                                      err_msg=f"{path.name}: {segment.GetName()}")


@pytest.mark.parametrize("users_ct", [False, True], ids=["ct-from-report", "ct-node-shown"])
def test_analysis_folder_of_a_left_handed_ct_loads_voxel_for_voxel(flipped, headless, users_ct):
    """Loading the analysis folder (the CT from the report, or onto the CT node the user has open as Analyze and the
    browser app's start_file do) used to be refused as 'not on the grid'; every segmentation and heatmap must now
    load with each voxel where the file puts it."""
    ct_path, out, _ = flipped
    ct = load_volume(headless.scene, ct_path) if users_ct else None
    result = load_analysis(headless.scene, out, reference_volume=ct, show=False, closed_surfaces=False)
    ct = result.volume
    # the case this is about: the CT node's grid is the file's with the slice axis reversed
    assert np.linalg.det(ijk_to_ras(ct)[:3, :3]) > 0 > np.linalg.det(_ijk_to_ras(sitk.ReadImage(str(ct_path)))[:3, :3])
    files = {result.lungs: out / "lungs.seg.nrrd", result.lesions: out / "lesions.seg.nrrd"}
    for model, (node, _) in result.localizations.items():
        files[node] = out / f"localization-{model}.seg.nrrd"
    assert result.segmentations, "the run wrote lobe-patch segmentations"
    report = result.report["classifiers"]["lobe-patch"]
    for key, node in result.segmentations.items():
        files[node] = out / report[f"{key.split(' ', 1)[1]}_segmentation"]
    assert None not in files and len(files) >= 5
    for node, path in files.items():
        _assert_on_ct_grid(node, ct, path)
    np.testing.assert_array_equal(label_array(result.lesions, ct, LESION_SEGMENTS),
                                  _file_values_on_grid(out / "lesions.seg.nrrd", ijk_to_ras(ct), SIZE))
    assert set(result.heatmaps) >= {"decovnet", "lobe-patch"}
    for model, node in result.heatmaps.items():
        path = out / f"heatmap-{model}.nrrd"
        np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(ct), atol=1e-6)
        np.testing.assert_array_equal(array_from_volume(node), _file_values_on_grid(path, ijk_to_ras(ct), SIZE))


def _marker_mask(ct_path: Path) -> sitk.Image:
    """A lesion mask on the CT file's grid: one crazy-paving voxel at MARKER."""
    reference = sitk.ReadImage(str(ct_path))
    array = np.zeros(tuple(reference.GetSize())[::-1], np.uint8)
    array[MARKER[2], MARKER[1], MARKER[0]] = 3
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(reference)
    return mask


@pytest.mark.parametrize("suffix", [".seg.nrrd", ".nii.gz"])
def test_imported_lesion_mask_keeps_each_voxels_world_position(flipped, headless, tmp_path, suffix):
    """Import a mask made on the CT's grid: it used to be refused; now the marker voxel sits at the same RAS
    position as in the file, and the mask lies on the CT node's grid (what Segment Editor edits)."""
    ct_path, _, _ = flipped
    mask = _marker_mask(ct_path)
    path = tmp_path / f"mask{suffix}"
    if suffix == ".seg.nrrd":
        write_label_map(mask, path, LESION_SEGMENTS)
    else:
        sitk.WriteImage(mask, str(path), True)
    ct = load_volume(headless.scene, ct_path, "CT")
    parameters = LesionSegmentationParameters.of(headless.scene)
    parameters.inputVolume = ct
    node = LesionSegmentationLogic(headless.scene).load_mask(parameters, path)
    _assert_on_ct_grid(node, ct, path)
    labels = label_array(node, ct, LESION_SEGMENTS)
    assert int((labels > 0).sum()) == 1
    k, j, i = np.argwhere(labels == 3)[0]
    expected = LPS_TO_RAS @ np.array(mask.TransformIndexToPhysicalPoint(MARKER))
    np.testing.assert_allclose((ijk_to_ras(ct) @ [i, j, k, 1])[:3], expected, atol=1e-4)


def _volume_node_on_file_grid(scene, path: Path):
    """A CT node that keeps the file's left-handed grid (as a volume made from a SimpleITK image by a script)."""
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    data = vtk.vtkImageData()
    data.SetDimensions(*image.GetSize())
    data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(array.ravel(), deep=True))
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT on the file grid")
    node.SetAndObserveImageData(data)
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, _ijk_to_ras(image)[r, c])
    node.SetIJKToRASMatrix(matrix)
    return node


def test_heatmap_is_flipped_onto_a_ct_node_that_keeps_the_files_grid(flipped, headless, tmp_path):
    """The other direction: the CT node keeps the file's left-handed axes and the volume reader reverses the
    heatmap's slice axis; the heatmap must be flipped back onto the CT node's grid, voxel for voxel."""
    ct_path, _, _ = flipped
    reference = sitk.ReadImage(str(ct_path))
    values = np.zeros(tuple(reference.GetSize())[::-1], np.float32)
    values[MARKER[2], MARKER[1], MARKER[0]] = 1.0
    values[MARKER[2] + 1, :, :] = 0.5  # a whole slice, so a slice-order error shows too
    heat = sitk.GetImageFromArray(values)
    heat.CopyInformation(reference)
    path = write_volume(heat, tmp_path / "heatmap-marker.nrrd")
    ct = _volume_node_on_file_grid(headless.scene, ct_path)
    node = load_heatmap(headless.scene, path, "marker", reference_volume=ct)
    np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(ct), atol=1e-6)
    np.testing.assert_array_equal(array_from_volume(node), values)


def _variant(image: sitk.Image, kind: str) -> sitk.Image:
    """``image`` on a grid that really differs from its own (the voxel values are kept, the centres are not)."""
    out = sitk.Image(image)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    if kind == "spacing":
        out.SetSpacing(tuple(s * 1.5 for s in image.GetSpacing()))
    elif kind == "shifted":
        out.SetOrigin(tuple(np.array(image.GetOrigin()) + direction[:, 1] * image.GetSpacing()[1] * 0.5))
    elif kind == "mirrored":  # an axis reversed but the origin kept: the centres land outside the CT
        direction[:, 0] *= -1
        out.SetDirection(tuple(direction.ravel()))
    elif kind == "rotated":
        out.SetDirection(tuple((direction[:, [1, 0, 2]] * [1, -1, 1]).ravel()))
    elif kind == "size":
        out = sitk.ConstantPad(image, (2, 0, 0), (0, 0, 0), 0)
    return out


@pytest.mark.parametrize("kind", ["spacing", "shifted", "mirrored", "rotated", "size"])
def test_only_the_same_voxel_centres_count_as_the_cts_grid(flipped, headless, tmp_path, kind):
    """The axis-reversed grid is accepted (it used to be refused), and a grid that really differs (other spacing,
    shifted, mirrored, rotated, other size) is still refused for masks and heatmaps alike."""
    ct_path, _, _ = flipped
    ct = load_volume(headless.scene, ct_path, "CT")
    mask = _marker_mask(ct_path)
    same = tmp_path / "same.seg.nrrd"
    write_label_map(mask, same, LESION_SEGMENTS)
    load_segmentation(headless.scene, same, LESION_SEGMENTS, name="same", reference_volume=ct)
    other = tmp_path / f"{kind}.seg.nrrd"
    write_label_map(_variant(mask, kind), other, LESION_SEGMENTS)
    nodes = headless.scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="is not on the grid of volume 'CT'") as refused:
        load_segmentation(headless.scene, other, LESION_SEGMENTS, name="other", reference_volume=ct)
    assert refused.value.path == str(other)
    heat = sitk.Cast(_variant(mask, kind), sitk.sitkFloat32) / 3.0
    heatmap = write_volume(heat, tmp_path / f"heatmap-{kind}.nrrd")
    with pytest.raises(InputError, match="heatmap is not on the grid of volume 'CT'"):
        load_heatmap(headless.scene, heatmap, kind, reference_volume=ct)
    assert headless.scene.GetNumberOfNodes() == nodes
