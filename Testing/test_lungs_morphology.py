"""Mask helpers: per-slice holes, openings that do not eat the array's edges, padded closings."""

from __future__ import annotations

import numpy as np

from CovidCTAnalysis.lungs.morphology import (closing, edge_connected_in_plane, fill_holes_3d, fill_holes_in_plane,
                                              keep_large_components, opening, FACES)


def _ring(n=3):
    m = np.zeros((n, 20, 20), bool)
    m[:, 4:16, 4:16] = True
    m[:, 8:12, 8:12] = False  # a 16-voxel hole in every slice
    return m


def test_holes_are_filled_slice_by_slice():
    m = _ring()
    assert fill_holes_in_plane(m)[:, 8:12, 8:12].all()
    assert not fill_holes_in_plane(m, max_area_voxels=15)[:, 8:12, 8:12].any()
    assert fill_holes_in_plane(m, max_area_voxels=16)[:, 8:12, 8:12].all()


def test_3d_holes_need_a_closed_shell():
    m = _ring(5)
    assert not fill_holes_3d(m)[2, 8:12, 8:12].any()  # a tube open at both ends is not a 3-D hole
    m[0, 8:12, 8:12] = m[4, 8:12, 8:12] = True
    assert fill_holes_3d(m)[2, 8:12, 8:12].all()
    one = _ring(1)
    assert fill_holes_3d(one)[0, 8:12, 8:12].all()  # one slice: holes in the plane


def test_edge_connected_air():
    air = ~_ring(1)
    out = edge_connected_in_plane(air)
    assert out[0, 0, 0] and not out[0, 10, 10]


def test_opening_keeps_masks_that_touch_the_edge():
    m = np.zeros((2, 10, 10), bool)
    m[:, :, :5] = True  # two slices thick, touching three edges
    assert opening(m, FACES).sum() == m.sum()
    m[0, 0, 9] = True  # an isolated voxel goes
    assert not opening(m, FACES)[0, 0, 9]


def test_closing_bridges_a_gap_but_not_the_edges():
    m = np.zeros((1, 30, 30), bool)
    m[0, 5:25, 0:12] = True
    m[0, 5:25, 14:30] = True
    c = closing(m, (1.0, 1.0, 1.0), 3.0)
    assert c[0, 10, 12:14].all()
    assert not c[0, 0:4].any()


def test_keep_large_components():
    m = np.zeros((1, 20, 20), bool)
    m[0, 0:10, 0:10] = True
    m[0, 15:17, 15:17] = True
    assert keep_large_components(m, 0.1).sum() == 100
    assert keep_large_components(m, 0.01).sum() == 104
