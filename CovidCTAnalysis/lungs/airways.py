"""Trachea and main bronchi: found from the top of the scan and grown down with leak control.

The trachea is the one round, central, pure-air tube at the top of a chest CT. We take the highest axial slice that
shows such a tube as the seed and grow the airway tree in 3-D with a "pure air" threshold, raising the threshold
step by step (lumen of smaller bronchi reads denser on a coarse grid) and stopping before the grown region
explodes into the lung parenchyma: the classical leak-controlled region growing used for airway extraction. What
counts as "large airway" (and is removed from the lungs) is the part of that tree at least `LARGE_AIRWAY_MM` wide:
trachea, main and lobar bronchi at the hilum; narrower bronchi stay inside the lung (they are lung in every
reference mask we know of, and the lungs' hole filling puts them back anyway).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from .airspace import Levels
from .morphology import IN_PLANE, radius_voxels

#: Cross-section of the trachea in an axial slice (cm2): adult trachea 1.5-2.5 cm wide; generous bounds.
TRACHEA_AREA_CM2 = (0.5, 9.0)
#: The trachea's centre lies within this distance (mm) of the body's left-right centre.
TRACHEA_MAX_OFFSET_MM = 35.0
#: Growing stops when the tree exceeds this volume (ml) or, once trachea-sized (20 ml), grows more than LEAK_GROWTH
#: times in one step.
MAX_AIRWAY_ML = 250.0
LEAK_GROWTH = 2.0
#: Tubes at least this wide (mm) count as large airways (removed from the lung masks).
LARGE_AIRWAY_MM = 7.0
#: Thresholds tried, as fractions of the air-to-tissue range (-980 ... -900 HU on real HU; normal parenchyma on a
#: ~2.5 mm grid averages about -870 HU, so the last steps are where leaks start).
GROW_FRACTIONS = (0.02, 0.035, 0.05, 0.065, 0.08, 0.09, 0.1)


def find_trachea_seed(values: np.ndarray, inner_air: np.ndarray, spacing, levels: Levels,
                      body_centre_x: float, z_limit: int) -> tuple[int, int, int] | None:
    """(z, y, x) of a voxel in the trachea, searching the axial slices from the top down to `z_limit`; or None."""
    pixel_cm2 = spacing[0] * spacing[1] / 100.0
    pure = inner_air & (values < levels.at(0.1))
    for z in range(values.shape[0] - 1, max(z_limit, 0) - 1, -1):
        lab, n = ndi.label(pure[z])
        if n == 0:
            continue
        areas = np.bincount(lab.ravel(), minlength=n + 1) * pixel_cm2
        best, best_offset = None, None
        for k in range(1, n + 1):
            if not TRACHEA_AREA_CM2[0] <= areas[k] <= TRACHEA_AREA_CM2[1]:
                continue
            yy, xx = np.nonzero(lab == k)
            offset = abs(xx.mean() - body_centre_x) * spacing[0]
            # round-ish: the bounding box is not much longer than wide
            h, w = (np.ptp(yy) + 1) * spacing[1], (np.ptp(xx) + 1) * spacing[0]
            if offset > TRACHEA_MAX_OFFSET_MM or max(h, w) > 2.5 * min(h, w) + 2 * max(spacing[:2]):
                continue
            if best is None or offset < best_offset:
                i = int(np.argmin(np.where(lab == k, values[z], np.inf)))
                best, best_offset = (z, i // values.shape[2], i % values.shape[2]), offset
        if best is not None:
            return best
    return None


def grow_airways(values: np.ndarray, inner_air: np.ndarray, spacing, levels: Levels,
                 seed: tuple[int, int, int]) -> np.ndarray:
    """The airway tree grown from `seed`: the largest threshold before a leak (see module doc)."""
    masked = np.where(inner_air, values, levels.tissue).astype(np.float32)
    img = sitk.GetImageFromArray(masked)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    z, y, x = seed
    best = None
    previous_ml = None
    for fraction in GROW_FRACTIONS:
        upper = levels.at(fraction)
        if masked[z, y, x] > upper:
            continue
        grown = sitk.ConnectedThreshold(img, seedList=[(int(x), int(y), int(z))], lower=-1e9, upper=float(upper))
        arr = sitk.GetArrayFromImage(grown) > 0
        ml = arr.sum() * voxel_ml
        if ml > MAX_AIRWAY_ML or (previous_ml is not None and previous_ml >= 20.0 and ml > LEAK_GROWTH * previous_ml):
            break
        best, previous_ml = arr, ml
    if best is None:
        return np.zeros_like(inner_air)
    return best


def large_airways(tree: np.ndarray, spacing) -> np.ndarray:
    """The parts of the airway tree at least `LARGE_AIRWAY_MM` wide (in-plane opening, then grown back inside)."""
    if not tree.any():
        return tree
    r = radius_voxels(spacing, LARGE_AIRWAY_MM / 2.0, tree.shape[0], in_plane_only=True)
    r = [max(1, r[0]), max(1, r[1]), 0]
    opened = sitk.BinaryMorphologicalOpening(sitk.GetImageFromArray(tree.astype(np.uint8)), r, sitk.sitkBall, 0, 1)
    core = sitk.GetArrayViewFromImage(opened) > 0
    # the opening shaves the tubes' rims: take back the tree voxels touching the core
    return tree & ndi.binary_dilation(core, structure=IN_PLANE, iterations=1)
