"""One lung in the field of view (the other cut off, or removed) is one lung on its own side, not split in two."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.lungs import classic_lungs, lung_volumes_ml
from CovidCTAnalysis.lungs.evaluate import dice
from CovidCTAnalysis.lungs.split import split_right_left

SPACING = (2.5, 2.5, 5.0)  # 5 mm slices: the phantoms below are 175 mm tall, enough to weigh slice evidence


@pytest.fixture(scope="module")
def demo():
    from CovidCTAnalysis.demo import make_demo_ct

    return make_demo_ct(size=(96, 96, 48), seed=0)


def _arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _x_ranges(demo) -> tuple[int, int]:
    """Last x of the true right lung, first x of the true left lung (they meet at the anterior junction)."""
    truth = _arr(demo.lungs)
    return int(np.nonzero(truth == 1)[2].max()), int(np.nonzero(truth == 2)[2].min())


@pytest.mark.parametrize("side", ["right", "left"])
def test_demo_cropped_to_one_lung_gives_that_lung_only(demo, side):
    """The field of view cuts the other half of the chest off: the body's mean x then runs through the lung in view,
    which used to be split at it into a 'right' and a 'left' lung of about half its volume each."""
    right_end, left_start = _x_ranges(demo)
    xs = slice(0, left_start - 2) if side == "right" else slice(right_end + 3, demo.image.GetSize()[0])
    image = demo.image[xs, :, :]
    truth = _arr(demo.lungs)[:, :, xs]
    label = 1 if side == "right" else 2
    assert set(np.unique(truth)) == {0, label}, "the crop holds one lung only"
    events = []
    found = classic_lungs(image, progress=lambda f, m: events.append(m))
    labels = _arr(found.labels)
    assert set(np.unique(labels)) == {0, label}
    assert dice(labels == label, truth == label) >= 0.95
    volumes = lung_volumes_ml(found.labels)
    truth_ml = float((truth == label).sum()) * float(np.prod(image.GetSpacing())) / 1000.0
    # the whole lung, not about half (the mask runs a few % over where the view cuts the mediastinum, as before)
    assert volumes[f"{side}_ml"] == pytest.approx(truth_ml, rel=0.1)
    assert volumes["left_ml" if side == "right" else "right_ml"] == 0.0
    assert f"one lung in view: the {side} lung" in events


def test_one_slice_of_one_lung(demo):
    """A single axial slice cropped to the right lung (too few slices to weigh: the body cut at the left decides)."""
    _, left_start = _x_ranges(demo)
    labels = _arr(classic_lungs(demo.image[: left_start - 2, :, 28:29]).labels)
    truth = _arr(demo.lungs)[28:29, :, : left_start - 2]
    assert set(np.unique(labels)) == {0, 1}
    assert dice(labels == 1, truth == 1) >= 0.95


def test_two_lungs_in_view_still_split(demo):
    labels = _arr(classic_lungs(demo.image).labels)
    truth = _arr(demo.lungs)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert dice(labels == 1, truth == 1) >= 0.96 and dice(labels == 2, truth == 2) >= 0.96
    assert np.nonzero(labels == 1)[2].mean() < np.nonzero(labels == 2)[2].mean()


def test_a_strip_of_the_other_lung_in_view(demo):
    """The view cuts into the left lung: both lungs, parted between them, not at the cut body's mean x."""
    _, left_start = _x_ranges(demo)
    xs = slice(0, left_start + 11)
    labels = _arr(classic_lungs(demo.image[xs, :, :]).labels)
    truth = _arr(demo.lungs)[:, :, xs]
    assert dice(labels == 1, truth == 1) >= 0.96 and dice(labels == 2, truth == 2) >= 0.85


# ------------------------------------------------------------------------------------------------ split phantoms
def _ellipsoid(centre_x: float, half_width: float):
    z, y, x = np.mgrid[0:40, 0:80, 0:80]
    return ((x - centre_x) / half_width) ** 2 + ((y - 40) / 28.0) ** 2 + ((z - 20) / 18.0) ** 2 < 1.0


def test_one_tall_lung_across_the_midline_is_one_lung():
    """A single lung with 40 % of it across the midline: a cut body (either side) or a pneumonectomy."""
    lung = _ellipsoid(35.0, 20.0)
    values = np.where(lung, -850.0, 40.0).astype(np.float32)
    for cut, expected in (((False, True), 1), ((False, False), 1), ((True, False), 2)):
        labels = split_right_left(lung, values, SPACING, midline_x=38.0, body_cut=cut)
        assert set(np.unique(labels[lung])) == {expected}, cut
    mirrored = split_right_left(lung[:, :, ::-1], values[:, :, ::-1], SPACING, midline_x=41.0)
    assert set(np.unique(mirrored[lung[:, :, ::-1]])) == {2}


def test_tall_touching_lungs_still_part_along_the_junction():
    """Two lungs joined over 2/3 of their height by a broad front: apart in the other slices, so still two lungs,
    also where a body cut at one side puts its mean x 10 voxels off (the split then falls between the lungs)."""
    right, left = _ellipsoid(22.0, 20.0), _ellipsoid(60.0, 20.0)
    z, y, x = np.mgrid[0:40, 0:80, 0:80]
    front = (np.abs(x - 41) <= 2) & (np.abs(y - 40) < 20) & (np.abs(z - 20) < 12)
    mask = right | left | front
    values = np.where(mask, -850.0, 40.0).astype(np.float32)
    values[front & (x == 41)] = -700.0
    for midline_x, cut in ((40.0, (False, False)), (30.0, (False, True))):
        labels = split_right_left(mask, values, SPACING, midline_x=midline_x, body_cut=cut)
        assert (labels[mask & (x <= 40)] == 1).mean() > 0.99, cut
        assert (labels[mask & (x >= 42)] == 2).mean() > 0.99, cut
