"""Coarse grid and the way back: shrink factors, local border thresholds, full-resolution border refinement."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.lungs.grid import local_thresholds, shrink_factors, to_coarse, to_fine


@pytest.mark.parametrize("spacing, size, expected", [
    ((0.68, 0.68, 1.0), (512, 512, 300), (4, 4, 3)),   # thin-slice CT -> ~2.7 x 2.7 x 3 mm
    ((3.0, 3.0, 5.0), (128, 128, 64), (1, 1, 1)),      # already coarse
    ((0.625, 0.625, 1.0), (512, 512, 1), (4, 4, 1)),   # one slice: z untouched
    ((0.625, 0.625, 1.0), (512, 512, 2), (4, 4, 1)),   # two slices are never merged
])
def test_shrink_factors(spacing, size, expected):
    assert shrink_factors(spacing, size) == expected


def test_coarse_grid_is_block_means():
    a = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    img = sitk.GetImageFromArray(a)
    coarse = sitk.GetArrayFromImage(to_coarse(img, (2, 2, 2)))
    assert coarse.shape == (2, 4, 4)
    assert coarse[0, 0, 0] == pytest.approx(a[:2, :2, :2].mean())


def test_local_threshold_sits_half_way_between_nearby_lung_and_tissue():
    values = np.full((1, 40, 40), -850.0, np.float32)
    values[:, :, 20:] = -600.0  # ground glass on the right half
    labels = np.ones(values.shape, np.uint8)
    t = local_thresholds(values, labels, (2.5, 2.5, 2.5), threshold=-500.0, tissue=0.0)
    assert t[0, 20, 2] == pytest.approx(-425.0, abs=2.0)
    assert t[0, 20, 37] > -340.0  # half way from -600 to 0 is -300, capped at 60 % of the way from -500 to 0
    assert t.max() <= -500.0 + 0.6 * 500.0 + 1e-3


def test_border_is_refined_at_full_resolution():
    """A coarse square lung whose true border falls inside a coarse voxel: the refinement finds it."""
    fine = np.full((1, 64, 64), 40.0, np.float32)
    fine[:, 10:50, 13:51] = -850.0  # true lung: x 13..50, not a multiple of 4
    image = sitk.GetImageFromArray(fine)
    coarse_labels = np.zeros((1, 16, 16), np.uint8)
    coarse_labels[:, 2:13, 3:13] = 1  # x 12..51 on the fine grid: one fine voxel too wide on each side
    filled = np.zeros(coarse_labels.shape, bool)
    thresholds = np.full(coarse_labels.shape, -425.0, np.float32)
    out = to_fine(image, (4, 4, 1), coarse_labels, filled, thresholds)
    assert np.array_equal(out[0] > 0, fine[0] < -425.0)


def test_filled_coarse_voxels_stay_lung():
    fine = np.full((1, 32, 32), 40.0, np.float32)
    image = sitk.GetImageFromArray(fine)
    coarse_labels = np.zeros((1, 8, 8), np.uint8)
    coarse_labels[:, 2:6, 2:6] = 2
    filled = coarse_labels > 0  # e.g. a consolidation: dense, but lung
    out = to_fine(image, (4, 4, 1), coarse_labels, filled, np.full((1, 8, 8), -425.0, np.float32))
    assert (out[0, 8:24, 8:24] == 2).all() and out.sum() == 2 * 16 * 16
