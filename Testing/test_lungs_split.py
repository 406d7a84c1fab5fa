"""Right/left separation: touching lungs part along their junction, label 1 is the patient's right (low x)."""

from __future__ import annotations

import numpy as np

from CovidCTAnalysis.lungs.split import split_right_left

SPACING = (2.5, 2.5, 2.5)


def _two_lungs(touch: bool, junction_hu: float = -700.0):
    """Two ellipsoid lungs (-850 HU) in tissue; with `touch` they meet over a broad front at x = 40 (midline)."""
    z, y, x = np.mgrid[0:40, 0:80, 0:80]
    right = ((x - 22) / 20.0) ** 2 + ((y - 40) / 28.0) ** 2 + ((z - 20) / 18.0) ** 2 < 1.0
    left = ((x - 60) / (20.0 if touch else 15.0)) ** 2 + ((y - 40) / 28.0) ** 2 + ((z - 20) / 18.0) ** 2 < 1.0
    values = np.full(x.shape, 40.0, np.float32)
    values[right | left] = -850.0
    mask = right | left
    if touch:
        # the junction: lung on both sides, two pleural layers thin (partial volume: a little brighter than lung)
        front = (np.abs(x - 41) <= 2) & (np.abs(y - 40) < 20) & (np.abs(z - 20) < 12)
        mask |= front
        values[front] = -850.0
        values[front & (x == 41)] = junction_hu
    return mask, values, right, left


def test_separate_lungs_get_their_side():
    mask, values, right, left = _two_lungs(touch=False)
    labels = split_right_left(mask, values, SPACING, midline_x=40.0)
    assert (labels[right] == 1).all() and (labels[left] == 2).all()
    assert (labels[~mask] == 0).all()


def test_touching_lungs_part_along_the_junction_line():
    mask, values, right, left = _two_lungs(touch=True)
    from scipy import ndimage as ndi

    assert ndi.label(mask)[1] == 1, "the phantom's lungs form one component"
    labels = split_right_left(mask, values, SPACING, midline_x=40.0)
    x = np.arange(mask.shape[2])[None, None, :]
    assert (labels[mask & (x <= 40)] == 1).mean() > 0.99
    assert (labels[mask & (x >= 42)] == 2).mean() > 0.99


def test_invisible_junction_splits_near_the_midline():
    """Partial volume may hide the junction line entirely: the split then falls at the midline."""
    mask, values, right, left = _two_lungs(touch=True, junction_hu=-850.0)
    labels = split_right_left(mask, values, SPACING, midline_x=40.0)
    x = np.broadcast_to(np.arange(mask.shape[2])[None, None, :], mask.shape)
    boundary = x[(labels == 1) & mask].max()
    assert 38 <= boundary <= 43


def test_a_single_lung_takes_the_side_it_lies_on():
    mask, values, right, left = _two_lungs(touch=False)
    only_left = split_right_left(left, values, SPACING, midline_x=40.0)
    assert set(np.unique(only_left[left])) == {2}
    only_right = split_right_left(right, values, SPACING, midline_x=40.0)
    assert set(np.unique(only_right[right])) == {1}


def test_one_slice():
    mask, values, right, left = _two_lungs(touch=True)
    labels = split_right_left(mask[20:21], values[20:21], SPACING, midline_x=40.0)
    x = np.arange(mask.shape[2])[None, None, :]
    assert (labels[mask[20:21] & (x <= 40)] == 1).all() and (labels[mask[20:21] & (x >= 42)] == 2).all()


def test_small_blob_across_the_midline_is_labelled_not_lost():
    """A pocket astride the midline too narrow to reach the watershed's seeds (no voxel MARKER_OFFSET_MM from the
    midline) was left unlabelled, and lungs-classic then failed on its report line (seen on a mediastinal-window
    COVID-CT figure): it is one lung, on the side most of it lies on."""
    mask = np.zeros((1, 40, 80), bool)
    mask[0, 18:23, 36:46] = True  # 25 mm wide, centred just left of x = 40
    values = np.where(mask, -850.0, 40.0).astype(np.float32)
    labels = split_right_left(mask, values, SPACING, midline_x=40.0)
    assert (labels[mask] == 2).all() and (labels[~mask] == 0).all()


def test_lungs_classic_refuses_pockets_left_without_a_side(monkeypatch):
    """Should the separation ever leave every pocket unlabelled, lungs-classic says no lung was found (exit status 2
    in the commands) instead of failing on its report line (it raised IndexError)."""
    import pytest

    from CovidCTAnalysis.demo import make_demo_ct
    from CovidCTAnalysis.errors import LungsNotFoundError
    from CovidCTAnalysis.lungs import classic

    monkeypatch.setattr(classic.split, "split_right_left", lambda lungs, *a, **k: np.zeros(lungs.shape, np.uint8))
    with pytest.raises(LungsNotFoundError, match="given a side"):
        classic.classic_lungs(make_demo_ct(size=(64, 64, 16), seed=0).image)
