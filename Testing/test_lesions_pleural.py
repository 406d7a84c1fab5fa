"""lesions/pleural.py: dense tissue of the lung segmentation's pleural fill becomes consolidation (true HU only)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from CovidCTAnalysis.labels import CONSOLIDATION, GGO
from CovidCTAnalysis.lesions.pleural import DENSE_HU, add_pleural_consolidation, pleural_on_grid


def test_only_dense_pleural_lung_voxels_become_consolidation():
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, 0, :] = GGO
    hu = np.full(labels.shape, -850.0, np.float32)
    hu[0, :, :2] = 20.0                                  # dense on the left half
    pleural = np.zeros(labels.shape, bool)
    pleural[0, :3, :3] = True
    lung = np.ones(labels.shape, bool)
    lung[0, 2, :] = False                                # the fill outside the final lung mask does not count
    out = add_pleural_consolidation(labels.copy(), hu, lung, pleural)
    expected = labels.copy()
    expected[0, [0, 0, 1, 1], [0, 1, 0, 1]] = CONSOLIDATION
    assert np.array_equal(out, expected)
    assert DENSE_HU < -100.0                             # soft-tissue consolidation is always dense enough


def test_pleural_mask_is_carried_from_its_coarse_grid():
    fine = sitk.Image([8, 8, 4], sitk.sitkFloat32)
    fine.SetSpacing((1.0, 1.0, 2.0))
    coarse_arr = np.zeros((2, 4, 4), np.uint8)
    coarse_arr[1, 0, 3] = 1                              # coarse voxel (x 3, y 0, z 1)
    coarse = sitk.GetImageFromArray(coarse_arr)
    coarse.SetSpacing((2.0, 2.0, 4.0))                   # BinShrink by 2: voxel centres at +0.5 fine voxels
    coarse.SetOrigin((0.5, 0.5, 1.0))
    mask = pleural_on_grid(coarse, fine)
    assert mask.shape == (4, 8, 8) and mask.dtype == bool
    expected = np.zeros((4, 8, 8), bool)
    expected[2:4, 0:2, 6:8] = True
    assert np.array_equal(mask, expected)
