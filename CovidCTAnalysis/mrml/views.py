"""What the views show once an analysis is in the scene: slice layers and fit, 3-D display and camera, the table.

Everything here is MRML, so it works on Slicer's scene and on a headless slicer-core scene alike:

- slice views: the CT as background and the first heatmap as foreground (at its opacity) in every slice view, then
  the field of view of every slice logic the application logic knows fitted to the CT, and every slice view moved
  through the centre of the largest lesion (else of a classifier's localized lesion): the axial, coronal and sagittal
  views then all show it, where the CT's middle planes may hold none (a midline sagittal holds little lung);
- 3-D: the lungs as semi-transparent closed surfaces, the lesions (and localized lesions, and a classifier's infected
  region) opaque; a classifier's lung regions (lobe-patch's), which would wrap the lesions in opaque copies of the
  lungs, see-through and hidden until switched on; every 3-D view's camera looks at the lungs from the front
  (anterior), far enough to see both;
- the measurement table becomes the active table, and the layout switches to one with a table view (four-up +
  table) unless it already has one;
- subject hierarchy: the created nodes go into one folder "<CT> COVID-19 CT analysis" under the CT's parent (the
  study, for a CT loaded from DICOM).

Inside 3D Slicer the module then also asks the views themselves to fit and reset (their renderers are Qt objects),
from the ``ViewRequest`` this returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import slicer

from .heatmaps import heatmap_opacity, show_heatmap
from .segmentations import show_in_3d

LUNG_OPACITY_3D = 0.3
LESION_OPACITY_3D = 1.0
#: kinds of a classifier's segmentations (labels.CLASSIFIER_SEGMENTS) that cover the lungs: hidden in 3-D at first
LUNG_REGION_KINDS = ("lobes",)
FOLDER_SUFFIX = "COVID-19 CT analysis"
#: layouts that already have a table view (names of vtkMRMLLayoutNode's constants); the first is the one switched to
TABLE_LAYOUTS = ("SlicerLayoutFourUpTableView", "SlicerLayout3DTableView", "SlicerLayoutFourUpPlotTableView")


@dataclass
class ViewRequest:
    """What was set up, and what a GUI still has to do with its views (fit slice views, reset 3-D views)."""

    background: object
    foreground: object | None
    foreground_opacity: float
    slice_views_fitted: int  # slice logics fitted here (none without an application logic)
    focus_ras: tuple[float, float, float] | None  # where the 3-D cameras look
    folder_item: int  # subject hierarchy folder holding the results (0: none)
    lesion_ras: tuple[float, float, float] | None = None  # the lesion the slice views go through (after a fit)


def _nodes(scene, class_name: str) -> list:
    collection = scene.GetNodesByClass(class_name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]


def show_slices(scene, volume, heatmap=None, app_logic=None) -> int:
    """CT as background, ``heatmap`` (or nothing) as foreground, slice views fitted; returns how many were fitted."""
    for composite in _nodes(scene, "vtkMRMLSliceCompositeNode"):
        composite.SetBackgroundVolumeID(volume.GetID())
        composite.SetForegroundVolumeID(None)
        composite.SetLabelVolumeID(None)
    if heatmap is not None:
        show_heatmap(scene, heatmap, volume)
    if app_logic is None or app_logic.GetSliceLogics() is None:
        return 0
    logics = app_logic.GetSliceLogics()
    for index in range(logics.GetNumberOfItems()):
        logics.GetItemAsObject(index).FitSliceToAll()
    return logics.GetNumberOfItems()


def lesion_focus(result) -> tuple[float, float, float] | None:
    """RAS of the largest lesion's point (the first: ``markups.lesion_points`` sorts by volume), else of the first
    classifier's localized lesion centre; None when the analysis found no lesion."""
    point_lists = [result.markups] + [points for _, points in result.localizations.values()]
    for points in point_lists:
        if points is not None and points.GetNumberOfControlPoints():
            ras = [0.0, 0.0, 0.0]
            points.GetNthControlPointPositionWorld(0, ras)
            return tuple(ras)
    return None


def jump_slices(scene, ras) -> None:
    """Move every slice view through ``ras`` along its own normal (the field of view stays as fitted)."""
    slicer.vtkMRMLSliceNode.JumpAllSlices(scene, *ras, slicer.vtkMRMLSliceNode.OffsetJumpSlice)


