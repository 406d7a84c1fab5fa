"""Intensity pseudo-mask (seed 001 section 2.7.2) on a synthetic chest: what it marks and what it leaves out."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CovidCTAnalysis.lesions import PSEUDO_MASK_SEGMENT, pseudo_infection_mask
from CovidCTAnalysis.lesions.pseudo_mask import patch_support, thresholds, paper_intensity


def synthetic_chest(seed: int = 0):
    """(image, lungs, ggo, speck, dense): 12 slices of 160 x 200 px at 0.7 mm; a ground-glass disc (-600 HU) in the
    right lung, a 3 x 3 px speck of the same density in the left lung, a consolidation disc (20 HU) in the left lung."""
    rng = np.random.default_rng(seed)
    z, h, w = 12, 160, 200
    yy, xx = np.mgrid[:h, :w]
    hu = np.full((z, h, w), -1000.0, np.float32)
    body = ((yy - 80) / 75) ** 2 + ((xx - 100) / 95) ** 2 <= 1
    right = ((yy - 80) / 55) ** 2 + ((xx - 58) / 35) ** 2 <= 1
    left = ((yy - 80) / 55) ** 2 + ((xx - 142) / 35) ** 2 <= 1
    hu[:, body] = 40.0
    lungs = np.zeros((z, h, w), np.uint8)
    lungs[:, right] = 1
    lungs[:, left] = 2
    hu[lungs > 0] = -870.0
    ggo = np.zeros((z, h, w), bool)
    ggo[3:9] = ((yy - 70) ** 2 + (xx - 55) ** 2 <= 14 ** 2)[None]
    hu[ggo] = -600.0
    speck = np.zeros((z, h, w), bool)
    speck[3:9, 100:103, 150:153] = True
    hu[speck] = -600.0
    dense = np.zeros((z, h, w), bool)
    dense[3:9] = ((yy - 110) ** 2 + (xx - 140) ** 2 <= 10 ** 2)[None]
    hu[dense] = 20.0
    hu = ndimage.gaussian_filter(hu, (0, 1.5, 1.5))  # partial volume at every border
    hu += rng.normal(0, 15, hu.shape).astype(np.float32)
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing((0.7, 0.7, 5.0))
    lung_img = sitk.GetImageFromArray(lungs)
    lung_img.CopyInformation(image)
    return image, lung_img, ggo, speck, dense


def test_marks_ground_glass_and_nothing_else():
    image, lungs, ggo, speck, dense = synthetic_chest()
    mask_img = pseudo_infection_mask(image, lungs)
    mask = sitk.GetArrayFromImage(mask_img)
    assert mask_img.GetSize() == image.GetSize() and mask_img.GetSpacing() == image.GetSpacing()
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert mask[ggo].mean() > 0.9            # the ground glass is found
    assert mask[speck].sum() == 0            # a speck far below 1/3 of a 36 x 36 patch is dropped
    assert mask[dense].mean() < 0.05         # consolidation is above the valley
    lung = sitk.GetArrayFromImage(lungs) > 0
    assert mask[~lung].sum() == 0            # only inside the lungs here (convex lungs: nothing to close)
    healthy = lung & ~ggo & ~speck & ~dense
    assert mask[healthy].mean() < 0.04       # healthy lung stays below the bound (bar partial volume at its rim)


def test_thresholds_bracket_ground_glass():
    image, lungs, *_ = synthetic_chest()
    values = paper_intensity(sitk.GetArrayFromImage(image))
    lower, upper = thresholds(values, sitk.GetArrayFromImage(lungs))
    to_hu = lambda v: v * 2048 - 1000  # paper scale -> HU (background at -1000 HU)  # noqa: E731
    assert to_hu(lower) < -600 < to_hu(upper)
    assert -870 < to_hu(lower)
    assert to_hu(upper) < 20


def test_patch_density_rule():
    s = np.zeros((80, 80), bool)
    s[0:36, 0:12] = True                     # exactly 1/3 of the first patch
    covered = patch_support(s)
    assert covered[0:36, 0:36].all() and not covered[:, 44:].any()
    s2 = np.zeros((80, 80), bool)
    s2[0:35, 0:12] = True                    # just under 1/3 everywhere
    assert not patch_support(s2).any()


def test_segment_name_says_what_it_is():
    assert PSEUDO_MASK_SEGMENT.label == 1
    assert "suspected infection" in PSEUDO_MASK_SEGMENT.name and "pseudo" in PSEUDO_MASK_SEGMENT.name


def test_grid_mismatch_is_refused():
    image, lungs, *_ = synthetic_chest()
    small = sitk.GetImageFromArray(np.ones((12, 10, 10), np.uint8))
    with pytest.raises(ValueError):
        pseudo_infection_mask(image, small)
