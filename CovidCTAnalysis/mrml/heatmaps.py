"""Explanation heatmaps as scalar volumes shown as the foreground layer over the CT.

A classifier's ``heatmap-MODEL.nrrd`` holds values 0..1 on the CT grid (docs/CONTRACTS.md). In the scene it becomes a
scalar volume whose display maps 0..1 through a jet colour table (the colour map of the Grad-CAM figures in seeds
002 and 003), hides voxels below a threshold (so only the salient regions tint the CT), and is composited over the
CT as the slice views' foreground layer at an adjustable opacity. Slice views have one foreground layer, so showing
one heatmap replaces the one shown before; each heatmap keeps its own opacity (a node attribute) for when it is shown
again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .volumes import array_from_volume, load_volume, move_onto_grid, remove_with_helpers

COLOR_TABLE_NAME = "CovidCT heatmap (jet)"
KIND_ATTRIBUTE = "CovidCTAnalysis.Kind"
MODEL_ATTRIBUTE = "CovidCTAnalysis.Model"
OPACITY_ATTRIBUTE = "CovidCTAnalysis.Opacity"
HEATMAP_KIND = "heatmap"
DEFAULT_THRESHOLD = 0.5
DEFAULT_OPACITY = 0.4
#: interpolation overshoot tolerated around 0..1 (resampled CAMs dip slightly below 0)
RANGE_TOLERANCE = 0.01


def jet(t: np.ndarray) -> np.ndarray:
    """The jet colour map: 0 dark blue, 0.375 cyan, 0.5 green, 0.625 yellow, 1 dark red; RGB in 0..1."""
    t = np.asarray(t, dtype=float)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # red, green, blue peaks
    return np.clip(1.5 - np.abs(4.0 * t - 4.0 * centres), 0.0, 1.0)


def heatmap_color_table(scene, n_colors: int = 256):
    """The scene's jet colour table node for heatmaps (created once per scene)."""
    existing = scene.GetFirstNodeByName(COLOR_TABLE_NAME)
    if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
        return existing
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", COLOR_TABLE_NAME)
    table.SetTypeToUser()
    table.SetNumberOfColors(n_colors)
    table.SetAttribute("Category", "CovidCTAnalysis")
    colors = jet(np.linspace(0.0, 1.0, n_colors))
    for index, (r, g, b) in enumerate(colors):
        table.SetColor(index, f"{index / (n_colors - 1):.3f}", float(r), float(g), float(b), 1.0)
    return table


def load_heatmap(scene, path: str | Path, model: str, *, reference_volume=None,
                 threshold: float = DEFAULT_THRESHOLD, opacity: float = DEFAULT_OPACITY):
    """A scalar volume node for ``heatmap-MODEL.nrrd`` with the heatmap display (colour table, 0..1, threshold).

    With ``reference_volume`` the heatmap must lie on its grid (the contract); otherwise InputError names the file.
    A heatmap with the same voxel centres but an axis in the opposite order (a left-handed CT read by another
    reader) is flipped onto the reference's grid, so it is voxel for voxel the CT's. A damaged file is refused by
    ``load_volume`` before MRML reads it.
    """
    node = load_volume(scene, path, name=f"{model} heatmap")
    if reference_volume is not None and not move_onto_grid(node, reference_volume):
        remove_with_helpers(scene, node)
        raise InputError(path, f"heatmap is not on the grid of volume {reference_volume.GetName()!r}")
    values = array_from_volume(node)
    low, high = (float(np.nanmin(values)), float(np.nanmax(values))) if values.size else (0.0, 0.0)
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        remove_with_helpers(scene, node)
        raise InputError(path, f"heatmap values must lie in 0..1 (found {low:.3g}..{high:.3g})")
    node.SetAttribute(KIND_ATTRIBUTE, HEATMAP_KIND)
    node.SetAttribute(MODEL_ATTRIBUTE, model)
    node.SetAttribute(OPACITY_ATTRIBUTE, f"{opacity:g}")
    style_heatmap(node, threshold)
    return node


def style_heatmap(node, threshold: float = DEFAULT_THRESHOLD) -> None:
    """Heatmap display: jet colour table over the fixed window 0..1, voxels below ``threshold`` transparent."""
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(heatmap_color_table(node.GetScene()).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetInterpolate(True)
    set_threshold(node, threshold)


def set_threshold(node, threshold: float) -> None:
    """Show only voxels >= threshold (0..1)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"heatmap threshold must lie in 0..1, not {threshold}")
    display = node.GetDisplayNode()
    display.AutoThresholdOff()
    display.SetLowerThreshold(threshold)
    display.SetUpperThreshold(1.0 + 1e-3)  # include voxels equal to 1
    display.ApplyThresholdOn()


def heatmap_nodes(scene) -> dict[str, object]:
    """{model: heatmap volume node} of the heatmaps in the scene."""
    found = {}
    nodes = scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
    for index in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(index)
        if node.GetAttribute(KIND_ATTRIBUTE) == HEATMAP_KIND:
            found[node.GetAttribute(MODEL_ATTRIBUTE)] = node
    return found


def _composite_nodes(scene):
    nodes = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    return [nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())]


def show_heatmap(scene, node, background_volume=None, opacity: float | None = None) -> None:
    """Composite ``node`` over the CT in every slice view at ``opacity`` (default: the heatmap's own)."""
    if opacity is None:
        opacity = heatmap_opacity(node)
    else:
        set_heatmap_opacity(node, opacity)
    for composite in _composite_nodes(scene):
        if background_volume is not None:
            composite.SetBackgroundVolumeID(background_volume.GetID())
        composite.SetForegroundVolumeID(node.GetID())
        composite.SetForegroundOpacity(opacity)


def hide_heatmap(scene, node) -> None:
    """Remove ``node`` from the foreground of the slice views that show it."""
    for composite in _composite_nodes(scene):
        if composite.GetForegroundVolumeID() == node.GetID():
            composite.SetForegroundVolumeID(None)


def is_shown(scene, node) -> bool:
    return any(c.GetForegroundVolumeID() == node.GetID() for c in _composite_nodes(scene))


def heatmap_opacity(node) -> float:
    value = node.GetAttribute(OPACITY_ATTRIBUTE)
    return float(value) if value else DEFAULT_OPACITY


def set_heatmap_opacity(node, opacity: float) -> None:
    """Remember the heatmap's opacity and apply it to the views that show it now."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in 0..1, not {opacity}")
    node.SetAttribute(OPACITY_ATTRIBUTE, f"{opacity:g}")
    scene = node.GetScene()
    if scene is not None:
        for composite in _composite_nodes(scene):
            if composite.GetForegroundVolumeID() == node.GetID():
                composite.SetForegroundOpacity(opacity)
