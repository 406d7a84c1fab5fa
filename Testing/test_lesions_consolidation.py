"""lesions/consolidation.py: a consolidation label takes the dense lung connected to it, nothing else."""

from __future__ import annotations

import numpy as np

from CovidCTAnalysis.labels import CONSOLIDATION, GGO
from CovidCTAnalysis.lesions.consolidation import extend_consolidation


def scene(seed: int = 0):
    """1 mm pixels of normal lung; two dense blobs (r 12 mm, 0 HU); a 3 mm vessel (40 HU) leaving the first."""
    rng = np.random.default_rng(seed)
    hu = (-850.0 + 20.0 * rng.standard_normal((1, 160, 160))).astype(np.float32)
    yy, xx = np.mgrid[:160, :160]
    first = np.hypot(yy - 50, xx - 50) < 12
    second = np.hypot(yy - 120, xx - 120) < 12
    vessel = (np.abs(yy - 50) <= 1) & (xx > 50) & (xx < 100)
    hu[0][vessel] = 40.0
    hu[0][first | second] = 0.0 + 20.0 * rng.standard_normal(int((first | second).sum()))
    return hu, first, second, vessel


def test_consolidation_fills_its_dense_region_but_not_a_vessel_or_an_unlabelled_region():
    hu, first, second, vessel = scene()
    labels = np.zeros(hu.shape, np.uint8)
    labels[0, 48:52, 40:44] = CONSOLIDATION                 # the network labelled a corner of the first blob
    labels[0, 55:60, 45:55] = GGO                           # and called part of it ground glass
    out = extend_consolidation(labels.copy(), hu, np.ones(hu.shape, bool), (1.0, 1.0))
    assert (out[0][first] == CONSOLIDATION).mean() > 0.95
    assert not (out[0][vessel & (np.mgrid[:160, :160][1] > 66)] == CONSOLIDATION).any()
    assert not out[0][second].any()                         # no label, no start
    assert not ((out == CONSOLIDATION) & (labels == 0) & ~first[None] & ~vessel[None]).any()


def test_consolidation_stays_in_the_lung_region_and_needs_a_label_to_start():
    hu, first, _, _ = scene(1)
    labels = np.zeros(hu.shape, np.uint8)
    assert not extend_consolidation(labels.copy(), hu, np.ones(hu.shape, bool), (1.0, 1.0)).any()
    labels[0, 48:52, 40:44] = CONSOLIDATION
    lung = np.ones(hu.shape, bool)
    lung[0, 52:, :] = False
    out = extend_consolidation(labels.copy(), hu, lung, (1.0, 1.0))
    assert not (out[0, 52:] == CONSOLIDATION).any()
    assert (out[0, :52][first[:52]] == CONSOLIDATION).mean() > 0.95
