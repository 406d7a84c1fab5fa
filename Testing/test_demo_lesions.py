"""Lesion shapes and their placement (ground-glass opacities and consolidations of the demo CT)."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis import labels
from CovidCTAnalysis.demo import make_demo_ct
from CovidCTAnalysis.demo.lesions import ROLES, THRESHOLD, _random_shape


@pytest.fixture
def shape():
    return _random_shape(np.random.default_rng(5), labels.GGO, 1, np.array([-80.0, 40.0, 120.0]), 15.0)


def test_grid_and_point_fields_agree(shape):
    x = np.linspace(-110, -50, 13)
    y = np.linspace(10, 70, 11)
    z = np.linspace(90, 150, 9)
    grid = shape.field(x, y, z)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    pts = shape.field_points(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1)).reshape(grid.shape)
    assert np.allclose(grid, pts, atol=1e-5)
    assert (grid > THRESHOLD).any() and (grid < THRESHOLD).any()


def test_scaling_is_a_similarity(shape):
    big = shape.scaled(1.3)
    rng = np.random.default_rng(0)
    pts = shape.centre + rng.normal(scale=15.0, size=(500, 3))
    moved = shape.centre + (pts - shape.centre) * 1.3
    assert np.allclose(shape.field_points(pts), big.field_points(moved), atol=1e-9)


def test_box_contains_the_lesion(shape):
    lo, hi = shape.box()
    rng = np.random.default_rng(1)
    outside = rng.uniform(lo - 30, hi + 30, size=(20000, 3))
    outside = outside[((outside < lo) | (outside > hi)).any(1)]
    assert (shape.field_points(outside) < THRESHOLD).all()


def test_lesions_are_physical_not_grid_bound():
    """Lesions are placed in millimetres: two grids of one seed show the same lesions."""
    a, b = make_demo_ct((64, 64, 32), seed=4), make_demo_ct((96, 96, 48), seed=4)
    assert len(a.lesion_list) == len(b.lesion_list) == len(ROLES)
    for la, lb in zip(a.lesion_list, b.lesion_list):
        assert (la.label, la.side) == (lb.label, lb.side)
        assert np.linalg.norm(np.subtract(la.centre_mm, lb.centre_mm)) < 8.0
        assert la.volume_ml == pytest.approx(lb.volume_ml, rel=0.35)


def test_roles_cover_both_labels_and_sides():
    assert {(r[0], r[2]) for r in ROLES} >= {(labels.GGO, True), (labels.CONSOLIDATION, True)}
    assert {r[1] for r in ROLES} == {labels.RIGHT_LUNG, labels.LEFT_LUNG}
    assert all(2.0 <= lo < hi <= 40.0 for *_, (lo, hi) in ROLES)
