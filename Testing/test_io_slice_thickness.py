"""2-D images state no slice thickness: every 2-D container gets the one PNG/JPEG slices get, and a note says so.

Also: the reading's doubt that the values are HU (no voxel is air) is there to be added to a "no lungs found" refusal.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.io import load_ct, read_canonical
from CovidCTAnalysis.io.slices import DEFAULT_FOV_MM, DEFAULT_SLICE_MM, DEFAULT_WINDOW, display_to_hu

WIDTH = 64
PIXEL_MM = DEFAULT_FOV_MM / WIDTH  # the in-plane spacing a PNG slice of this width is given
NO_LUNGS = "no lungs found in the image (no air-filled lung tissue inside the body)"


def _gray() -> np.ndarray:
    """An 8-bit lung-window slice: air around a body disc holding two dark lungs."""
    y, x = np.mgrid[:WIDTH, :WIDTH]
    gray = np.where(((x - 32) / 28.0) ** 2 + ((y - 32) / 22.0) ** 2 < 1.0, 170, 10)
    for cx in (20, 44):
        gray[((x - cx) / 8.0) ** 2 + ((y - 32) / 12.0) ** 2 < 1.0] = 40
    return gray.astype(np.uint8)


def _slice(tmp_path, name: str, gray: np.ndarray):
    """The slice as file ``name``: a PNG of ``gray``, or its HU in a 2-D volume file with the PNG's pixel size."""
    path = tmp_path / name
    if name.endswith(".png"):
        Image.fromarray(gray).save(path)
    else:
        image = sitk.GetImageFromArray(display_to_hu(gray, DEFAULT_WINDOW))
        image.SetSpacing((PIXEL_MM, PIXEL_MM))
        sitk.WriteImage(image, str(path))
    return path


def _assumed_thickness_notes(ct) -> list[str]:
    return [n for n in ct.notes if "assumed" in n and f"{DEFAULT_SLICE_MM:g} mm" in n]


@pytest.mark.parametrize("name", ["slice.nii.gz", "slice.nrrd", "slice.mha"])
def test_two_dimensional_file_gets_the_thickness_of_a_png_slice_and_says_so(tmp_path, name):
    gray = _gray()
    png = load_ct(_slice(tmp_path, "slice.png", gray))
    ct = load_ct(_slice(tmp_path, name, gray))
    assert ct.is_2d and ct.input_dimension == 2 and not ct.display_windowed
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ct.image), sitk.GetArrayViewFromImage(png.image))
    assert ct.spacing == pytest.approx(png.spacing) and ct.spacing[2] == DEFAULT_SLICE_MM
    assert ct.voxel_ml == pytest.approx(png.voxel_ml)  # so lung and lesion mL agree with the PNG's
    assert _assumed_thickness_notes(png) and _assumed_thickness_notes(ct)
    assert any("mL" in n for n in _assumed_thickness_notes(ct))


def test_one_slice_volume_keeps_its_own_thickness_without_a_note(tmp_path):
    hu = display_to_hu(_gray(), DEFAULT_WINDOW)
    one = sitk.GetImageFromArray(hu[None])
    one.SetSpacing((0.8, 0.8, 3.125))
    sitk.WriteImage(one, str(tmp_path / "one.nii.gz"))
    flat = sitk.GetImageFromArray(hu)
    flat.SetSpacing((0.8, 0.8))
    sitk.WriteImage(flat, str(tmp_path / "flat.nii.gz"))
    one_ct, flat_ct = load_ct(tmp_path / "one.nii.gz"), load_ct(tmp_path / "flat.nii.gz")
    assert one_ct.is_2d and one_ct.input_dimension == 3
    assert one_ct.spacing == pytest.approx((0.8, 0.8, 3.125))
    assert not _assumed_thickness_notes(one_ct) and not any("thickness" in n for n in one_ct.notes)
    assert flat_ct.spacing == pytest.approx((0.8, 0.8, DEFAULT_SLICE_MM)) and _assumed_thickness_notes(flat_ct)


