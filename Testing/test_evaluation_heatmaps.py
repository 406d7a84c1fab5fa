"""Heatmap quality metrics: pointing game with tolerance, energy lift against a uniform map, mass inside a region."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.evaluation.heatmaps import energy_lift, mass_inside, pointing_hit, summarize


def _mask():
    m = np.zeros((40, 40), np.uint8)
    m[10:20, 10:20] = 1
    return m


def test_pointing_hit_inside_within_tolerance_and_outside():
    heat = np.zeros((40, 40))
    heat[15, 15] = 1.0
    assert pointing_hit(heat, _mask())
    heat[:] = 0
    heat[15, 24] = 1.0  # 5 px right of the mask's last column (19)
    assert pointing_hit(heat, _mask(), tolerance_px=5)
    assert not pointing_hit(heat, _mask(), tolerance_px=4)
    heat[:] = 0
    heat[35, 35] = 1.0
    assert not pointing_hit(heat, _mask())


def test_a_map_without_heat_points_nowhere():
    assert not pointing_hit(np.zeros((40, 40)), _mask())
    assert energy_lift(np.zeros((40, 40)), _mask()) is None


def test_energy_lift_is_one_for_a_uniform_map_and_grows_with_concentration():
    m = _mask()
    assert energy_lift(np.ones((40, 40)), m) == pytest.approx(1.0)
    assert energy_lift(m.astype(float), m) == pytest.approx(1600 / 100)
    half = np.where(m > 0, 1.0, 0.0) + np.where(m > 0, 0.0, 100 / 1500)  # half the mass inside
    assert energy_lift(half, m) == pytest.approx(0.5 * 16)


def test_mass_inside_a_volume_region_and_negative_heat_clipped():
    heat = np.zeros((3, 10, 10))
    heat[1, 2:4, 2:4] = 1.0
    heat[1, 8, 8] = 4.0
    heat[0] = -5.0
    region = np.zeros_like(heat, bool)
    region[1, :5, :5] = True
    assert mass_inside(heat, region) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same grid"):
        mass_inside(heat, region[0])


def test_summary_counts_hits_and_gives_intervals():
    m = _mask()
    good = m.astype(float)
    bad = np.zeros((40, 40))
    bad[35, 35] = 1.0
    s = summarize([good, good, bad, good], [m] * 4, n_boot=200)
    assert s["n"] == 4 and s["pointing_game"] == pytest.approx(0.75) and s["hits"] == [1, 1, 0, 1]
    lo, hi = s["pointing_ci95"]
    assert 0.0 <= lo <= 0.75 <= hi <= 1.0
    assert s["lifts"][2] == pytest.approx(0.0) and s["energy_lift_median"] == pytest.approx(16.0)
