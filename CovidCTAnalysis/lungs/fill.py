"""Vessels and dense lesions inside each lung: hole filling and a closing along the lung's own surface.

A threshold mask of the lung leaves out what is denser than air: vessels, bronchial walls, and exactly the lesions a
COVID-19 analysis wants to measure. Each lung is filled on its own (so the mediastinum between the lungs is never a
"hole"): 3-D holes (a lesion surrounded by aerated lung), axial-slice holes up to `MAX_HOLE_CM2` (vessel cross-
sections; the size cap keeps the liver dome out where a basal lung ring encircles it), then a closing with a ball of
`CLOSING_MM` that takes in vessel notches along the hilum and the mediastinal surface, limited to non-bone voxels
that are neither the other lung nor a large airway. Lesions against the costal pleura are handled in `pleura.py`.
"""

from __future__ import annotations

import numpy as np

from ..labels import LEFT_LUNG, RIGHT_LUNG
from .morphology import bounding_box, closing, fill_holes_3d, fill_holes_in_plane, radius_voxels

#: Largest axial hole (cm2) filled slice by slice.
MAX_HOLE_CM2 = 12.0
#: Radius (mm) of the closing along each lung's surface.
CLOSING_MM = 10.0


def fill_lungs(labels: np.ndarray, values: np.ndarray, spacing, bone_level: float,
               forbidden: np.ndarray, closing_mm: float | None = None) -> np.ndarray:
    """Labels with each lung's vessels and enclosed lesions filled; `forbidden` voxels (large airways) stay out."""
    out = labels.copy()
    closing_mm = CLOSING_MM if closing_mm is None else closing_mm
    max_hole = int(MAX_HOLE_CM2 * 100.0 / (spacing[0] * spacing[1]))
    r = radius_voxels(spacing, closing_mm, labels.shape[0])
    margin = (r[2] + 1, r[1] + 1, r[0] + 1)
    for lung, other in ((RIGHT_LUNG, LEFT_LUNG), (LEFT_LUNG, RIGHT_LUNG)):
        box = bounding_box(labels == lung, margin)
        if box is None:
            continue
        m = labels[box] == lung
        m = fill_holes_3d(m)
        m = fill_holes_in_plane(m, max_hole)
        closed = closing(m, spacing, closing_mm)
        add = closed & ~m & ~forbidden[box] & (out[box] != other) & (values[box] < bone_level)
        m |= add
        m = fill_holes_in_plane(m, max_hole)
        sub = out[box]
        sub[m & (sub == 0)] = lung
    return out

