"""Lung volumes: voxel counts times the voxel volume, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.lungs import lung_volumes_ml


def test_volumes_are_exact():
    a = np.zeros((10, 20, 30), np.uint8)
    a[2:5, 3:9, 4:14] = 1  # 180 voxels
    a[6:9, 10:12, 15:25] = 2  # 60 voxels
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((0.5, 2.0, 4.0))  # 4 mm3 per voxel
    v = lung_volumes_ml(img)
    assert v == {"right_ml": pytest.approx(0.72), "left_ml": pytest.approx(0.24), "total_ml": pytest.approx(0.96)}
    assert all(isinstance(x, float) for x in v.values())


def test_empty_labels_have_zero_volume():
    v = lung_volumes_ml(sitk.Image(4, 4, 4, sitk.sitkUInt8))
    assert v == {"right_ml": 0.0, "left_ml": 0.0, "total_ml": 0.0}
