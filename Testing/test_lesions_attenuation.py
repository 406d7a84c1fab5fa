"""The ground-glass attenuation rule: ground glass must be denser than normal lung, and extends a little into raised
lung next to it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from CovidCTAnalysis.labels import CONSOLIDATION, GGO
from CovidCTAnalysis.lesions.attenuation import (GROW_MM, GROW_RAISE_HU, NORMAL_LUNG_MAX_HU, RAISE_HU,
                                                 normal_lung_level, refine_ground_glass)


def lung_slice(seed: int = 0, disc_mm: float = 15.0):
    """One 1 mm slice of normal lung (-850 HU, noise 20) with a ground-glass disc (-600 HU, radius ``disc_mm``) and a
    vessel."""
    rng = np.random.default_rng(seed)
    hu = (-850.0 + 20.0 * rng.standard_normal((1, 160, 160))).astype(np.float32)
    yy, xx = np.mgrid[:160, :160]
    disc = (yy - 60) ** 2 + (xx - 60) ** 2 < disc_mm ** 2
    hu[0][disc] += 250.0
    vessel = (np.abs(xx - 120) <= 1) & (yy > 20) & (yy < 140)      # a 3 mm vessel: dense but thin
    hu[0][vessel] = 40.0
    return hu, disc, vessel


def everywhere(hu):
    return np.ones(hu.shape, bool)


def radius(shape=(160, 160), centre=(60, 60)):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1])


def test_ggo_on_raised_lung_stays_and_ggo_on_normal_lung_goes():
    hu, disc, vessel = lung_slice()
    labels = np.zeros(hu.shape, np.uint8)
    ring = ((np.mgrid[:160, :160][0] - 60) ** 2 + (np.mgrid[:160, :160][1] - 60) ** 2) < 25 ** 2
    labels[0][ring] = GGO                                   # the disc and a 10 mm ring of normal lung around it
    labels[0][vessel] = GGO                                 # a vessel in normal lung called ground glass
    labels[0, 130:140, 20:30] = CONSOLIDATION               # consolidation is never touched
    level = normal_lung_level(hu, labels * 0)
    assert abs(level - (-850.0)) < 10
    out = refine_ground_glass(labels.copy(), hu, everywhere(hu), (1.0, 1.0), level)
    inner = np.zeros_like(disc)
    inner[45:76, 45:76] = True
    inner &= disc
    assert (out[0][inner] == GGO).mean() > 0.95           # the dense disc stays
    outer = ring & ~disc
    far = outer & (np.hypot(*(np.mgrid[:160, :160] - 60)) > 19)
    assert (out[0][far] == GGO).mean() < 0.05              # normal lung around it goes
    assert (out[0][vessel] == GGO).mean() < 0.05           # a thin vessel is no haze
    assert (out[0, 130:140, 20:30] == CONSOLIDATION).all()
    assert not ((out > 0) & (labels == 0)).any()           # nothing raised next to it: nothing added


def test_level_is_the_unlabelled_aerated_lung_and_never_above_the_cap():
    hu, disc, _ = lung_slice(1)
    labels = np.zeros(hu.shape, np.uint8)
    assert normal_lung_level(hu, labels) == pytest.approx(-850.0, abs=5)
    everything = np.full(hu.shape, GGO, np.uint8)          # the network called the whole slice ground glass
    assert normal_lung_level(hu, everything) == NORMAL_LUNG_MAX_HU
    dense = np.full(hu.shape, -700.0, np.float32)          # "normal" lung reading -700: capped
    assert normal_lung_level(dense, labels) == NORMAL_LUNG_MAX_HU


def test_whole_lung_called_ground_glass_is_emptied_on_normal_lung():
    hu, disc, _ = lung_slice(2)
    hu[0][disc] = -850.0                                   # no lesion at all
    labels = np.full(hu.shape, GGO, np.uint8)
    out = refine_ground_glass(labels, hu, everywhere(hu), (0.7, 0.7), normal_lung_level(hu, labels))
    assert (out == GGO).mean() < 0.01


def test_faint_but_real_ground_glass_above_the_raise_stays():
    hu, disc, _ = lung_slice(3)
    hu[0][disc] = -850.0 + 1.6 * RAISE_HU                  # a faint haze, above the minimum rise
    labels = np.zeros(hu.shape, np.uint8)
    labels[0][disc] = GGO
    out = refine_ground_glass(labels.copy(), hu, everywhere(hu), (1.0, 1.0), -850.0)
    assert (out[0][disc] == GGO).mean() > 0.8


def test_ground_glass_extends_into_the_raised_lung_next_to_it_by_at_most_grow_mm():
    hu, disc, vessel = lung_slice(4, disc_mm=9 + GROW_MM + 5)  # disc 250 HU above normal lung, 5 mm beyond the reach
    r = radius()
    labels = np.zeros(hu.shape, np.uint8)
    labels[0][r < 9] = GGO                                  # the network stopped GROW_MM + 5 mm short of the margin
    labels[0][vessel & (np.mgrid[:160, :160][0] < 60)] = GGO   # and called part of a thin vessel ground glass
    assert 250.0 > GROW_RAISE_HU > RAISE_HU and 1.0 <= GROW_MM <= 20.0
    out = refine_ground_glass(labels.copy(), hu, everywhere(hu), (1.0, 1.0), -850.0)
    steps = ndimage.distance_transform_cdt(~(r < 9), metric="taxicab")   # 4-connected steps from the label
    assert (out[0][steps <= GROW_MM - 1] == GGO).all()      # grown by GROW_MM one-pixel steps ...
    assert not (out[0][r > 9 + GROW_MM + 0.5] == GGO).any()  # ... and no further, though the disc goes on
    assert not (out[0][vessel] == GGO).any()                 # the vessel label went and did not grow
    half = everywhere(hu)
    half[0, :, :60] = False                                  # growth stays inside the lung region it is given
    out = refine_ground_glass(labels.copy(), hu, half, (1.0, 1.0), -850.0)
    assert not ((out[0] == GGO) & (labels[0] == 0) & ~half[0]).any()
    assert ((out[0] == GGO) & (labels[0] == 0) & half[0]).any()


def test_ground_glass_does_not_extend_into_normal_lung():
    hu, disc, _ = lung_slice(5)
    hu[0][disc] = -850.0 + (RAISE_HU + GROW_RAISE_HU) / 2  # faint haze: stays, but is below the growth threshold
    labels = np.zeros(hu.shape, np.uint8)
    labels[0][radius() < 10] = GGO
    out = refine_ground_glass(labels.copy(), hu, everywhere(hu), (1.0, 1.0), -850.0)
    assert not ((out == GGO) & (labels == 0)).any()
