"""The ground-glass attenuation check: ground glass must be denser than normal lung; it only ever removes labels."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.labels import CONSOLIDATION, GGO
from CovidCTAnalysis.lesions.attenuation import (NORMAL_LUNG_MAX_HU, RAISE_HU, drop_unraised_ggo,
                                                 normal_lung_level)


def lung_slice(seed: int = 0):
    """One 1 mm slice of normal lung (-850 HU, noise 20) with a ground-glass disc (-600 HU, r 15 mm) and a vessel."""
    rng = np.random.default_rng(seed)
    hu = (-850.0 + 20.0 * rng.standard_normal((1, 160, 160))).astype(np.float32)
    yy, xx = np.mgrid[:160, :160]
    disc = (yy - 60) ** 2 + (xx - 60) ** 2 < 15 ** 2
    hu[0][disc] += 250.0
    vessel = (np.abs(xx - 120) <= 1) & (yy > 20) & (yy < 140)      # a 3 mm vessel: dense but thin
    hu[0][vessel] = 40.0
    return hu, disc, vessel


def test_ggo_on_raised_lung_stays_and_ggo_on_normal_lung_goes():
    hu, disc, vessel = lung_slice()
    labels = np.zeros(hu.shape, np.uint8)
    ring = ((np.mgrid[:160, :160][0] - 60) ** 2 + (np.mgrid[:160, :160][1] - 60) ** 2) < 25 ** 2
    labels[0][ring] = GGO                                   # the disc and a 10 mm ring of normal lung around it
    labels[0][vessel] = GGO                                 # a vessel in normal lung called ground glass
    labels[0, 130:140, 20:30] = CONSOLIDATION               # consolidation is never touched
    level = normal_lung_level(hu, labels * 0)
    assert abs(level - (-850.0)) < 10
    out = drop_unraised_ggo(labels.copy(), hu, (1.0, 1.0), level)
    inner = np.zeros_like(disc)
    inner[45:76, 45:76] = True
    inner &= disc
    assert (out[0][inner] == GGO).mean() > 0.95           # the dense disc stays
    outer = ring & ~disc
    far = outer & (np.hypot(*(np.mgrid[:160, :160] - 60)) > 19)
    assert (out[0][far] == GGO).mean() < 0.05              # normal lung around it goes
    assert (out[0][vessel] == GGO).mean() < 0.05           # a thin vessel is no haze
    assert (out[0, 130:140, 20:30] == CONSOLIDATION).all()
    assert not ((out > 0) & (labels == 0)).any()           # only removes


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
    out = drop_unraised_ggo(labels, hu, (0.7, 0.7), normal_lung_level(hu, labels))
    assert (out == GGO).mean() < 0.01


def test_faint_but_real_ground_glass_above_the_raise_stays():
    hu, disc, _ = lung_slice(3)
    hu[0][disc] = -850.0 + 1.6 * RAISE_HU                  # a faint haze, above the minimum rise
    labels = np.zeros(hu.shape, np.uint8)
    labels[0][disc] = GGO
    out = drop_unraised_ggo(labels.copy(), hu, (1.0, 1.0), -850.0)
    assert (out[0][disc] == GGO).mean() > 0.8
