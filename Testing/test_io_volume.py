"""Canonical grid and the exact way back (CovidCTAnalysis/io/volume.py), on small synthetic volumes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.io import load_ct, to_input_grid
from CovidCTAnalysis.io.volume import IDENTITY3, canonicalize, slice_order

RNG = np.random.default_rng(7)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    r = np.eye(3)
    i, j = [k for k in range(3) if k != axis]
    r[i, i] = r[j, j] = np.cos(t)
    r[i, j], r[j, i] = -np.sin(t), np.sin(t)
    return r


def _signed_permutations():
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            d = np.zeros((3, 3))
            for i, p in enumerate(perm):
                d[p, i] = signs[i]
            yield d


def _ct_like(shape=(6, 17, 19), dtype=np.int16) -> np.ndarray:
    return RNG.integers(-1000, 1500, shape).astype(dtype)


def _image(arr, direction, spacing=(0.6, 0.8, 2.5), origin=(12.5, -40.0, 300.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(tuple(np.asarray(direction, dtype=float).ravel()))
    return img


@pytest.mark.parametrize("direction", list(_signed_permutations()) + [_rotation(0, 15) @ np.diag([-1, -1, 1]),
                                                                       _rotation(2, -40)])
def test_canonicalize_equals_dicomorient(direction):
    """Our numpy reorientation gives DICOMOrient's voxels, origin and spacing, for all 48 axis codes and obliques."""
    img = _image(_ct_like(dtype=np.float32), direction)
    ref = sitk.DICOMOrient(img, "LPS")
    mine, oriented, _ = canonicalize(img)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mine), sitk.GetArrayViewFromImage(ref))
    np.testing.assert_allclose(mine.GetOrigin(), ref.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(mine.GetSpacing(), ref.GetSpacing())
    assert mine.GetDirection() == IDENTITY3
    np.testing.assert_allclose(oriented, ref.GetDirection(), atol=1e-3)


@pytest.mark.parametrize("direction", [np.eye(3),  # LPS, already canonical
                                       np.diag([-1, -1, 1]),  # RAS NIfTI
                                       np.diag([1, -1, 1]),   # LAS (imlab)
                                       np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]]),  # permuted + flipped
                                       np.diag([1, 1, -1])])  # z toward the feet (slice stacks)
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_load_is_canonical_and_round_trips(tmp_path, direction, suffix):
    arr = _ct_like()
    img = _image(arr, direction)
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(img, str(path))
    ct = load_ct(path)

    assert ct.image.GetDirection() == IDENTITY3
    assert ct.image.GetPixelID() == sitk.sitkFloat32
    assert ct.input_size == img.GetSize()
    np.testing.assert_allclose(ct.input_direction, img.GetDirection(), atol=1e-6)
    # A voxel keeps its value at the same physical point.
    for index in [(0, 0, 0), (18, 16, 5), (3, 1, 4), (7, 12, 0)]:
        point = img.TransformIndexToPhysicalPoint(index)
        cidx = ct.image.TransformPhysicalPointToIndex(point)
        assert ct.image[cidx] == pytest.approx(float(img[index]))
    # Back on the input grid: identical values and geometry.
    labels = sitk.Cast(ct.image > 0, sitk.sitkUInt8)
    back = to_input_grid(labels, ct)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), (arr > 0).astype(np.uint8))
    assert back.GetSize() == img.GetSize()
    np.testing.assert_allclose(back.GetOrigin(), img.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(back.GetSpacing(), img.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(back.GetDirection(), img.GetDirection(), atol=1e-6)
    assert back.GetPixelID() == sitk.sitkUInt8
    heat = to_input_grid(ct.image, ct)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(heat), arr.astype(np.float32))


def test_physical_axes_follow_lps(tmp_path):
    """In a RAS file, the voxel at the patient's far left ends at the highest canonical x."""
    arr = np.zeros((4, 20, 20), np.int16) - 1000
    # RAS index x grows toward the patient's RIGHT, so x index 0 is the patient's leftmost column.
    arr[:, :, 0] = 500
    img = _image(arr, np.diag([-1, -1, 1]), spacing=(1, 1, 1), origin=(0, 0, 0))
    sitk.WriteImage(img, str(tmp_path / "ras.nii.gz"))
    a = sitk.GetArrayFromImage(load_ct(tmp_path / "ras.nii.gz").image)
    assert np.all(a[:, :, -1] == 500) and np.all(a[:, :, :-1] == -1000)


def test_oblique_volume_round_trips_exactly(tmp_path):
    direction = _rotation(0, 12) @ np.diag([1, -1, 1])
    arr = _ct_like()
    img = _image(arr, direction)
    sitk.WriteImage(img, str(tmp_path / "oblique.nrrd"))
    ct = load_ct(tmp_path / "oblique.nrrd")
    assert ct.image.GetDirection() == IDENTITY3
    assert any("oblique by 12.0 degrees" in n for n in ct.notes)
    back = to_input_grid(ct.image, ct)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), arr.astype(np.float32))
    np.testing.assert_allclose(back.GetDirection(), direction.ravel(), atol=1e-6)


