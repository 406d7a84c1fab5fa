"""Space-filling vessel trees and their companion bronchi."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.demo.trees import companion, grow


@pytest.fixture(scope="module")
def tree():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-100, -60, 40], [-20, 60, 250], size=(400, 3))
    return grow(np.array([-10.0, 0.0, 160.0]), pts, np.random.default_rng(1), leaf_radius=0.5), pts


def test_every_point_gets_a_terminal_branch(tree):
    t, pts = tree
    ends = {tuple(np.round(b, 9)) for b in t.tubes.b}
    assert all(tuple(np.round(p, 9)) in ends for p in pts)
    assert np.allclose(t.tubes.a[0], [-10.0, 0.0, 160.0]) and t.parent[0] == -1


def test_branches_connect_and_taper(tree):
    t, _ = tree
    child = np.nonzero(t.parent >= 0)[0]
    assert np.allclose(t.tubes.a[child], t.tubes.b[t.parent[child]])   # each branch starts where its parent ends
    assert (t.tubes.ra[child] <= t.tubes.ra[t.parent[child]] + 1e-12).all()
    # Murray's law: r^3 proportional to the points supplied: root radius = leaf radius * n^(1/3)
    assert t.tubes.ra[0] == pytest.approx(0.5 * 400 ** (1 / 3))
    assert np.allclose(np.linalg.norm(t.direction, axis=1), 1.0)


def test_companion_bronchi_run_beside_arteries(tree):
    t, _ = tree
    bronchi = companion(t, np.array([0.0, 0.6, 0.8]), min_radius=1.5)
    keep = np.nonzero(t.tubes.ra >= 1.5)[0]
    assert len(bronchi) == len(keep) > 3
    assert np.allclose(bronchi.ra, 0.75 * t.tubes.ra[keep])
    # the bronchus axis keeps clear of its artery: distance between start points >= both radii
    gap = np.linalg.norm(bronchi.a - t.tubes.a[keep], axis=1)
    assert (gap >= bronchi.ra).all()
    # continuous: a kept child's bronchus starts where its kept parent's bronchus ends
    index = {int(i): j for j, i in enumerate(keep)}
    for j, i in enumerate(keep):
        p = int(t.parent[i])
        if p in index:
            assert np.allclose(bronchi.a[j], bronchi.b[index[p]])
