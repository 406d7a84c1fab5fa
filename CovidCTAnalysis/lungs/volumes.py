"""Lung volumes from a right/left label map."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..labels import LEFT_LUNG, RIGHT_LUNG


def lung_volumes_ml(labels: sitk.Image) -> dict:
    """{"right_ml", "left_ml", "total_ml"}: voxel counts of labels 1 and 2 times the voxel volume (mm3 -> ml)."""
    array = sitk.GetArrayViewFromImage(labels)  # counted in place: a widened copy of a 512 x 512 x 300 map took 2 s
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    right = float(np.count_nonzero(array == RIGHT_LUNG)) * voxel_ml
    left = float(np.count_nonzero(array == LEFT_LUNG)) * voxel_ml
    return {"right_ml": right, "left_ml": left, "total_ml": right + left}
