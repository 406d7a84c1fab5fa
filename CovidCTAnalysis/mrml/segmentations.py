"""Label maps as segmentation nodes: named, coloured segments with standard terminology, on the CT's geometry.

A label file (``lungs.seg.nrrd``, ``lesions.seg.nrrd``, or any label volume) is read by MRML's segmentation storage
node, so what Slicer shows is exactly what Slicer itself would load. Each segment is then identified by its label
value (docs/CONTRACTS.md fixes the values: lungs 1 right / 2 left, lesions 1 GGO / 2 consolidation / 3 crazy paving),
renamed, recoloured and given the terminology entry of that label, whatever the file carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import slicer
import vtk

from ..errors import InputError
from ..labels import Segment
from .terminology import entry_for
from .volumes import array_from_image, remove_with_helpers

CLOSED_SURFACE = "Closed surface"
#: Surface smoothing for the 3-D view (Slicer's default is 0.5; lesions are small, so less smoothing keeps them).
SMOOTHING_FACTOR = "0.3"


def load_segmentation(scene, path: str | Path, segments: Sequence[Segment], *, name: str,
                      reference_volume=None, closed_surfaces: bool = False, fill_opacity: float = 0.5):
    """A new segmentation node from a label file, its segments named and coloured per ``segments``.

    ``reference_volume``: the CT node; the segmentation's reference geometry is set from it (so Segment Editor edits
    on the CT's grid) - the CT node itself is not modified. ``closed_surfaces``: also build the closed-surface
    representation and show it in 3-D. Raises InputError naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "segmentation file not found")
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node):
        remove_with_helpers(scene, node)
        raise InputError(path, "could not be read as a segmentation")
    apply_segment_conventions(node, segments)
    if reference_volume is not None:
        problem = grid_mismatch(node, reference_volume)
        if problem:
            remove_with_helpers(scene, node)
            raise InputError(path, f"is not on the grid of volume {reference_volume.GetName()!r} ({problem})")
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetOpacity2DFill(fill_opacity)
    if closed_surfaces:
        show_in_3d(node)
    return node


def grid_mismatch(node, volume, tolerance_mm: float = 1e-3) -> str:
    """Why the segmentation's label maps do not lie on the volume's voxel grid ("" when they do).

    On the grid: same axes and spacing, voxel centres that coincide (an integer index offset, as for a label map
    cropped to its content) and an extent inside the volume's.
    """
    dims = np.array(volume.GetImageData().GetDimensions())
    reference = _matrix(volume.GetIJKToRASMatrix)
    segmentation = node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        labelmap = slicer.vtkOrientedImageData()
        if not slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
                node, segmentation.GetNthSegmentID(index), labelmap):
            continue
        extent = np.array(labelmap.GetExtent()).reshape(3, 2)
        if (extent[:, 0] > extent[:, 1]).any():  # an empty segment has no grid to check
            continue
        own = _matrix(labelmap.GetImageToWorldMatrix)
        if not np.allclose(own[:3, :3], reference[:3, :3], atol=tolerance_mm):
            return "different voxel axes or spacing"
        offset = np.linalg.solve(reference[:3, :3], own[:3, 3] - reference[:3, 3])
        if not np.allclose(offset, np.round(offset), atol=1e-3):
            return "voxel centres do not coincide"
        extent = extent + np.round(offset)[:, None]
        if (extent[:, 0] < 0).any() or (extent[:, 1] > dims - 1).any():
            return "it extends beyond the volume"
    return ""


def _matrix(getter) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    getter(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def apply_segment_conventions(node, segments: Sequence[Segment]) -> dict[int, str]:
    """Name, colour and terminology for each segment whose label value is one of ``segments``; {label: segment id}."""
    by_label = {s.label: s for s in segments}
    segmentation = node.GetSegmentation()
    ids: dict[int, str] = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        convention = by_label.get(int(segment.GetLabelValue()))
        if convention is None:
            continue
        segment.SetName(convention.name)
        segment.SetColor(*convention.color)
        # the tag Slicer reads the terminology from (SetTerminology() exists only from Slicer 5.8 on)
        segment.SetTag(segment.GetTerminologyEntryTagName(), entry_for(convention.name).serialized())
        ids[convention.label] = segment_id
    return ids


def show_in_3d(node) -> None:
    """Build closed surfaces from the label maps and show them in 3-D views."""
    node.GetSegmentation().SetConversionParameter("Smoothing factor", SMOOTHING_FACTOR)
    if not node.CreateClosedSurfaceRepresentation():
        raise RuntimeError(f"could not build closed surfaces for {node.GetName()}")
    display = node.GetDisplayNode()
    if display is None:
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
    display.SetPreferredDisplayRepresentationName3D(CLOSED_SURFACE)
    display.SetVisibility3D(True)


def segment_ids_by_name(node) -> dict[str, str]:
    """{segment name: segment id}."""
    segmentation = node.GetSegmentation()
    return {segmentation.GetNthSegment(i).GetName(): segmentation.GetNthSegmentID(i)
            for i in range(segmentation.GetNumberOfSegments())}


def segment_mask(node, segment_id: str, reference_volume) -> np.ndarray:
    """Boolean [k, j, i] mask of one segment resampled (nearest neighbour) onto the reference volume's grid."""
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    labelmap = slicer.vtkOrientedImageData()
    if not logic.GetSegmentBinaryLabelmapRepresentation(node, segment_id, labelmap):
        raise RuntimeError(f"segment {segment_id} of {node.GetName()} has no binary labelmap")
    # The caller owns the image this factory returns (a deep copy of the volume's voxels): without UnRegister it would
    # outlive the Python reference, one copy of the CT per call (Slicer's own segment editor effects release it too).
    reference = logic.CreateOrientedImageDataFromVolumeNode(reference_volume)
    reference.UnRegister(None)
    resampled = slicer.vtkOrientedImageData()
    if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            labelmap, reference, resampled):
        raise RuntimeError(f"could not resample segment {segment_id} onto {reference_volume.GetName()}")
    label_value = node.GetSegmentation().GetSegment(segment_id).GetLabelValue()
    # a shared labelmap holds every segment of its layer, each with its own label value
    return array_from_image(resampled) == label_value


def label_array(node, reference_volume, segments: Sequence[Segment]) -> np.ndarray:
    """uint8 [k, j, i] label map on the reference grid with our label values (later segments win on overlap)."""
    ids = segment_ids_by_name(node)
    dims = reference_volume.GetImageData().GetDimensions()
    labels = np.zeros(dims[::-1], dtype=np.uint8)
    for segment in segments:
        if segment.name in ids:
            labels[segment_mask(node, ids[segment.name], reference_volume)] = segment.label
    return labels


def segment_voxel_counts(node, reference_volume) -> dict[str, int]:
    """{segment name: voxels} on the reference volume's grid."""
    return {name: int(segment_mask(node, segment_id, reference_volume).sum())
            for name, segment_id in segment_ids_by_name(node).items()}


def save_segmentation(node, path: str | Path) -> Path:
    """Write the node as .seg.nrrd (names, colours, terminology and label values kept) without changing its storage."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    storage.SetUseCompression(True)
    if not storage.WriteData(node):
        raise InputError(path, f"could not write segmentation {node.GetName()!r}")
    return path


def polydata_of(node, segment_id: str):
    """The closed-surface polydata of one segment (empty when the representation was not built)."""
    polydata = vtk.vtkPolyData()
    node.GetClosedSurfaceRepresentation(segment_id, polydata)
    return polydata
