"""Tube signed distances and partial-volume coverage (the vessels, airways and mediastinal vessels of the demo CT)."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.demo.grid import Grid
from CovidCTAnalysis.demo.tubes import Tubes


@pytest.fixture
def cone() -> Tubes:
    # along x from (-20, 0, 0) radius 6 to (20, 0, 0) radius 2
    return Tubes(np.array([[-20.0, 0, 0]]), np.array([[20.0, 0, 0]]), np.array([6.0]), np.array([2.0]))


def test_sdf_points(cone):
    pts = np.array([[0.0, 10.0, 0.0], [0.0, 0.0, 0.0], [-20.0, 0.0, -6.0], [30.0, 0.0, 0.0], [-20.0, 3.0, 4.0]])
    d = cone.sdf_points(pts)
    assert d == pytest.approx([10.0 - 4.0, -4.0, 0.0, 10.0 - 2.0, -1.0], abs=1e-9)
    assert np.isinf(Tubes.empty().sdf_points(pts)).all()


def test_from_polyline_and_concat():
    t = Tubes.from_polyline([(0, 0, 0, 3), (10, 0, 0, 2), (10, 10, 0, 1)])
    assert len(t) == 2 and t.ra.tolist() == [3, 2] and t.rb.tolist() == [2, 1]
    both = Tubes.concat([t, Tubes.empty(), t.scaled(1.0, 1.0)])
    assert len(both) == 4 and both.ra[2] == 4.0


def test_rasterize_min_matches_points(cone):
    grid = Grid((30, 20, 16), (2.0, 2.0, 2.5), (-29.0, -19.0, -18.75))
    field = np.full((16, 20, 30), 1e4, np.float32)
    cone.rasterize_min(field, grid, 0, reach=3.0)
    zz, yy, xx = np.meshgrid(grid.axis(2), grid.axis(1), grid.axis(0), indexing="ij")
    exact = cone.sdf_points(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1)).reshape(field.shape)
    near = exact < 3.0
    assert near.sum() > 100
    assert np.allclose(field[near], exact[near], atol=1e-4)
    touched = field < 1e4
    assert np.allclose(field[touched], exact[touched], atol=1e-4)  # beyond reach: exact or untouched
    assert not touched[exact > 30.0].any()


def test_rasterize_by_slabs_equals_whole(cone):
    grid = Grid((30, 20, 16), (2.0, 2.0, 2.5), (-29.0, -19.0, -18.75))
    whole = np.zeros((16, 20, 30), np.float32)
    cone.rasterize_coverage(whole, grid, 0)
    parts = np.zeros_like(whole)
    for z0 in range(0, 16, 5):
        cone.rasterize_coverage(parts[z0:z0 + 5], grid, z0)
    assert np.array_equal(whole, parts)


def test_coverage_partial_volume():
    grid = Grid((40, 40, 4), (1.0, 1.0, 1.0), (-19.5, -19.5, -1.5))
    thick = Tubes(np.array([[0.0, 0, -10]]), np.array([[0.0, 0, 10]]), np.array([5.0]), np.array([5.0]))
    thin = Tubes(np.array([[10.5, 10.5, -10]]), np.array([[10.5, 10.5, 10]]), np.array([0.2]), np.array([0.2]))
    cover = np.zeros((4, 40, 40), np.float32)
    thick.rasterize_coverage(cover, grid, 0)
    thin.rasterize_coverage(cover, grid, 0)
    c = cover[1]
    assert c[19:21, 19:21].min() == 1.0                       # inside the thick tube
    assert c[0, 0] == 0.0                                      # far away
    assert 0.0 < c.max() <= 1.0
    # the thick tube's cross-section area is recovered by its coverage (partial volume at the rim)
    thick_only = c[5:35, 5:35] * (np.hypot(*np.meshgrid(grid.axis(1)[5:35], grid.axis(0)[5:35])) < 8)
    assert thick_only.sum() == pytest.approx(np.pi * 25, rel=0.05)
    # a 0.4 mm wide vessel in 1 mm voxels is faint, never a full voxel
    assert 0.0 < c[28:32, 28:32].max() < 0.6
