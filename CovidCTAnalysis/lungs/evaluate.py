"""Agreement of a lung mask with a reference: Dice, HD95 (mm), per-side Dice and lesion coverage.

HD95 follows the usual definition for segmentation benchmarks (e.g. MONAI's ``compute_hausdorff_distance`` with
``percentile=95``): the distances from every border voxel of one mask to the nearest border voxel of the other, the
95th percentile in each direction, the larger of the two. Distances are in mm (image spacing), from SimpleITK's
Maurer distance maps.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A|+|B|) of two boolean arrays; 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _border(mask: np.ndarray) -> np.ndarray:
    structure = ndi.generate_binary_structure(3, 1)
    if mask.shape[0] == 1:
        structure[0] = structure[2] = False
    return mask & ~ndi.binary_erosion(mask, structure=structure, border_value=0)


def _distance_to(mask: np.ndarray, spacing) -> np.ndarray:
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing))
    d = sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
    return np.abs(sitk.GetArrayFromImage(d))


def hd95_mm(a: np.ndarray, b: np.ndarray, spacing) -> float:
    """95th-percentile symmetric Hausdorff distance (mm) between the borders of masks a and b (z, y, x arrays).

    `spacing` is (x, y, z) in mm. Infinite when exactly one mask is empty, 0 when both are.
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        return float("inf")
    ba, bb = _border(a), _border(b)
    # distance of a voxel to the nearest border voxel of the other mask (0 on that border)
    to_b = _distance_to(bb, spacing)
    to_a = _distance_to(ba, spacing)
    return float(max(np.percentile(to_b[ba], 95), np.percentile(to_a[bb], 95)))


def compare(labels: np.ndarray, reference: np.ndarray, spacing) -> dict:
    """Dice and HD95 of the whole lung mask and, when the reference has both labels, of each side."""
    out = {"dice": dice(labels > 0, reference > 0), "hd95_mm": hd95_mm(labels > 0, reference > 0, spacing)}
    if (reference == 1).any() and (reference == 2).any():
        out["dice_right"] = dice(labels == 1, reference == 1)
        out["dice_left"] = dice(labels == 2, reference == 2)
    return out


def lesion_coverage(labels: np.ndarray, lesions: np.ndarray) -> float:
    """Fraction of lesion voxels (lesions > 0) that lie inside the lung mask (labels > 0); 1.0 without lesions."""
    n = int((lesions > 0).sum())
    return 1.0 if n == 0 else float(((labels > 0) & (lesions > 0)).sum()) / n
