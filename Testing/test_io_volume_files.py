"""NIfTI / NRRD / MetaImage reading (CovidCTAnalysis/io/volume_files.py): good files and every kind of bad one."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import sha256_tree

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io import load_ct, read_canonical


def assert_refused(path: Path, *words: str, **options) -> str:
    """load_ct raises InputError: one line naming the file, with the given words; the input is left unchanged."""
    before = sha256_tree(path) if path.exists() else None
    with pytest.raises(InputError) as info:
        load_ct(path, **options)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word.lower() in message.lower(), message
    if before is not None:
        assert sha256_tree(path) == before
    return message


def _ct(shape=(5, 20, 24), value_range=(-1000, 400), dtype=np.int16, seed=0) -> sitk.Image:
    arr = np.random.default_rng(seed).integers(*value_range, shape).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.7, 2.0))
    return img


def test_reads_each_format_with_spacing_and_hu(tmp_path):
    img = _ct()
    for name in ("a.nii.gz", "a.nii", "a.nrrd", "a.mha"):
        sitk.WriteImage(img, str(tmp_path / name))
        ct = load_ct(tmp_path / name)
        assert ct.kind == {"a.nii.gz": "nifti", "a.nii": "nifti", "a.nrrd": "nrrd", "a.mha": "mha"}[name]
        assert ct.size == (24, 20, 5) and ct.spacing == pytest.approx((0.7, 0.7, 2.0))
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ct.image), sitk.GetArrayViewFromImage(img))
        assert not ct.display_windowed and not ct.is_2d and ct.window is None


def test_detached_headers_nhdr_and_mhd(tmp_path):
    img = _ct()
    sitk.WriteImage(img, str(tmp_path / "a.nhdr"))
    sitk.WriteImage(img, str(tmp_path / "b.mhd"))
    assert load_ct(tmp_path / "a.nhdr").kind == "nrrd"
    assert load_ct(tmp_path / "b.mhd").kind == "mha"
    (tmp_path / "b.raw").unlink()
    assert_refused(tmp_path / "b.mhd", "data file", "b.raw", "does not exist")


def test_options_ignored_with_a_note(tmp_path):
    sitk.WriteImage(_ct(), str(tmp_path / "a.nii.gz"))
    ct = load_ct(tmp_path / "a.nii.gz", spacing=(1, 1, 1), window=(400, 40))
    assert ct.spacing == pytest.approx((0.7, 0.7, 2.0))
    assert any("spacing ignored" in n for n in ct.notes) and any("window ignored" in n for n in ct.notes)


def test_non_hu_values_get_a_note(tmp_path):
    sitk.WriteImage(_ct(value_range=(0, 255), dtype=np.uint8), str(tmp_path / "a.nii.gz"))
    assert any("no air" in n for n in load_ct(tmp_path / "a.nii.gz").notes)


def test_4d_with_one_volume_is_accepted(tmp_path):
    vol = sitk.GetArrayFromImage(_ct())
    img4 = sitk.GetImageFromArray(vol[None], isVector=False)  # (t=1, z, y, x)
    sitk.WriteImage(img4, str(tmp_path / "one.nii.gz"))
    ct = load_ct(tmp_path / "one.nii.gz")
    assert ct.size == (24, 20, 5)


# ------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("name", ["a.nii.gz", "a.nii", "f.nii.gz", "a.nrrd", "a.mha"])
def test_truncated_files(tmp_path, name):
    """ITK pads truncated NIfTI silently; we do not."""
    img = _ct() if not name.startswith("f") else sitk.Cast(_ct(), sitk.sitkFloat32)
    sitk.WriteImage(img, str(tmp_path / name), useCompression=True)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) - 400])
    assert_refused(tmp_path / name, "truncated")


def test_garbage_named_nii_gz(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"\x00\x01garbage" * 100)
    assert_refused(tmp_path / "a.nii.gz", "gzip")


def test_gzip_of_non_nifti(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(gzip.compress(b"hello world" * 100))
    assert_refused(tmp_path / "a.nii.gz", "not a NIfTI")


def test_corrupt_nrrd_and_mha_headers(tmp_path):
    (tmp_path / "a.nrrd").write_bytes(b"this is not nrrd at all\n" * 10)
    assert_refused(tmp_path / "a.nrrd", "not a NRRD")
    (tmp_path / "a.mha").write_bytes(b"ObjectType = Banana\nwhatever\n" * 3)
    assert_refused(tmp_path / "a.mha", "MetaImage")


def test_4d_volume(tmp_path):
    vol = sitk.GetArrayFromImage(_ct())
    sitk.WriteImage(sitk.GetImageFromArray(np.stack([vol, vol]), isVector=False), str(tmp_path / "t.nii.gz"))
    assert_refused(tmp_path / "t.nii.gz", "4-D", "one 3-D CT")


def test_vector_image(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (5, 20, 24, 3)).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(arr, isVector=True), str(tmp_path / "rgb.nrrd"))
    assert_refused(tmp_path / "rgb.nrrd", "3 values per voxel")


def test_complex_voxels(tmp_path):
    arr = np.random.default_rng(0).normal(size=(5, 20, 24)) * (1 + 1j)
    sitk.WriteImage(sitk.GetImageFromArray(arr.astype(np.complex64)), str(tmp_path / "c.mha"))
    with pytest.raises(InputError, match="c.mha: has (complex|2 values)"):
        load_ct(tmp_path / "c.mha")


def _nifti_with_pixdim(tmp_path, value: float) -> Path:
    sitk.WriteImage(_ct(), str(tmp_path / "a.nii"))
    b = bytearray((tmp_path / "a.nii").read_bytes())
    struct.pack_into("<f", b, 76 + 4, value)  # pixdim[1]
    path = tmp_path / f"pixdim{value}.nii"
    path.write_bytes(bytes(b))
    return path


@pytest.mark.parametrize("value, words", [(0.0, "must be positive"), (-0.7, "must be positive"),
                                          (float("nan"), "not a number"), (1e-6, "implausible")])
def test_bad_nifti_spacing(tmp_path, value, words):
    assert_refused(_nifti_with_pixdim(tmp_path, value), "spacing", words)


def _nrrd(tmp_path, name, fields: str, size=(24, 20, 5)) -> Path:
    header = (f"NRRD0004\ntype: short\ndimension: 3\nsizes: {size[0]} {size[1]} {size[2]}\n{fields}"
              "encoding: raw\nendian: little\n\n").encode()
    path = tmp_path / name
    path.write_bytes(header + np.arange(int(np.prod(size)), dtype="<i2").tobytes())
    return path


def test_bad_nrrd_spacing_and_direction(tmp_path):
    assert_refused(_nrrd(tmp_path, "zero.nrrd", "space: left-posterior-superior\n"
                                                "space directions: (0,0,0) (0,1,0) (0,0,1)\n"), "spacing", "positive")
    assert_refused(_nrrd(tmp_path, "nan.nrrd", "spacings: nan 1 1\n"), "spacing")
    assert_refused(_nrrd(tmp_path, "skew.nrrd", "space: left-posterior-superior\n"
                                                "space directions: (1,0,0) (1,1,0) (0,0,1)\n"), "not a rotation")


def test_negative_mha_spacing(tmp_path):
    path = tmp_path / "neg.mha"
    path.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 24 20 5\nElementSpacing = -1 1 1\n"
                     b"ElementType = MET_SHORT\nElementDataFile = LOCAL\n" + np.arange(2400, dtype="<i2").tobytes())
    assert_refused(path, "spacing", "positive")


def test_absurd_declared_size_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.mha"
    path.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 100000 100000 100000\nElementSpacing = 1 1 1\n"
                     b"ElementType = MET_SHORT\nElementDataFile = LOCAL\n" + b"\x00" * 64)
    assert_refused(path, "100000x100000x100000", "limit")
    path2 = tmp_path / "many.mha"
    path2.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 4000 4000 4000\nElementSpacing = 1 1 1\n"
                      b"ElementType = MET_SHORT\nElementDataFile = LOCAL\n" + b"\x00" * 64)
    assert_refused(path2, "voxels", "limit")


@pytest.mark.parametrize("name", ["nan.nii.gz", "nan.nii", "nan.nrrd", "nan.mha"])
def test_nan_and_inf_voxels(tmp_path, name):
    """ITK's NIfTI reader turns NaN into 0 silently; we refuse."""
    arr = sitk.GetArrayFromImage(_ct()).astype(np.float32)
    arr[2, 3, 4] = np.nan
    arr[1, 1, 1] = -np.inf
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / name))
    assert_refused(tmp_path / name, "2 voxels", "not finite")


