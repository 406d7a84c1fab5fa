"""Small mask helpers shared by the lung-segmentation steps (numpy arrays in SimpleITK's z, y, x order).

Everything works on 3-D arrays; a 2-D input is an array with one slice, and every helper then acts within the
slice only (radii along z are forced to 0, "holes" are found slice by slice). Heavy morphology goes through
SimpleITK (multi-threaded C++); labelling and look-ups through scipy.ndimage and numpy.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

#: Face connectivity within an axial slice only (used for "per slice" logic on 3-D arrays).
IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE[1] = ndi.generate_binary_structure(2, 1)
#: Face connectivity in 3-D (6 neighbours): keeps thin diagonal partial-volume bridges from joining structures.
FACES = ndi.generate_binary_structure(3, 1)


def radius_voxels(spacing, radius_mm: float, depth: int, in_plane_only: bool = False) -> list[int]:
    """Radius in voxels per axis (x, y, z) for a ball of `radius_mm`; z is 0 for one-slice arrays or on request."""
    r = [max(0, int(round(radius_mm / s))) for s in spacing]
    if depth == 1 or in_plane_only:
        r[2] = 0
    return r


def closing(mask: np.ndarray, spacing, radius_mm: float, in_plane_only: bool = False) -> np.ndarray:
    """Binary closing with a ball of `radius_mm` (SimpleITK), padded so that nothing sticks to the array edges."""
    r = radius_voxels(spacing, radius_mm, mask.shape[0], in_plane_only)
    if not any(r) or not mask.any():
        return mask.copy()
    pad = [(r[2], r[2]), (r[1], r[1]), (r[0], r[0])]
    img = sitk.GetImageFromArray(np.pad(mask, pad).astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing))
    out = sitk.BinaryMorphologicalClosing(img, r, sitk.sitkBall, 1)
    arr = sitk.GetArrayViewFromImage(out)
    return arr[r[2]: r[2] + mask.shape[0], r[1]: r[1] + mask.shape[1], r[0]: r[0] + mask.shape[2]] > 0


def dilate(mask: np.ndarray, spacing, radius_mm: float, in_plane_only: bool = False) -> np.ndarray:
    """Binary dilation with a ball of `radius_mm` (SimpleITK)."""
    r = radius_voxels(spacing, radius_mm, mask.shape[0], in_plane_only)
    if not any(r) or not mask.any():
        return mask.copy()
    out = sitk.BinaryDilate(sitk.GetImageFromArray(mask.astype(np.uint8)), r, sitk.sitkBall, 0, 1)
    return sitk.GetArrayViewFromImage(out) > 0


def opening(mask: np.ndarray, structure) -> np.ndarray:
    """Binary opening by `structure` in which the array's edges do not erode (a lung cut by the field of view, or
    the first and last slice of a thin series, keep their voxels)."""
    eroded = ndi.binary_erosion(mask, structure=structure, border_value=1)
    return ndi.binary_dilation(eroded, structure=structure) & mask


def edge_connected_in_plane(mask: np.ndarray) -> np.ndarray:
    """Voxels of `mask` connected, within their own axial slice, to that slice's edge (e.g. air around the body)."""
    lab, n = ndi.label(mask, structure=IN_PLANE)
    if n == 0:
        return np.zeros_like(mask)
    lut = np.zeros(n + 1, dtype=bool)
    for edge in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        lut[np.unique(edge)] = True
    lut[0] = False
    return lut[lab]


def fill_holes_in_plane(mask: np.ndarray, max_area_voxels: int | None = None) -> np.ndarray:
    """Fill each axial slice's holes (background not connected to the slice edge), optionally only small ones."""
    lab, n = ndi.label(~mask, structure=IN_PLANE)
    if n == 0:
        return mask.copy()
    lut = np.ones(n + 1, dtype=bool)
    for edge in (lab[:, 0, :], lab[:, -1, :], lab[:, :, 0], lab[:, :, -1]):
        lut[np.unique(edge)] = False
    lut[0] = False
    if max_area_voxels is not None:
        lut &= np.bincount(lab.ravel(), minlength=n + 1) <= max_area_voxels
    return mask | lut[lab]


def fill_holes_3d(mask: np.ndarray) -> np.ndarray:
    """Fill background pockets enclosed in 3-D (SimpleITK BinaryFillhole); a one-slice array is filled in plane."""
    if mask.shape[0] == 1:
        return fill_holes_in_plane(mask)
    out = sitk.BinaryFillhole(sitk.GetImageFromArray(mask.astype(np.uint8)), False, 1)
    return sitk.GetArrayViewFromImage(out) > 0


def keep_large_components(mask: np.ndarray, min_fraction: float, structure=FACES) -> np.ndarray:
    """Keep the connected components holding at least `min_fraction` of the largest one's voxels."""
    lab, n = ndi.label(mask, structure=structure)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    keep = sizes >= min_fraction * sizes.max()
    keep[0] = False
    return keep[lab]


def bounding_box(mask: np.ndarray, margin=(0, 0, 0)) -> tuple[slice, slice, slice] | None:
    """Slices (z, y, x) of the box around `mask`, grown by `margin` voxels (z, y, x) and clipped; None if empty."""
    if not mask.any():
        return None
    box = []
    for axis, m in enumerate(margin):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(idx[0]) - m, 0), min(int(idx[-1]) + 1 + m, mask.shape[axis])))
    return tuple(box)  # type: ignore[return-value]
