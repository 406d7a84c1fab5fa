"""Trachea and main bronchi: found at the top, grown without leaking into the lung, the wide part kept."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from CovidCTAnalysis.lungs.airspace import Levels
from CovidCTAnalysis.lungs.airways import find_trachea_seed, grow_airways, large_airways

SPACING = (2.5, 2.5, 2.5)
LEVELS = Levels(-1000.0, 0.0)


def _chest():
    v, inner, lungs, trachea, bronchi = _cached_chest()
    return v.copy(), inner.copy(), lungs, trachea, bronchi


@lru_cache(maxsize=1)
def _cached_chest():
    """Two lungs (-850 HU, textured), a trachea (radius 8 mm) from the top to a carina, two main bronchi."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[0:80, 0:96, 0:96]
    v = np.full(x.shape, 40.0)
    lungs = np.zeros(x.shape, bool)
    for cx in (26, 70):
        lungs |= ((x - cx) / 18.0) ** 2 + ((y - 48) / 24.0) ** 2 + ((z - 30) / 26.0) ** 2 < 1.0
    v[lungs] = -850.0 + rng.normal(0.0, 40.0, lungs.sum())
    trachea = (np.hypot(x - 48, y - 44) < 3.2) & (z >= 40)
    bronchi = np.zeros(x.shape, bool)
    for sign in (-1, 1):  # from the carina (48, 44, 40) down and out to (48 + 20 sign, 44, 28)
        cz = 40 - 12 * (sign * (x - 48)) / 20.0  # the axis' height at each x along the bronchus
        along = (sign * (x - 48) >= 0) & (sign * (x - 48) <= 20)
        bronchi |= along & (np.hypot(y - 44, z - cz) < 2.2)
    airway = trachea | bronchi
    v[airway] = -1000.0 + rng.normal(0.0, 10.0, airway.sum())
    body = np.ones(x.shape, bool)
    inner = (v < LEVELS.threshold) & body
    return v.astype(np.float32), inner, lungs, trachea, bronchi


def test_seed_is_in_the_trachea():
    v, inner, lungs, trachea, bronchi = _chest()
    seed = find_trachea_seed(v, inner, SPACING, LEVELS, body_centre_x=48.0, z_limit=30)
    assert seed is not None and trachea[seed]


def test_tree_grows_down_the_bronchi_without_leaking():
    v, inner, lungs, trachea, bronchi = _chest()
    seed = find_trachea_seed(v, inner, SPACING, LEVELS, body_centre_x=48.0, z_limit=30)
    tree = grow_airways(v, inner, SPACING, LEVELS, seed)
    assert tree[trachea].mean() > 0.95
    assert tree[bronchi & ~lungs].mean() > 0.8
    # parenchyma (-850 +- 40 HU) is not pure air: at most a fringe of its darkest voxels along the bronchi
    assert (tree & lungs & ~bronchi).sum() < 0.05 * tree.sum()
    assert tree.sum() * np.prod(SPACING) / 1000.0 < 100.0


def test_large_airways_keep_the_trachea():
    v, inner, lungs, trachea, bronchi = _chest()
    seed = find_trachea_seed(v, inner, SPACING, LEVELS, body_centre_x=48.0, z_limit=30)
    wide = large_airways(grow_airways(v, inner, SPACING, LEVELS, seed), SPACING)
    assert wide[trachea].mean() > 0.9
    assert (wide & lungs & ~bronchi).sum() < 0.02 * wide.sum()


def test_no_trachea_no_seed():
    v, inner, lungs, trachea, bronchi = _chest()
    v[trachea | bronchi] = 40.0
    inner = v < LEVELS.threshold
    assert find_trachea_seed(v, inner, SPACING, LEVELS, body_centre_x=48.0, z_limit=30) is None
