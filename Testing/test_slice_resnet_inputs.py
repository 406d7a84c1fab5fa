"""slice-resnet preprocessing: the lung window, figure trimming, lung ROI, square padding, and the way back."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.slice_resnet import inputs
from CovidCTAnalysis.classifiers.slice_resnet.infer import lung_region, lung_slices, map_to_slice


def test_lung_window_inverts_the_io_mapping_of_8_bit_figures():
    v = np.arange(256)
    hu = -1350.0 + v / 255.0 * 1500.0  # io's mapping of display values
    assert np.allclose(inputs.hu_to_unit(hu), v / 255.0, atol=1e-6)
    assert inputs.hu_to_unit(np.array([-3000.0, -600.0, 3000.0])).tolist() == [0.0, 0.5, 1.0]


def test_content_box_trims_uniform_borders_only():
    img = np.zeros((100, 120), np.float32)  # black padding
    img[:, :3] = 1.0                         # a white frame line on the left
    rng = np.random.default_rng(0)
    img[20:70, 30:100] = rng.random((50, 70))
    rows, cols = inputs.content_box(img)
    assert (rows.start, rows.stop) == (20, 70)
    assert (cols.start, cols.stop) == (30, 100)
    blank = np.full((10, 10), 0.3, np.float32)
    assert inputs.content_box(blank) == (slice(0, 10), slice(0, 10))


def test_lung_roi_is_the_largest_box_over_slices_with_margin():
    mask = np.zeros((3, 100, 100), np.uint8)
    mask[0, 40:60, 20:50] = 1
    mask[2, 30:50, 40:80] = 2
    rows, cols = inputs.lung_roi(mask, margin=0.1)
    # union box rows 30..60 (30 high, margin 3), cols 20..80 (60 wide, margin 6)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (27, 63, 14, 86)
    assert inputs.lung_roi(np.zeros((2, 5, 5))) is None
    edge = np.zeros((10, 10)); edge[0:10, 0:10] = 1
    assert inputs.lung_roi(edge) == (slice(0, 10), slice(0, 10))  # clipped to the image


def test_square_pad_centres_with_air():
    out = inputs.square_pad(np.ones((2, 6), np.float32))
    assert out.shape == (6, 6)
    assert out.sum() == 12 and out[2:4].all() and not out[:2].any() and not out[4:].any()


def test_square_from_hu_and_network_input():
    hu = np.full((80, 120), 150.0, np.float32)  # unit 1 everywhere -> no trimming
    sq = inputs.square_from_hu(hu)
    assert sq.shape == (inputs.CACHE_SIZE, inputs.CACHE_SIZE)
    assert sq.max() == pytest.approx(1.0) and sq[0, 0] == 0.0  # padded rows are air
    t = inputs.to_tensor(sq)
    assert tuple(t.shape) == (1, 1, 224, 224)
    assert float(t.max()) == pytest.approx((1 - inputs.MEAN) / inputs.STD, rel=1e-5)


def test_map_to_slice_undoes_the_crop_and_padding():
    shape = (60, 90)
    box = (slice(10, 40), slice(20, 80))  # 30 x 60 crop -> padded to 60 x 60, 15 rows of air above
    fine = np.zeros((224, 224), np.float32)
    fine[56:168, :] = 1.0  # exactly the crop's rows in the 224 square (15/60 .. 45/60)
    out = map_to_slice(fine, box, shape)
    assert out.shape == shape
    assert out[box].mean() > 0.97
    outside = np.ones(shape, bool); outside[box] = False
    assert not out[outside].any()


def test_lung_slices_skip_slivers():
    lab = np.zeros((4, 10, 10), np.uint8)
    lab[0, 0, 0] = 1           # 1 voxel: < 5 % of 100
    lab[1] = 1                 # 100 voxels
    lab[2, :5, :2] = 2         # 10 voxels: kept
    assert lung_slices(lab).tolist() == [1, 2]
    assert lung_slices(np.zeros((2, 3, 3))).size == 0


def test_lung_region_grows_the_mask_in_plane_only():
    lab = np.zeros((3, 11, 11), np.uint8)
    lab[1, 5, 5] = 1
    grown = lung_region(lab, spacing=(0.5, 0.5, 5.0), margin_mm=1.0)  # 2 voxels in x and y
    assert grown.dtype == np.float32
    assert grown[1].sum() == 13  # disk of radius 2: 1 + 4 + 8
    assert not grown[0].any() and not grown[2].any()
