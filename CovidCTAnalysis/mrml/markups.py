"""Localized lesions as a point list (markups fiducial node): one control point per lesion, at its centroid.

A "localized lesion" here is one 3-D connected component (26-connectivity) of a lesion class in a label map: the
lesion segmentation, or a pseudo-mask. Its point sits at the component's centroid (mean voxel position, in RAS
millimetres) and its label says the class, the lung side and the volume, so a researcher can step through lesions in
the 3-D view. Components smaller than ``min_volume_ml`` are left out as noise. The weakly supervised localization of
DeCoVNet (seed 002, Section II-E: CAM regions selected with 3-D connected components) produces regions of the same
kind; its output can be passed to ``add_lesion_markups`` the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..labels import Segment

DEFAULT_MIN_VOLUME_ML = 0.05
#: Points whose label is drawn in the views: the largest lesions. A CT with many small lesions (or coarse pixels) gives
#: dozens of components, and their labels covered the 3-D view; the others keep their title in the point's
#: description and show as glyphs.
LABELLED_POINTS = 10
#: Short names for a point's label in the views: a label runs to the right of its point, and the full class names cut
#: it off at the view's edge beside a lateral lesion; the point's description keeps the full title.
SHORT_NAMES = {"ground-glass opacity": "GGO"}


@dataclass(frozen=True)
class LesionPoint:
    """One localized lesion: class label and name, centroid (RAS mm), volume (mL), side ('right'/'left'/'')."""

    label: int
    name: str
    ras: tuple[float, float, float]
    volume_ml: float
    side: str = ""

    @property
    def title(self) -> str:
        side = f", {self.side} lung" if self.side else ""
        return f"{self.name}{side}, {self.volume_ml:.1f} mL"

    @property
    def label_text(self) -> str:
        """The label drawn in the views: the title with ``SHORT_NAMES`` and the side without "lung"."""
        side = f", {self.side}" if self.side else ""
        return f"{SHORT_NAMES.get(self.name, self.name)}{side}, {self.volume_ml:.1f} mL"


def lesion_points(labels: np.ndarray, ijk_to_ras: np.ndarray, segments: Sequence[Segment],
                  lungs: np.ndarray | None = None, min_volume_ml: float = DEFAULT_MIN_VOLUME_ML) -> list[LesionPoint]:
    """Connected lesion components of a [k, j, i] label map, largest first.

    ``ijk_to_ras``: 4x4 matrix of the label map's grid. ``lungs``: the lung label map on the same grid (1 right,
    2 left); the side is the lung label most of the component overlaps (empty when it overlaps none).
    """
    from scipy import ndimage  # a requirement installed at first use in Slicer, never at import

    voxel_ml = abs(float(np.linalg.det(ijk_to_ras[:3, :3]))) / 1000.0
    structure = np.ones((3, 3, 3), dtype=bool)
    points: list[LesionPoint] = []
    for segment in segments:
        components, count = ndimage.label(labels == segment.label, structure=structure)
        if count == 0:
            continue
        index = np.arange(1, count + 1)
        sizes = ndimage.sum_labels(np.ones_like(components), components, index)
        centres = ndimage.center_of_mass(np.ones_like(components), components, index)
        for component, size, (k, j, i) in zip(index, sizes, centres):
            volume = float(size) * voxel_ml
            if volume < min_volume_ml:
                continue
            ras = ijk_to_ras @ np.array([i, j, k, 1.0])
            side = _side(lungs, components == component) if lungs is not None else ""
            points.append(LesionPoint(segment.label, segment.name, tuple(float(v) for v in ras[:3]), volume, side))
    return sorted(points, key=lambda p: -p.volume_ml)


def _side(lungs: np.ndarray, mask: np.ndarray) -> str:
    counts = np.bincount(lungs[mask].astype(np.int64), minlength=3)
    if counts[1:].sum() == 0:
        return ""
    return "right" if counts[1] >= counts[2] else "left"


def add_lesion_markups(scene, points: Sequence[LesionPoint], name: str = "CovidCT lesions",
                       labelled: int = LABELLED_POINTS):
    """A new point list node, one locked control point per lesion. The ``labelled`` largest are labelled with
    ``LesionPoint.label_text``, the others unlabelled (a glyph); every point's description starts with its title."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", scene.GenerateUniqueName(name))
    node.CreateDefaultDisplayNodes()
    largest = set(sorted(range(len(points)), key=lambda n: -points[n].volume_ml)[:labelled])
    for rank, point in enumerate(points):
        index = node.AddControlPoint(*point.ras, point.label_text)
        if rank not in largest:
            node.SetNthControlPointLabel(index, "")  # after adding: an empty label there gets an automatic one
        node.SetNthControlPointDescription(index, f"{point.title}; label {point.label}; "
                                                  f"volume_ml {point.volume_ml:.3f}")
        node.SetNthControlPointLocked(index, True)
    display = node.GetDisplayNode()
    if display is not None:
        display.SetSelectedColor(1.0, 0.85, 0.2)
        display.SetTextScale(2.5)
    return node


def markup_points(node) -> list[tuple[str, tuple[float, float, float]]]:
    """[(title, RAS position)] of a point list's control points: the title the description starts with, or the
    label of a point without a description."""
    out = []
    for index in range(node.GetNumberOfControlPoints()):
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPosition(index, position)
        title = node.GetNthControlPointDescription(index).split(";")[0] or node.GetNthControlPointLabel(index)
        out.append((title, tuple(position)))
    return out