def test_stated_spacing_gives_a_two_dimensional_file_its_thickness(tmp_path):
    ct = load_ct(_slice(tmp_path, "slice.nrrd", _gray()), spacing=(9.0, 9.0, 2.5))
    assert ct.spacing == pytest.approx((PIXEL_MM, PIXEL_MM, 2.5))  # the file's own pixel spacing is kept
    assert not _assumed_thickness_notes(ct) and any("2.5 mm" in n for n in ct.notes)


def test_two_dimensional_masks_lie_on_the_grid_of_their_ct(tmp_path):
    gray = _gray()
    mask = (gray == 40).astype(np.uint8)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    flat = sitk.GetImageFromArray(mask)
    flat.SetSpacing((PIXEL_MM, PIXEL_MM))
    sitk.WriteImage(flat, str(tmp_path / "mask.nii.gz"))
    for ct_name, mask_name in (("slice.png", "mask.png"), ("slice.nii.gz", "mask.nii.gz")):
        ct = load_ct(_slice(tmp_path, ct_name, gray))
        labels = read_canonical(tmp_path / mask_name)
        assert labels.GetSize() == ct.image.GetSize(), mask_name
        assert labels.GetSpacing() == pytest.approx(ct.image.GetSpacing()), mask_name


def test_no_lungs_refusal_can_say_the_values_may_not_be_hu(tmp_path):
    hu = np.repeat(display_to_hu(_gray(), DEFAULT_WINDOW)[None], 3, axis=0)
    for name, values in (("raw.nrrd", np.clip(np.rint(hu + 1024.0), 0, None).astype(np.uint16)),
                         ("hu.nrrd", np.rint(hu).astype(np.int16))):
        image = sitk.GetImageFromArray(values)
        image.SetSpacing((PIXEL_MM, PIXEL_MM, 5.0))
        sitk.WriteImage(image, str(tmp_path / name))
    raw, in_hu = load_ct(tmp_path / "raw.nrrd"), load_ct(tmp_path / "hu.nrrd")
    message = raw.with_hu_doubt(NO_LUNGS)
    assert message.startswith(NO_LUNGS + "; ") and "\n" not in message
    for words in ("no voxel is below -500", "may not be HU", "rescale intercept"):
        assert words in message, message
    assert raw.with_hu_doubt(message) == message  # said once, however often the refusal is passed on
    assert in_hu.hu_doubt is None and in_hu.with_hu_doubt(NO_LUNGS) == NO_LUNGS
    png = load_ct(_slice(tmp_path, "slice.png", np.maximum(_gray(), 150)))  # no air, but display values
    assert png.value_range[0] > -500 and png.with_hu_doubt(NO_LUNGS) == NO_LUNGS


def test_no_lungs_in_values_that_are_not_hu_says_so(tmp_path):
    """HU + 1024 stored without a rescale intercept: the one-line refusal names the likely cause."""
    import subprocess
    import sys

    hu = np.full((16, 64, 64), 40.0)
    hu[:, 16:48, 10:30] = -850.0
    hu[:, 16:48, 34:54] = -850.0
    raw = tmp_path / "raw.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.rint(hu + 1024.0).astype(np.uint16)), str(raw))
    result = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "segment-lungs", str(raw), "-o",
                             str(tmp_path / "lungs.nii.gz")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "may not be HU" in result.stderr and str(raw) in result.stderr
    assert not (tmp_path / "lungs.nii.gz").exists()


def test_a_2d_inputs_segmentation_keeps_the_grid_readers_give_the_file(tmp_path):
    """Readers give a 2-D file's slice 1 mm: its .seg.nrrd must be on that grid to overlay it in Slicer."""
    from CovidCTAnalysis.io.writers import write_label_map
    from CovidCTAnalysis.labels import LUNG_SEGMENTS

    labels = sitk.GetImageFromArray(np.zeros((8, 8), np.uint8))
    labels.SetSpacing((0.7, 0.7))
    out = write_label_map(labels, tmp_path / "lungs.seg.nrrd", LUNG_SEGMENTS)
    assert sitk.ReadImage(str(out)).GetSpacing() == pytest.approx((0.7, 0.7, 1.0))