def test_constant_image(tmp_path):
    sitk.WriteImage(sitk.Image(24, 20, 5, sitk.sitkInt16) - 1024, str(tmp_path / "flat.nrrd"))
    assert_refused(tmp_path / "flat.nrrd", "blank", "-1024")


@pytest.mark.parametrize("size", [(1, 1, 1), (1, 1), (8, 8, 40)])
def test_tiny_images(tmp_path, size):
    img = sitk.Image(list(size), sitk.sitkInt16)
    sitk.WriteImage(img, str(tmp_path / "tiny.mha"))
    assert_refused(tmp_path / "tiny.mha", "at least 16x16")


def test_directory_named_like_a_file(tmp_path):
    (tmp_path / "scan.nii.gz").mkdir()
    assert_refused(tmp_path / "scan.nii.gz", "is a folder", ".nii.gz")


def test_read_canonical_keeps_type_and_values(tmp_path):
    arr = np.zeros((5, 20, 24), np.float32)
    arr[1:3, 4:9, 2:7] = 255.0
    img = sitk.GetImageFromArray(arr)
    img.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))  # LAS like the imlab masks
    sitk.WriteImage(img, str(tmp_path / "msk.nii.gz"))
    mask = read_canonical(tmp_path / "msk.nii.gz")
    assert mask.GetPixelID() == sitk.sitkFloat32 and mask.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), arr[:, ::-1, :])
    with pytest.raises(InputError, match="is a folder"):
        read_canonical(tmp_path)
    (tmp_path / "x.txt").write_text("no")
    with pytest.raises(InputError, match="unsupported mask file type"):
        read_canonical(tmp_path / "x.txt")


def test_multi_member_gzip_nifti_is_read(tmp_path):
    """bgzip/pigz-style files: the gzip trailer only knows the last member; the full check must still pass."""
    img = _ct()
    sitk.WriteImage(img, str(tmp_path / "a.nii"))
    raw = (tmp_path / "a.nii").read_bytes()
    (tmp_path / "m.nii.gz").write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    ct = load_ct(tmp_path / "m.nii.gz")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ct.image), sitk.GetArrayFromImage(img))
