"""Filling each lung: vessels and enclosed lesions become lung, the mediastinum and large airways do not."""

from __future__ import annotations

import numpy as np

from CovidCTAnalysis.lungs.fill import fill_lungs

SPACING = (2.5, 2.5, 2.5)


def _lungs():
    z, y, x = np.mgrid[0:30, 0:60, 0:80]
    right = ((x - 20) / 14.0) ** 2 + ((y - 30) / 22.0) ** 2 + ((z - 15) / 13.0) ** 2 < 1.0
    left = ((x - 60) / 14.0) ** 2 + ((y - 30) / 22.0) ** 2 + ((z - 15) / 13.0) ** 2 < 1.0
    values = np.full(x.shape, 40.0, np.float32)
    labels = np.zeros(x.shape, np.uint8)
    labels[right], labels[left] = 1, 2
    values[right | left] = -850.0
    return z, y, x, labels, values, right, left


def test_vessels_and_an_enclosed_lesion_are_filled():
    z, y, x, labels, values, right, left = _lungs()
    vessel = right & (np.hypot(y - 30, z - 15) < 1.6) & (x > 12)  # runs to the medial surface (not a 3-D hole)
    lesion = left & (((x - 60) / 4.0) ** 2 + ((y - 30) / 4.0) ** 2 + ((z - 15) / 4.0) ** 2 < 1.0)
    values[vessel | lesion] = 40.0
    labels[vessel | lesion] = 0
    out = fill_lungs(labels, values, SPACING, bone_level=200.0, forbidden=np.zeros(labels.shape, bool))
    assert (out[vessel] == 1).mean() > 0.95
    assert (out[lesion] == 2).all()


def test_the_space_between_the_lungs_stays_empty():
    z, y, x, labels, values, right, left = _lungs()
    out = fill_lungs(labels, values, SPACING, bone_level=200.0, forbidden=np.zeros(labels.shape, bool))
    between = (x > 36) & (x < 44)
    assert not out[between].any()
    assert (out[right] == 1).all() and (out[left] == 2).all()


def test_forbidden_voxels_and_bone_are_never_added():
    z, y, x, labels, values, right, left = _lungs()
    notch = right & (np.hypot(x - 33, y - 30) < 4)  # a notch in the medial surface, as a bronchus makes
    bone = right & (np.hypot(x - 20, y - 8) < 3)
    labels[notch | bone] = 0
    values[notch] = -1000.0
    values[bone] = 700.0
    out = fill_lungs(labels, values, SPACING, bone_level=200.0, forbidden=notch)
    assert not out[notch].any() and not out[bone].any()
