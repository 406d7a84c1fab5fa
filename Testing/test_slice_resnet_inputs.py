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


def test_a_larger_input_is_cached_and_seen_at_its_own_size():
    """--input-size: the cached square keeps the 8/7 headroom of 256 over 224, and the network sees the asked size."""
    assert inputs.cache_size(224) == inputs.CACHE_SIZE
    assert inputs.cache_size(320) == 368
    hu = np.full((300, 400), -600.0, np.float32)
    hu[100:200, 100:300] = 150.0
    sq = inputs.square_from_hu(hu, size=inputs.cache_size(320))
    assert sq.shape == (368, 368)
    assert tuple(inputs.to_tensor(sq, 320).shape) == (1, 1, 320, 320)


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
    assert grown.dtype == bool
    assert grown[1].sum() == 13  # disk of radius 2: 1 + 4 + 8
    assert not grown[0].any() and not grown[2].any()


@pytest.mark.parametrize("spacing", [(0.7, 0.7), (0.5, 1.1), (1.4, 0.6)])
def test_lung_region_is_scipys_dilation_by_the_ellipse(spacing):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    lab = (ndi.gaussian_filter(rng.random((4, 70, 90)), (0, 4, 4)) > 0.53).astype(np.uint8)
    lab[:, :, :3] = 1  # lung at the border: the dilation must not wrap around
    ry, rx = max(1, round(5.0 / spacing[1])), max(1, round(5.0 / spacing[0]))
    yy, xx = np.ogrid[-ry:ry + 1, -rx:rx + 1]
    disk = ((yy / ry) ** 2 + (xx / rx) ** 2) <= 1.0
    expected = ndi.binary_dilation(lab > 0, structure=disk[None])
    assert np.array_equal(lung_region(lab, spacing=spacing + (2.0,), margin_mm=5.0), expected)


def test_lung_focus_keeps_the_grown_lungs_and_their_holes_only():
    lungs = np.zeros((64, 64), bool)
    lungs[20:40, 10:25] = True
    lungs[28:32, 15:20] = False  # a consolidation the lung mask left out
    keep = inputs.lung_focus(lungs, margin=3)
    assert keep.dtype == np.float32
    assert keep[30, 17] == 1  # the hole is filled
    assert keep[17, 17] == 1 and keep[16, 17] == 0  # grown by exactly the margin
    assert keep[30, 50] == 0 and keep.sum() < 0.3 * keep.size


def test_square_from_hu_with_lungs_sets_everything_outside_the_focus_to_air():
    hu = np.full((100, 120), 40.0, np.float32)  # soft tissue
    lungs = np.zeros(hu.shape, bool)
    lungs[30:70, 20:50] = True
    lungs[30:70, 70:100] = True
    hu[lungs] = -850.0
    box = inputs.lung_roi(lungs)  # rows 25-75, cols 10-110: a 100 px square, 2.56 px per voxel
    plain, focused = inputs.square_from_hu(hu, box), inputs.square_from_hu(hu, box, lungs)
    assert plain.shape == focused.shape == (inputs.CACHE_SIZE, inputs.CACHE_SIZE)
    kept = focused > 0
    assert np.allclose(focused[kept], plain[kept])
    assert plain[128, 128] > 0.9 and focused[128, 128] == 0  # soft tissue midway between the lungs: air now
    assert focused[128, 64] == pytest.approx(plain[128, 64])  # inside the right lung: unchanged
    assert focused[5, 128] == 0 and plain[5, 128] == 0  # the padding stays air
