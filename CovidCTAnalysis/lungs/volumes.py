"""Lung volumes from a right/left label map."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..labels import LEFT_LUNG, RIGHT_LUNG


def lung_volumes_ml(labels: sitk.Image) -> dict:
    """{"right_ml", "left_ml", "total_ml"}: voxel counts of labels 1 and 2 times the voxel volume (mm3 -> ml)."""
    counts = np.bincount(sitk.GetArrayViewFromImage(labels).ravel().astype(np.intp, copy=False), minlength=3)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    right = float(counts[RIGHT_LUNG]) * voxel_ml
    left = float(counts[LEFT_LUNG]) * voxel_ml
    return {"right_ml": right, "left_ml": left, "total_ml": right + left}