def show_in_3d_views(lungs=None, lesions=(), opacity_lungs: float = LUNG_OPACITY_3D) -> None:
    """Lungs semi-transparent, lesion segmentations opaque, all as closed surfaces in 3-D."""
    for node, opacity in [(lungs, opacity_lungs)] + [(node, LESION_OPACITY_3D) for node in lesions]:
        if node is None:
            continue
        show_in_3d(node)
        node.GetDisplayNode().SetOpacity3D(opacity)


def focus_cameras(scene, node) -> tuple[float, float, float] | None:
    """Point every 3-D camera at the centre of ``node`` from the front, at a distance that shows all of it."""
    bounds = [0.0] * 6
    node.GetRASBounds(bounds)
    low, high = np.array(bounds[0::2]), np.array(bounds[1::2])
    if not (high >= low).all():
        return None
    centre = (low + high) / 2
    radius = max(float(np.linalg.norm(high - low)) / 2, 1.0)
    for camera in _nodes(scene, "vtkMRMLCameraNode"):
        distance = radius / math.sin(math.radians(camera.GetViewAngle()) / 2)
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre + np.array([0.0, distance, 0.0])))  # anterior, looking posterior
        camera.SetViewUp(0.0, 0.0, 1.0)
    return tuple(float(c) for c in centre)


def show_table(scene, table, app_logic=None) -> None:
    """Make ``table`` the active table and show it in a table view (switching to a layout that has one)."""
    selection = app_logic.GetSelectionNode() if app_logic is not None else scene.GetNodeByID(
        "vtkMRMLSelectionNodeSingleton")
    if selection is not None:
        selection.SetActiveTableID(table.GetID())
    layouts = _nodes(scene, "vtkMRMLLayoutNode")
    with_table = [getattr(slicer.vtkMRMLLayoutNode, name) for name in TABLE_LAYOUTS]
    if layouts and layouts[0].GetViewArrangement() not in with_table:
        layouts[0].SetViewArrangement(with_table[0])
    if app_logic is not None:
        app_logic.PropagateTableSelection()


def file_under_study(scene, volume, nodes) -> int:
    """Put ``nodes`` in a folder "<CT> COVID-19 CT analysis" under the CT's parent item; the folder's item id."""
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is None:
        return 0
    volume_item = hierarchy.GetItemByDataNode(volume) or hierarchy.CreateItem(hierarchy.GetSceneItemID(), volume)
    parent = hierarchy.GetItemParent(volume_item) or hierarchy.GetSceneItemID()
    folder = hierarchy.CreateFolderItem(parent, f"{volume.GetName()} {FOLDER_SUFFIX}")
    for node in nodes:
        item = hierarchy.GetItemByDataNode(node)
        if item:
            hierarchy.SetItemParent(item, folder)
        else:
            hierarchy.CreateItem(folder, node)
    return folder


def remove_folder(scene, folder_item: int) -> None:
    """Remove a results folder item (its nodes are removed by the caller)."""
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is not None and folder_item and hierarchy.GetItemDataNode(folder_item) is None:
        hierarchy.RemoveItem(folder_item, False, False)


def show_analysis(scene, result, app_logic=None, in_3d: bool = True) -> ViewRequest:
    """Set up every view for the nodes of one analysis (``results.AnalysisNodes``; see the module docstring).

    ``in_3d``: build and show the closed surfaces (the Analyze module's "Show lesions as surfaces in 3-D").
    """
    heatmap = next(iter(result.heatmaps.values()), None)
    fitted = show_slices(scene, result.volume, heatmap, app_logic)
    lesion = lesion_focus(result)
    if lesion is not None:
        jump_slices(scene, lesion)
    located = [segmentation for segmentation, _ in result.localizations.values()]
    regions = {key: node for key, node in result.segmentations.items() if key.split()[-1] in LUNG_REGION_KINDS}
    lesions = [node for node in [result.lesions, *located, *result.segmentations.values()]
               if node is not None and node not in regions.values()]
    if in_3d:
        show_in_3d_views(result.lungs, lesions)
        for node in regions.values():
            show_in_3d(node)
            node.GetDisplayNode().SetOpacity3D(LUNG_OPACITY_3D)
            node.GetDisplayNode().SetVisibility3D(False)
    focus = focus_cameras(scene, result.lungs if result.lungs is not None else result.volume)
    if result.table is not None:
        show_table(scene, result.table, app_logic)
    folder = file_under_study(scene, result.volume, result.nodes())
    return ViewRequest(result.volume, heatmap, heatmap_opacity(heatmap) if heatmap is not None else 0.0, fitted,
                       focus, folder, lesion)
