"""Writers (CovidCTAnalysis/io/writers.py): formats, atomicity, PNG labels, no metadata leaks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.io import load_ct, to_input_grid, write_label_map, write_png_label, write_volume
from CovidCTAnalysis.labels import LESION_SEGMENTS, LUNG_SEGMENTS


def _labels(shape=(4, 20, 24)) -> sitk.Image:
    arr = np.zeros(shape, np.uint8)
    arr[1:3, 2:10, 2:11] = 1
    arr[1:3, 2:10, 13:22] = 2
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((1.0, 2.0, 3.0))
    img.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    return img


@pytest.mark.parametrize("name", ["h.nii.gz", "h.nii", "h.nrrd", "h.mha"])
def test_write_volume_round_trip(tmp_path, name):
    heat = sitk.GetImageFromArray(np.random.default_rng(0).random((4, 20, 24)).astype(np.float32))
    heat.SetSpacing((0.7, 0.8, 2.5))
    heat.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    out = write_volume(heat, tmp_path / "sub" / name)
    back = sitk.ReadImage(str(out))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(heat))
    assert back.GetDirection() == pytest.approx(heat.GetDirection())
    assert [p.name for p in (tmp_path / "sub").iterdir()] == [name]  # no temporary file left


def test_write_volume_unknown_extension(tmp_path):
    with pytest.raises(InputError, match=r"h\.png: unknown volume extension \.png"):
        write_volume(_labels(), tmp_path / "h.png")


@pytest.mark.parametrize("name", ["l.nii.gz", "l.nrrd", "l.mha"])
def test_plain_label_maps(tmp_path, name):
    labels = _labels()
    write_label_map(labels, tmp_path / name, LUNG_SEGMENTS)
    back = sitk.ReadImage(str(tmp_path / name))
    assert back.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(labels))
    assert back.GetOrigin() == pytest.approx((1.0, 2.0, 3.0))


def test_integer_labels_of_another_type_are_cast(tmp_path):
    labels = sitk.Cast(_labels(), sitk.sitkInt32)
    write_label_map(labels, tmp_path / "l.nrrd", LUNG_SEGMENTS)
    assert sitk.ReadImage(str(tmp_path / "l.nrrd")).GetPixelID() == sitk.sitkUInt8


def test_label_values_without_segment_or_float_are_rejected(tmp_path):
    arr = sitk.GetArrayFromImage(_labels())
    arr[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"\[7\] have no segment"):
        write_label_map(sitk.GetImageFromArray(arr), tmp_path / "l.nrrd", LUNG_SEGMENTS)
    with pytest.raises(ValueError, match="integer pixel type"):
        write_label_map(sitk.Cast(_labels(), sitk.sitkFloat32), tmp_path / "l.nrrd", LUNG_SEGMENTS)
    assert not list(tmp_path.iterdir())


def test_seg_nrrd_header(tmp_path):
    write_label_map(_labels(), tmp_path / "lungs.seg.nrrd", LUNG_SEGMENTS)
    r = sitk.ImageFileReader()
    r.SetFileName(str(tmp_path / "lungs.seg.nrrd"))
    r.ReadImageInformation()
    assert r.GetDimension() == 3 and r.GetSize() == (24, 20, 4)
    assert r.GetMetaData("Segmentation_MasterRepresentation") == "Binary labelmap"
    assert r.GetMetaData("Segment0_Name") == "right lung" and r.GetMetaData("Segment1_LabelValue") == "2"
    assert r.GetMetaData("Segment1_Extent") == "0 23 0 19 0 3"
    assert "TerminologyEntry" in r.GetMetaData("Segment0_Tags")
    assert not r.HasMetaDataKey("Segmentation_Extent")


def test_png_label_same_size_as_input_png(tmp_path):
    g = np.random.default_rng(0).integers(0, 255, (30, 44)).astype(np.uint8)
    Image.fromarray(g).save(tmp_path / "in.png")
    ct = load_ct(tmp_path / "in.png")
    labels = sitk.Cast(ct.image > -600, sitk.sitkUInt8)
    out = write_label_map(to_input_grid(labels, ct), tmp_path / "out.png", LESION_SEGMENTS[:1])
    with Image.open(out) as im:
        assert im.size == (44, 30) and im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), (g > (-600 + 1350) / 1500 * 255).astype(np.uint8))


def test_png_label_refused_for_a_volume(tmp_path):
    with pytest.raises(InputError, match="out.png: a .png output holds one slice, but the result has 4 slices"):
        write_label_map(_labels(), tmp_path / "out.png", LUNG_SEGMENTS)
    assert not list(tmp_path.iterdir())


def test_write_png_label_from_array(tmp_path):
    arr = np.zeros((20, 30), np.uint8)
    arr[3:9, 4:6] = 2
    write_png_label(arr, tmp_path / "a.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), arr)
    with pytest.raises(InputError, match="one 2-D slice"):
        write_png_label(np.zeros((2, 3, 4, 5), np.uint8), tmp_path / "b.png")


def test_unknown_label_extension(tmp_path):
    with pytest.raises(InputError, match="unknown label-map extension .jpg"):
        write_label_map(_labels(), tmp_path / "l.jpg", LUNG_SEGMENTS)


@pytest.mark.parametrize("name", ["l.nii.gz", "l.seg.nrrd", "l.png"])
def test_failed_rename_leaves_nothing(tmp_path, monkeypatch, name):
    """The data are written to a temporary file; when publishing fails, no file of any kind remains."""
    labels = _labels((1, 20, 24)) if name.endswith(".png") else _labels()

    def broken_replace(src, dst):
        assert os.path.exists(src)  # the complete temporary file was there
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_label_map(labels, tmp_path / name, LUNG_SEGMENTS)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    write_volume(_labels(), tmp_path / "v.nrrd")
    before = (tmp_path / "v.nrrd").read_bytes()

    def failing(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", failing)
    with pytest.raises(InputError, match="could not be written"):
        write_volume(sitk.Cast(_labels(), sitk.sitkFloat32), tmp_path / "v.nrrd")
    assert (tmp_path / "v.nrrd").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.nrrd"]


def test_unwritable_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="folder cannot be created"):
        write_volume(_labels(), tmp_path / "file" / "v.nrrd")


def test_metadata_never_reaches_the_file(tmp_path):
    labels = _labels()
    labels.SetMetaData("0010|0010", "Doe^Jane")  # a patient name carried over from DICOM
    for name in ("l.nrrd", "l.seg.nrrd"):
        write_label_map(labels, tmp_path / name, LUNG_SEGMENTS)
        assert b"Doe^Jane" not in (tmp_path / name).read_bytes()
    write_volume(labels, tmp_path / "v.mha")
    assert b"Doe^Jane" not in (tmp_path / "v.mha").read_bytes()
    assert labels.GetMetaData("0010|0010") == "Doe^Jane"  # the caller's image is not modified
