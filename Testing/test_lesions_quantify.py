"""Lesion quantification: exact volumes and % involvement on constructed masks; MosMedData severity bands."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.lesions import quantify, severity_band


def _image(array: np.ndarray, spacing=(0.5, 0.8, 2.5)) -> sitk.Image:
    img = sitk.GetImageFromArray(array.astype(np.uint8))
    img.SetSpacing(spacing)
    return img


def test_volumes_and_involvement_are_exact():
    lungs = np.zeros((10, 20, 30), np.uint8)
    lungs[:, :, :15] = 1          # right lung: 10*20*15 = 3000 voxels
    lungs[:, 5:15, 15:] = 2       # left lung: 10*10*15 = 1500 voxels
    lesions = np.zeros_like(lungs)
    lesions[0:2, 0:10, 0:15] = 1  # 300 GGO voxels in the right lung
    lesions[0:3, 5:10, 15:30] = 2  # 225 consolidation voxels in the left lung
    lesions[5, 0:5, 20:30] = 1    # 50 GGO voxels outside the lungs: volume yes, involvement no
    voxel_ml = 0.5 * 0.8 * 2.5 / 1000
    q = quantify(_image(lesions), _image(lungs))
    assert q["ggo_ml"] == pytest.approx(350 * voxel_ml)
    assert q["consolidation_ml"] == pytest.approx(225 * voxel_ml)
    assert q["total_ml"] == pytest.approx(575 * voxel_ml)
    assert q["percent_involvement"]["right"] == pytest.approx(100 * 300 / 3000)
    assert q["percent_involvement"]["left"] == pytest.approx(100 * 225 / 1500)
    assert q["percent_involvement"]["total"] == pytest.approx(100 * 525 / 4500)
    assert q["lung_ml"] == {"right": pytest.approx(3000 * voxel_ml), "left": pytest.approx(1500 * voxel_ml)}
    assert q["severity"]["band"] == "CT-1"
    assert "crazy_paving_ml" not in q


def test_crazy_paving_counts_in_total_and_is_reported():
    lungs = np.ones((2, 4, 4), np.uint8)
    lesions = np.zeros_like(lungs)
    lesions[0, 0, :3] = 3
    q = quantify(_image(lesions, (1, 1, 1)), _image(lungs, (1, 1, 1)))
    assert q["crazy_paving_ml"] == pytest.approx(0.003)
    assert q["total_ml"] == pytest.approx(0.003)
    assert q["percent_involvement"]["total"] == pytest.approx(100 * 3 / 32)


def test_missing_lung_side_gives_zero_not_nan():
    lungs = np.zeros((2, 4, 4), np.uint8)
    lungs[:, :, :2] = 1
    q = quantify(_image(np.zeros_like(lungs)), _image(lungs))
    assert q["percent_involvement"] == {"right": 0.0, "left": 0.0, "total": 0.0}
    assert q["lung_ml"]["left"] == 0.0
    assert q["severity"]["band"] == "CT-0"


@pytest.mark.parametrize("percent,band", [(0.0, "CT-0"), (0.05, "CT-0"), (0.1, "CT-1"), (24.9, "CT-1"),
                                          (25.0, "CT-2"), (49.9, "CT-2"), (50.0, "CT-3"), (75.0, "CT-4"),
                                          (100.0, "CT-4")])
def test_severity_bands(percent, band):
    s = severity_band(percent)
    assert s["band"] == band
    assert "MosMedData" in s["scale"]


def test_grids_must_match():
    with pytest.raises(ValueError):
        quantify(_image(np.zeros((2, 3, 3))), _image(np.zeros((2, 3, 4))))
