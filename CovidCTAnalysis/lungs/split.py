"""Right/left lung separation that survives lungs touching at the anterior or posterior junction.

Two lungs that touch (the anterior junction line is two pleural layers thin, and on a coarse grid partial volume
fills it with lung-like values) form one connected component. Cutting at the narrowest neck of that component
is not safe: a lung can have a neck narrower than a long junction. The junction is, however, always near the
midline and always a little brighter than the lungs on either side. So the joined component is split by a
marker-based watershed on the image itself: the markers are the component's voxels well right and well left of the
body's midline, the floods run through dark lung and meet on the bright junction line (a low ridge added along the
midline decides where partial volume hides the junction). The part at lower x
(patient's right in LPS) is label 1, the other label 2 (docs/CONTRACTS.md).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..labels import LEFT_LUNG, RIGHT_LUNG
from .morphology import FACES, IN_PLANE

#: A component is "both lungs" when at least this fraction of it lies on each side of the midline.
JOINED_SIDE_FRACTION = 0.2
#: Voxels further than this (mm) from the body's midline seed the watershed of their side.
MARKER_OFFSET_MM = 25.0
#: Height (HU) of the ridge along the midline added to the watershed relief (a visible junction line is higher).
MIDLINE_RIDGE = 60.0


def _side_fractions(mask: np.ndarray, midline_x: float) -> tuple[float, float]:
    counts = mask.sum(axis=(0, 1))
    total = max(int(counts.sum()), 1)
    right = counts[: int(np.floor(midline_x)) + 1].sum() / total
    return float(right), float(1.0 - right)


def _split_joined(mask: np.ndarray, values: np.ndarray, spacing, midline_x: float) -> np.ndarray:
    """Labels 1/2 for a component holding both lungs: watershed from the parts well away from the midline.

    Markers: the component's voxels more than `MARKER_OFFSET_MM` right (label 1) or left (label 2) of the
    midline. The relief is the image itself: flooding proceeds through the dark lung and the two floods meet on the
    brighter junction line (two pleural layers), wherever it runs.
    """
    x_mm = (np.arange(mask.shape[2]) - midline_x) * spacing[0]
    markers = np.zeros(mask.shape, np.uint8)
    markers[mask & (x_mm < -MARKER_OFFSET_MM)[None, None, :]] = RIGHT_LUNG
    markers[mask & (x_mm > MARKER_OFFSET_MM)[None, None, :]] = LEFT_LUNG
    # lightly smoothed so that noise and parenchymal texture do not steer the floods, plus a low ridge along the
    # midline so that where partial volume hides the junction the floods meet at the midline
    smooth = ndi.gaussian_filter(values.astype(np.float32), [0 if mask.shape[0] == 1 else 1.0, 1.0, 1.0])
    ridge = MIDLINE_RIDGE * np.clip(1.0 - np.abs(x_mm) / MARKER_OFFSET_MM, 0.0, 1.0)
    relief = np.where(mask, smooth + ridge[None, None, :].astype(np.float32), np.float32(1e4)).astype(np.float32)
    ws = sitk.MorphologicalWatershedFromMarkers(sitk.GetImageFromArray(relief), sitk.GetImageFromArray(markers),
                                                markWatershedLine=False, fullyConnected=False)
    out = sitk.GetArrayFromImage(ws).astype(np.uint8)
    out[~mask] = 0
    return out


def split_right_left(lungs: np.ndarray, values: np.ndarray, spacing, midline_x: float) -> np.ndarray:
    """uint8 labels (0, 1 right, 2 left) from a lung mask whose lungs may touch; `midline_x` in voxels."""
    structure = IN_PLANE if lungs.shape[0] == 1 else FACES
    out = np.zeros(lungs.shape, np.uint8)
    lab, n = ndi.label(lungs, structure=structure)
    if n == 0:
        return out
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    first = lab == largest
    right_frac, left_frac = _side_fractions(first, midline_x)
    if min(right_frac, left_frac) >= JOINED_SIDE_FRACTION:
        out = _split_joined(first, values, spacing, midline_x)
    else:
        out[first] = RIGHT_LUNG if right_frac > left_frac else LEFT_LUNG
    # every other lung-like part joins the lung on its side of the midline
    other = lungs & ~first
    if other.any():
        olab, on = ndi.label(other, structure=structure)
        centres = ndi.center_of_mass(other, olab, range(1, on + 1))
        for k, c in enumerate(centres, start=1):
            out[olab == k] = RIGHT_LUNG if c[2] < midline_x else LEFT_LUNG
    return out
