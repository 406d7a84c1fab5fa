"""Domes (issue 18): the liver's dome inside the basal lung ring is not lung; a round lesion enclosed by lung is."""

from __future__ import annotations

import numpy as np

from CovidCTAnalysis.lungs.domes import dome_islands

SPACING = (2.0, 2.0, 2.0)


def _base_of_a_lung():
    """One lung (label 1) from slice 5 up, over a liver below it whose dome rises into the lung (slices 5-12), with
    a round lesion (radius 5 voxels) and a vessel seen end-on (radius 1) enclosed by lung higher up."""
    z, y, x = np.mgrid[0:30, 0:64, 0:64]
    lung = (np.hypot(y - 32, x - 32) < 28) & (z >= 5)
    height = np.clip((z - 4) / 9.0, 0.0, None)
    dome = (np.hypot(y - 32, x - 32) < 12 * np.sqrt(np.clip(1.0 - height, 0.0, None))) & (z >= 5)
    lesion = np.sqrt((z - 20.0) ** 2 + (y - 32.0) ** 2 + (x - 18.0) ** 2) <= 5
    vessel = (np.hypot(y - 32, x - 46) <= 1) & (z >= 5)
    labels = (lung & ~dome & ~lesion & ~vessel).astype(np.uint8)
    return labels, labels == 0, dome, lesion, vessel


def test_dome_is_found_and_lesion_and_vessel_are_not():
    labels, tissue, dome, lesion, vessel = _base_of_a_lung()
    found = dome_islands(labels, tissue, SPACING)
    big_enough = dome & (dome.sum(axis=(1, 2)) * 0.04 >= 2.0)[:, None, None]  # islands of at least 2 cm2
    assert found[big_enough].all()
    assert not found[lesion].any() and not found[vessel].any()
    assert not found[~dome].any()


def test_a_single_slice_has_no_dome():
    labels, tissue, *_ = _base_of_a_lung()
    assert not dome_islands(labels[8:9], tissue[8:9], SPACING).any()


def _slice_with_islands(rng):
    """One true-HU slice: lung (-850 HU) enclosing a homogeneous water-density oval (55 HU, 6 cm2), a consolidation
    of the same size with a fifth of it partly aerated (-300 HU), and a small nodule (0.4 cm2)."""
    y, x = np.mgrid[0:80, 0:80]
    values = np.full((80, 80), -850.0) + rng.normal(0, 20, (80, 80))
    oval = ((y - 22) / 8.0) ** 2 + ((x - 25) / 6.0) ** 2 < 1.0
    consolidation = ((y - 55) / 8.0) ** 2 + ((x - 25) / 6.0) ** 2 < 1.0
    nodule = np.hypot(y - 40, x - 60) < 1.8
    values[oval] = 55.0 + rng.normal(0, 10, oval.sum())
    values[consolidation] = 35.0 + rng.normal(0, 10, consolidation.sum())
    values[consolidation & (rng.random((80, 80)) < 0.2)] = -300.0  # partly aerated: not homogeneous
    values[nodule] = 40.0
    labels = (values < -500).astype(np.uint8)[None]
    return labels, values[None], oval, consolidation, nodule


def test_single_slice_dome_by_size_and_density():
    from CovidCTAnalysis.lungs.domes import slice_domes

    labels, values, oval, consolidation, nodule = _slice_with_islands(np.random.default_rng(0))
    found = slice_domes(labels, values, values >= -500, (2.0, 2.0, 5.0))[0]
    assert found[oval].all()
    assert not found[consolidation].any() and not found[nodule].any()
