"""Corona score (Gozes et al. §2.4, Eq. 1) and the case probability on constructed inputs with exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.slice_resnet.corona import case_probability, corona_score_cm3


def _heatmap():
    heat = np.zeros((3, 20, 20), dtype=np.float32)
    heat[0, :2, :5] = 1.0   # 10 voxels at 1.0: counted
    heat[0, 5:9, :5] = 0.5  # 20 voxels at 0.5: below the 0.6 threshold
    heat[1, 10, :5] = 0.8   # 5 voxels at 0.8: counted, weighted by 0.8
    heat[1, 11, :5] = 0.6   # exactly at the threshold: not counted (strictly above)
    heat[2] = 1.0           # a negative slice: never counted
    return heat


def test_corona_score_sums_activation_above_threshold_on_positive_slices():
    voxel_mm3 = 2.0 * 2.0 * 5.0
    score = corona_score_cm3(_heatmap(), np.array([True, True, False]), voxel_mm3)
    assert score == pytest.approx((10 * 1.0 + 5 * 0.8) * voxel_mm3 / 1000.0)  # 0.28 cm3


def test_corona_score_of_no_positive_slice_is_zero_and_threshold_is_a_parameter():
    heat = _heatmap()
    assert corona_score_cm3(heat, np.zeros(3, bool), 1.0) == 0.0
    assert corona_score_cm3(heat, np.array([True, False, False]), 1000.0, threshold=0.4) == pytest.approx(20.0)


def test_corona_score_checks_the_slice_flags():
    with pytest.raises(ValueError):
        corona_score_cm3(_heatmap(), np.ones(2, bool), 1.0)


def test_case_probability_is_the_mean_of_the_top_tenth():
    assert case_probability([0.9] + [0.1] * 9) == pytest.approx(0.9)
    assert case_probability([0.9, 0.7] + [0.1] * 9) == pytest.approx(0.8)  # 11 slices: top 2
    assert case_probability([0.3]) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        case_probability([])
