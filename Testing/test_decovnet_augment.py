"""DeCoVNet augmentation (seed 002, §II-F3): one draw per volume, applied identically to every slice."""

import dataclasses

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.decovnet import augment as A


def _volume(t=5, h=40, w=60, same=True, seed=0):
    rng = np.random.default_rng(seed)
    ct = rng.uniform(0.2, 0.8, (h, w)).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    mask[10:30, 15:45] = 1
    cts = np.stack([ct if same else rng.uniform(0.2, 0.8, (h, w)).astype(np.float32) for _ in range(t)])
    return np.stack([cts, np.stack([mask] * t)])


def test_identical_slices_stay_identical():
    vol = _volume()
    out, params = A.augment(vol, np.random.default_rng(3))
    assert params.rotation_deg != 0
    assert out.shape == vol.shape
    for z in range(1, vol.shape[1]):
        np.testing.assert_array_equal(out[:, z], out[:, 0])
    assert not np.allclose(out[0, 0], vol[0, 0])


def test_each_slice_gets_the_same_transform():
    vol = _volume(same=False)
    # contrast pivots on the volume's mean (one value for all slices); geometry and brightness are per-slice maps
    params = dataclasses.replace(A.AugmentParams.draw(np.random.default_rng(7)), contrast=1.0)
    out = A.apply(vol, params)
    for z in range(vol.shape[1]):
        single = A.apply(np.ascontiguousarray(vol[:, z:z + 1]), params)
        np.testing.assert_allclose(out[:, z:z + 1], single, atol=1e-6)


def test_ranges_of_the_paper():
    rng = np.random.default_rng(0)
    draws = [A.AugmentParams.draw(rng) for _ in range(500)]
    assert max(abs(d.rotation_deg) for d in draws) <= 10 and max(abs(d.rotation_deg) for d in draws) > 9
    assert max(abs(t) for d in draws for t in d.translate) <= 0.10
    assert min(d.scale for d in draws) >= 0.8 and max(d.scale for d in draws) <= 1.2
    assert max(abs(d.shear_deg) for d in draws) <= 10
    assert min(d.brightness for d in draws) >= 0.5 and max(d.brightness for d in draws) <= 1.5
    assert min(d.contrast for d in draws) >= 0.7 and max(d.contrast for d in draws) <= 1.3


def test_identity_keeps_the_volume_and_mask_stays_binary():
    vol = _volume()
    np.testing.assert_allclose(A.apply(vol, A.AugmentParams()), vol, atol=1e-5)
    out = A.apply(vol, A.AugmentParams.draw(np.random.default_rng(1)))
    assert set(np.unique(out[1])) <= {0.0, 1.0}
    assert out[0].min() >= 0 and out[0].max() <= 1


def test_translation_moves_by_the_fraction_of_the_width():
    vol = np.zeros((2, 1, 40, 60), np.float32)
    vol[1, 0, 20, 30] = 1  # mask channel: nearest neighbour keeps one pixel
    out = A.apply(vol, A.AugmentParams(translate=(0.1, 0.0)))
    ys, xs = np.nonzero(out[1, 0])
    assert (ys.tolist(), xs.tolist()) == ([20], [36])


def test_rotation_is_a_rotation_on_a_wide_slice():
    vol = np.zeros((2, 1, 41, 81), np.float32)
    vol[1, 0, 20, 60] = 1  # 20 pixels right of the centre (40, 20)
    out = A.apply(vol, A.AugmentParams(rotation_deg=90))
    ys, xs = np.nonzero(out[1, 0])
    # 90 degrees in image coordinates (y down) maps +x to +y: 20 pixels below the centre, not 20 * 41/81
    assert abs(ys[0] - 40) <= 1 and abs(xs[0] - 40) <= 1


@pytest.mark.parametrize("b,c", [(1.5, 1.0), (1.0, 0.7)])
def test_colour_jitter_on_ct_only(b, c):
    vol = _volume()
    out = A.apply(vol, A.AugmentParams(brightness=b, contrast=c))
    np.testing.assert_array_equal(out[1], vol[1])
    mean = (vol[0] * b).mean()
    np.testing.assert_allclose(out[0], np.clip((vol[0] * b - mean) * c + mean, 0, 1), atol=1e-5)
