"""DeCoVNet input (seed 002, §II-F2): CT + lung mask on the model grid, and maps back to the CT grid."""

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.classifiers.decovnet import inputs as I


def _ct(size=(80, 70, 30), spacing=(2.0, 2.0, 5.0)):
    hu = np.full(size[::-1], 40.0, np.float32)
    lungs = np.zeros(size[::-1], np.uint8)
    lungs[5:20, 20:50, 10:35] = 1
    lungs[5:20, 20:50, 45:70] = 2
    hu[lungs > 0] = -850.0
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing(spacing)
    ct.SetOrigin((-80.0, -70.0, 100.0))
    lab = sitk.GetImageFromArray(lungs)
    lab.CopyInformation(ct)
    return ct, lab


def test_normalization_is_the_lung_window():
    np.testing.assert_allclose(I.normalize_hu([-2000, -1350, -600, 150, 3000]), [0, 0, 0.5, 1, 1])


def test_every_lung_slice_kept_and_grid_covers_the_lungs_at_2_to_3():
    ct, lungs = _ct()
    x = I.prepare(ct, lungs, I.InputSpec(224, 336))
    assert x.array.shape == (2, 15 + 2 * I.MARGIN_SLICES, 224, 336)  # lung slices + one margin slice each side
    sx, sy, sz = x.grid.GetSpacing()
    assert sz == 5.0 and sx == pytest.approx(sy)  # 2:3 box: no stretching
    # lung box 60 x 30 voxels of 2 mm plus 10 mm margins: width 140 mm
    assert sx * 336 == pytest.approx(60 * 2 + 2 * I.MARGIN_MM)
    assert set(np.unique(x.array[1])) == {0.0, 1.0}
    lung_mm3 = 15 * 30 * 50 * 2 * 2 * 5.0  # 15 slices x 30 rows x (25 + 25) columns of 2 x 2 x 5 mm
    assert x.lungs.sum() * sx * sy * sz == pytest.approx(lung_mm3, rel=0.05)
    inside = x.ct[x.lungs]
    np.testing.assert_allclose(inside.mean(), I.normalize_hu(-850.0), atol=0.02)


def test_z_resampled_when_asked():
    ct, lungs = _ct(spacing=(2.0, 2.0, 1.25))
    x = I.prepare(ct, lungs, I.InputSpec(112, 168, z_mm=5.0))
    assert x.array.shape[1:] == (4, 112, 168)  # 17 slices x 1.25 mm = 21.25 mm -> 4 slices of 5.3 mm
    assert x.grid.GetSpacing()[2] == pytest.approx(17 * 1.25 / 4)


def test_no_lungs_uses_the_whole_image():
    ct, lungs = _ct()
    empty = sitk.Image(lungs.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(lungs)
    x = I.prepare(ct, empty, I.InputSpec(112, 168))
    assert x.array.shape[1] == ct.GetSize()[2] and not x.lungs.any()


def test_maps_go_back_to_the_canonical_grid():
    ct, lungs = _ct()
    x = I.prepare(ct, lungs, I.InputSpec(112, 168))
    ones = np.ones(x.array.shape[1:], np.float32)
    back = I.to_canonical(ones, x.grid, ct)
    assert back.GetSize() == ct.GetSize() and back.GetSpacing() == ct.GetSpacing()
    a = sitk.GetArrayFromImage(back)
    lung = sitk.GetArrayFromImage(lungs) > 0
    assert (a[lung] > 0.99).all()  # the lung box is inside the model grid
    assert a[0].max() == 0.0  # slices outside the lung range are 0
    labels = I.to_canonical(x.lungs.astype(np.uint8), x.grid, ct, labels=True)
    assert labels.GetPixelID() == sitk.sitkUInt8
    agree = (sitk.GetArrayFromImage(labels) > 0) == lung
    assert agree.mean() > 0.98


def test_mismatched_lungs_is_an_input_error():
    from CovidCTAnalysis.errors import InputError

    ct, _ = _ct()
    other, _ = _ct(size=(40, 40, 10))
    with pytest.raises(InputError, match="lung mask size"):
        I.prepare(ct, sitk.Cast(other, sitk.sitkUInt8), I.InputSpec())


def test_spec_from_registry_entry():
    assert I.InputSpec.from_dict(None) == I.InputSpec(224, 336, None)
    spec = I.InputSpec.from_dict({"in_plane": [112, 168], "z_mm": 5})
    assert spec == I.InputSpec(112, 168, 5.0) and I.InputSpec.from_dict(spec.to_dict()) == spec


def test_encoding_paper_default_and_lung_only():
    ct, lungs = _ct()
    x = I.prepare(ct, lungs, I.InputSpec(112, 168))
    assert I.encode(x.array, I.InputSpec()) is x.array  # the paper: the two channels as they are
    enc = I.encode(x.array, I.InputSpec(112, 168, lung_only=True, mask_value=0.1))
    inside = x.lungs
    assert np.all(enc[0][~inside] == 0.0)  # outside the lungs: 0, like the convolutions' zero padding
    np.testing.assert_allclose(enc[0][inside], x.ct[inside] - np.median(x.ct[inside]), atol=1e-6)
    brighter = x.array.copy()
    brighter[0] *= 1.3  # brightness jitter: the lung stays at 0
    assert abs(np.median(I.encode(brighter, I.InputSpec(lung_only=True))[0][inside])) < 1e-6
    assert set(np.unique(enc[1])) == {0.0, np.float32(0.1)}