def test_two_dimensional_file_comes_back_two_dimensional(tmp_path):
    arr = _ct_like((20, 24))
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.9))
    img.SetOrigin((5.0, 6.0))
    sitk.WriteImage(img, str(tmp_path / "slice.mha"))
    ct = load_ct(tmp_path / "slice.mha")
    assert ct.is_2d and ct.size == (24, 20, 1) and ct.input_dimension == 2
    back = to_input_grid(sitk.Cast(ct.image < 0, sitk.sitkUInt8), ct)
    assert back.GetDimension() == 2 and back.GetSize() == (24, 20)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), (arr < 0).astype(np.uint8))
    assert back.GetSpacing() == pytest.approx((0.7, 0.9)) and back.GetOrigin() == pytest.approx((5.0, 6.0))


def test_canonical_input_gets_its_own_image_back_without_a_copy(tmp_path):
    sitk.WriteImage(_image(_ct_like(), np.eye(3)), str(tmp_path / "ct.nrrd"))
    ct = load_ct(tmp_path / "ct.nrrd")
    heat = sitk.Cast(ct.image, sitk.sitkFloat32)
    assert to_input_grid(heat, ct) is heat
    moved = sitk.Image(heat)
    moved.SetOrigin(tuple(o + 1.0 for o in heat.GetOrigin()))  # not the input's grid: a placed copy
    back = to_input_grid(moved, ct)
    assert back is not moved and back.GetOrigin() == ct.input_origin


def test_to_input_grid_refuses_wrong_size(tmp_path):
    sitk.WriteImage(_image(_ct_like(), np.eye(3)), str(tmp_path / "ct.nii.gz"))
    ct = load_ct(tmp_path / "ct.nii.gz")
    with pytest.raises(ValueError, match="canonical size"):
        to_input_grid(sitk.Image(3, 3, 3, sitk.sitkUInt8), ct)


def test_slice_order():
    assert slice_order(IDENTITY3, IDENTITY3, 3) == [0, 1, 2]
    assert slice_order((1, 0, 0, 0, 1, 0, 0, 0, -1), IDENTITY3, 3) == [2, 1, 0]
    coronal = (1, 0, 0, 0, 0, 1, 0, -1, 0)
    assert slice_order(coronal, IDENTITY3, 1) is None


def test_summary_has_the_report_fields(tmp_path):
    sitk.WriteImage(_image(_ct_like(), np.eye(3)), str(tmp_path / "ct.nii.gz"))
    s = load_ct(tmp_path / "ct.nii.gz").summary()
    assert s["size"] == [19, 17, 6] and s["spacing_mm"] == pytest.approx([0.6, 0.8, 2.5])
    assert s["display_windowed"] is False and s["path"].endswith("ct.nii.gz")
