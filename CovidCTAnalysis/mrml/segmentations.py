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
from .volumes import array_from_image, axis_signs, check_image_file, flip_image_axes, remove_with_helpers, vtk_matrix

CLOSED_SURFACE = "Closed surface"
#: Surface smoothing for the 3-D view (Slicer's default is 0.5; lesions are small, so less smoothing keeps them).
SMOOTHING_FACTOR = "0.3"


def load_segmentation(scene, path: str | Path, segments: Sequence[Segment], *, name: str,
                      reference_volume=None, closed_surfaces: bool = False, fill_opacity: float = 0.5):
    """A new segmentation node from a label file, its segments named and coloured per ``segments``.

    ``reference_volume``: the CT node; the segmentation's reference geometry is set from it (so Segment Editor edits
    on the CT's grid) - the CT node itself is not modified. ``closed_surfaces``: also build the closed-surface
    representation and show it in 3-D. Raises InputError naming the file when it is missing, damaged or unreadable,
    checked before MRML reads it (an ITK read error inside the segmentation storage node aborts the process).

    A label map on the reference volume's voxel centres with an axis in the opposite order (a left-handed file: the
    volume reader reverses its slice axis, this reader does not) is flipped onto the volume's grid.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "segmentation file not found")
    check_image_file(path, "segmentation file")
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
        move_labelmaps_onto_grid(node, reference_volume)
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
    cropped to its content) and an extent inside the volume's. An axis that runs the other way (the same voxel
    centres in the opposite order) is on the grid too: ``move_labelmaps_onto_grid`` flips it.
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
        signs = axis_signs(own, reference, tolerance_mm)
        if signs is None:
            return "different voxel axes or spacing"
        offset = np.linalg.solve(reference[:3, :3], own[:3, 3] - reference[:3, 3])
        if not np.allclose(offset, np.round(offset), atol=1e-3):
            return "voxel centres do not coincide"
        extent = _extent_on_grid(extent, signs, np.round(offset))
        if (extent[:, 0] < 0).any() or (extent[:, 1] > dims - 1).any():
            return "it extends beyond the volume"
    return ""


def _extent_on_grid(extent: np.ndarray, signs: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A label map's extent (3 x [first, last]) in the volume's voxel indices: volume index = offset + sign * own."""
    return np.sort(offset[:, None] + signs[:, None] * extent, axis=1)


def move_labelmaps_onto_grid(node, volume, tolerance_mm: float = 1e-3) -> None:
    """Put each of the node's label maps that runs an axis in the opposite order from the volume's exactly on the
    volume's grid: voxels flipped along that axis, extent and image-to-world matrix the volume's (Segment Editor,
    the saved .seg.nrrd and every voxel count then use the CT's own voxel order). Call after ``grid_mismatch``
    found the label maps on the grid. The volume is not modified.
    """
    name = labelmap_representation_name()
    reference = _matrix(volume.GetIJKToRASMatrix)
    segmentation = node.GetSegmentation()
    done: list = []
    for index in range(segmentation.GetNumberOfSegments()):
        labelmap = segmentation.GetNthSegment(index).GetRepresentation(name)
        if labelmap is None or any(labelmap is seen for seen in done):  # segments of one layer share a label map
            continue
        done.append(labelmap)
        extent = np.array(labelmap.GetExtent()).reshape(3, 2)
        own = _matrix(labelmap.GetImageToWorldMatrix)
        signs = axis_signs(own, reference, tolerance_mm)
        if (extent[:, 0] > extent[:, 1]).any() or signs is None or (signs > 0).all():
            continue
        offset = np.round(np.linalg.solve(reference[:3, :3], own[:3, 3] - reference[:3, 3]))
        flip_image_axes(labelmap, np.flatnonzero(signs < 0))
        labelmap.SetExtent(*(int(e) for e in _extent_on_grid(extent, signs, offset).ravel()))
        labelmap.SetImageToWorldMatrix(vtk_matrix(reference))


def labelmap_representation_name() -> str:
    """The name of the binary labelmap representation ("Binary labelmap")."""
    converter = slicer.vtkSegmentationConverter
    return (converter.GetBinaryLabelmapRepresentationName() if hasattr(converter, "GetBinaryLabelmapRepresentationName")
            else converter.GetSegmentationBinaryLabelmapRepresentationName())


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


#: Other names annotators give our segments (Segment Editor names a segment after its terminology type); names are
#: compared case-insensitively, with '-' and '_' read as spaces.
SEGMENT_NAME_VARIANTS = {
    "ground-glass opacity": ("ground glass", "ground glass opacities", "GGO"),
    "consolidation": ("consolidations",),
    "crazy paving": ("crazy paving pattern",),
}


def _plain_name(name: str) -> str:
    return " ".join(name.replace("-", " ").replace("_", " ").casefold().split())


def _terminology_codes(segment) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """((scheme, value) of the type, of the type modifier) of a segment's terminology entry; None without one."""
    if hasattr(segment, "GetTerminology"):  # Slicer >= 5.8
        serialized = segment.GetTerminology()
    else:
        value = vtk.reference("")
        serialized = str(value) if segment.GetTag(segment.GetTerminologyEntryTagName(), value) else ""
    # context~category~type~modifier~region context~region~region modifier, each code scheme^value^meaning
    fields = serialized.split("~")
    if len(fields) < 4:
        return None
    type_, modifier = ((code.split("^") + ["", ""])[:2] for code in fields[2:4])
    return (type_[0], type_[1]), (modifier[0], modifier[1])


def segment_class(segment, segments: Sequence[Segment]) -> Segment | None:
    """Which of ``segments`` a vtkSegment stands for: by its terminology type (and modifier) when it has ours, else
    by name (ours or one of SEGMENT_NAME_VARIANTS); None when neither says."""
    codes = _terminology_codes(segment)
    for candidate in segments if codes else ():
        try:
            entry = entry_for(candidate.name)
        except KeyError:
            continue
        type_, modifier = codes
        if type_ == (entry.type.scheme, entry.type.value) and (
                entry.modifier is None or modifier == (entry.modifier.scheme, entry.modifier.value)):
            return candidate
    name = _plain_name(segment.GetName() or "")
    for candidate in segments:
        if name in {_plain_name(n) for n in (candidate.name, *SEGMENT_NAME_VARIANTS.get(candidate.name, ()))}:
            return candidate
    return None


def segment_classes(node, segments: Sequence[Segment]) -> dict[str, Segment | None]:
    """{segment id: the one of ``segments`` it stands for (see ``segment_class``) or None}, in the node's order."""
    segmentation = node.GetSegmentation()
    return {segmentation.GetNthSegmentID(i): segment_class(segmentation.GetNthSegment(i), segments)
            for i in range(segmentation.GetNumberOfSegments())}


def label_array(node, reference_volume, segments: Sequence[Segment]) -> np.ndarray:
    """uint8 [k, j, i] label map on the reference grid with our label values (later segments win on overlap).

    Segments are recognised by ``segment_class``; several segments of one class all count; others are left out.
    """
    classes = segment_classes(node, segments)
    dims = reference_volume.GetImageData().GetDimensions()
    labels = np.zeros(dims[::-1], dtype=np.uint8)
    for segment in segments:
        for segment_id, found in classes.items():
            if found == segment:
                labels[segment_mask(node, segment_id, reference_volume)] = segment.label
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
