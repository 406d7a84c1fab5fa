"""The implicit anatomy of the demo CT: lungs, diaphragm, heart, mediastinum, ribs and spine, in millimetres."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CovidCTAnalysis.demo import make_demo_ct
from CovidCTAnalysis.demo.anatomy import LEFT, RIGHT, Anatomy


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    return Anatomy.from_rng(np.random.default_rng(0))


def test_from_rng_stays_in_adult_norms():
    for seed in range(20):
        a = Anatomy.from_rng(np.random.default_rng(seed))
        assert 0.95 < a.scale < 1.05
        assert 8.0 < a.dome_right - a.dome_left < 16.0          # the liver lifts the right dome
        assert 270.0 < a.apex_top < 290.0
        assert a.heart_centre[0] > 15.0                          # heart to the left


def test_lung_points_sides(anatomy):
    tubes = anatomy.mediastinal_tubes()
    right = np.array([[-80.0, 10.0, 150.0], [-60.0, 60.0, 80.0]])
    left = np.array([[80.0, 10.0, 150.0], [70.0, 60.0, 70.0]])
    assert anatomy.lung_points(right, RIGHT, tubes).all() and not anatomy.lung_points(right, LEFT, tubes).any()
    assert anatomy.lung_points(left, LEFT, tubes).all() and not anatomy.lung_points(left, RIGHT, tubes).any()
    # not lung: heart, spine, aorta, outside the body, above the apex, in the liver
    others = np.array([anatomy.heart_centre, [0.0, 46.0, 150.0], [30.0, 27.0, 170.0], [200.0, 0.0, 150.0],
                       [-60.0, 10.0, 295.0], [-60.0, 0.0, 40.0]])
    for side in (RIGHT, LEFT):
        assert not anatomy.lung_points(others, side, tubes).any()


def test_diaphragm_domes(anatomy):
    s = anatomy.scale
    x = np.array([-62.0 * s, 66.0 * s, -62.0 * s, -62.0 * s])
    y = np.array([-5.0, -5.0, 85.0, -85.0])
    z = anatomy.diaphragm(x, y)
    assert z[0] == pytest.approx(anatomy.dome_right) and z[1] == pytest.approx(anatomy.dome_left)
    assert z[2] < z[3] < z[0]                       # the posterior recess is the deepest


@pytest.fixture(scope="module")
def ct():
    c = make_demo_ct((128, 128, 48), seed=0, lesions=False)
    return c, sitk.GetArrayFromImage(c.image), sitk.GetArrayFromImage(c.lungs)


def _index(image, point):
    return image.TransformPhysicalPointToIndex(tuple(float(v) for v in point))[::-1]


def test_ribs_around_the_lungs(ct):
    c, img, lungs = ct
    # on a mid-chest slice, bone (> 300 HU) lies in several separate pieces all around the chest wall
    z, _, _ = _index(c.image, (0.0, 0.0, 160.0))
    bone = img[z] > 300
    body = ndimage.binary_fill_holes(img[z] > -500)
    ring = body & ~ndimage.binary_erosion(body, iterations=12)
    pieces, n = ndimage.label(bone & ring)
    assert n >= 6
    assert not (bone & (lungs[z] > 0)).any()


def test_heart_and_aorta_are_soft_tissue_not_lung(ct):
    c, img, lungs = ct
    for point in ((28.0, -34.0, 102.0), (5.0, -23.0, 165.0), (29.0, 27.0, 150.0)):   # heart, ascending, descending
        z, y, x = _index(c.image, point)
        assert 0 < np.median(img[z, y - 1:y + 2, x - 1:x + 2]) < 90
        assert lungs[z, y, x] == 0


def test_vessels_inside_the_lungs(ct):
    c, img, lungs = ct
    # lung voxels brighter than -500 HU are vessels, bronchial walls or fissures: a few percent of the lungs
    dense = (img > -500) & (lungs > 0)
    fraction = dense.sum() / (lungs > 0).sum()
    assert 0.01 < fraction < 0.15
