"""Dice, HD95 and lesion coverage on shapes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.lungs.evaluate import compare, dice, hd95_mm, lesion_coverage


def _box(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def test_dice():
    a = _box((1, 10, 10), (0, 0, 0), (1, 10, 5))
    b = _box((1, 10, 10), (0, 0, 0), (1, 10, 10))
    assert dice(a, b) == pytest.approx(2 * 50 / 150)
    assert dice(a, a) == 1.0 and dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_hd95_of_a_shifted_box_is_the_shift_in_mm():
    a = _box((1, 40, 40), (0, 10, 10), (1, 30, 30))
    b = _box((1, 40, 40), (0, 10, 13), (1, 30, 33))  # shifted 3 voxels in x
    assert hd95_mm(a, b, (2.0, 1.0, 1.0)) == pytest.approx(6.0)  # 3 voxels of 2 mm
    assert hd95_mm(a, a, (1.0, 1.0, 1.0)) == 0.0
    assert hd95_mm(a, np.zeros_like(a), (1.0, 1.0, 1.0)) == float("inf")


def test_compare_reports_sides():
    ref = np.zeros((1, 10, 20), np.uint8)
    ref[:, :, :10], ref[:, :, 10:] = 1, 2
    swapped = np.where(ref == 1, 2, 1).astype(np.uint8)
    r = compare(swapped, ref, (1.0, 1.0, 1.0))
    assert r["dice"] == 1.0 and r["dice_right"] == 0.0 and r["dice_left"] == 0.0


def test_lesion_coverage():
    labels = np.array([0, 1, 1, 2, 0])
    lesions = np.array([1, 1, 0, 2, 2])
    assert lesion_coverage(labels, lesions) == pytest.approx(2 / 4)
    assert lesion_coverage(labels, np.zeros(5)) == 1.0
