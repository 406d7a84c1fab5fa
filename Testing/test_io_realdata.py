"""load_ct / read_canonical on the real data in ../shared/data (geometry truths read from the files' headers)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from CovidCTAnalysis.io import load_ct, read_canonical, to_input_grid

pytestmark = pytest.mark.realdata


def test_totalsegmentator_dicom_series(shared_data):
    folder = shared_data / "totalsegmentator/tests/reference_files/example_ct_dicom"
    ct = load_ct(folder)
    assert ct.kind == "dicom-series" and ct.modality == "CT" and not ct.display_windowed
    assert ct.size == (512, 512, 20)
    assert ct.spacing == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert ct.image.GetOrigin() == pytest.approx((-249.51171875, -437.51171875, -804.5))
    assert ct.value_range == (-1024.0, 1839.0)
    assert len(ct.slice_files) == 20


def test_rescale_intercept_against_the_raw_stored_values(shared_data):
    """GDCM applies Rescale Intercept -1024 (0028,1052): HU = stored int16 - 1024, checked on the raw bytes of an
    uncompressed NY-SBU file (explicit VR little endian, pixel data last). The TotalSegmentator series is JPEG 2000
    compressed, so its raw bytes cannot be read this way; GDCM decodes it (test above)."""
    path = shared_data / "ny-sbu-slices/A002304/axial/19001231-076.dcm"
    data = path.read_bytes()
    assert b"1.2.840.10008.1.2.1\x00" in data[:400] and b"\xe0\x7f\x10\x00OW" in data  # transfer syntax, pixel data
    raw = np.frombuffer(data[-512 * 512 * 2:], dtype="<i2").reshape(512, 512)
    ct = load_ct(path)
    hu = sitk.GetArrayFromImage(ct.image)[0]
    np.testing.assert_array_equal(hu, raw.astype(np.float32) - 1024.0)
    assert hu.min() == -3024.0 and np.percentile(hu[hu > -1500], 2) < -950  # air inside the field of view


def test_lungmask_dicom_slices(shared_data):
    folder = shared_data / "lungmask-testdata/tests/testdata"
    ct = load_ct(folder)
    assert ct.size == (512, 512, 2) and ct.spacing[:2] == pytest.approx((0.625, 0.625))
    assert any("SOP class CT Image Storage says CT" in n for n in ct.notes)  # no modality tag in these files
    a = sitk.GetArrayFromImage(ct.image)
    inside = a[a > -1500]  # -2048 pads outside the reconstruction circle
    assert -1050 < np.percentile(inside, 5) < -950  # air near -1000 HU
    one = load_ct(folder / "0.dcm")
    assert one.kind == "dicom-file" and one.is_2d and one.size == (512, 512, 1)


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_ny_sbu_single_slices(shared_data, plane):
    """Every single slice is a 2-D image; coronal and sagittal ones as pictures of their plane (issue 18)."""
    files = sorted((shared_data / "ny-sbu-slices").glob(f"*/{plane}/*.dcm"))
    assert len(files) == 10
    for f in files:
        ct = load_ct(f)
        assert ct.modality == "CT" and ct.size == (512, 512, 1) and ct.is_2d, f
        assert ct.picture_plane == (None if plane == "axial" else plane), f
        assert ct.value_range[0] <= -1000, f
        back = to_input_grid(ct.image, ct)
        assert back.GetSize() == (512, 512, 1)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(sitk.ReadImage(str(f))))


def test_radiopaedia_stack_order_and_size(shared_data):
    ct = load_ct(shared_data / "radiopaedia-stacks/74867")
    assert ct.kind == "slice-stack" and ct.display_windowed and ct.size == (630, 630, 99)
    assert ct.slice_files[-1].name == "1.jpeg" and ct.slice_files[0].name == "99.jpeg"  # file 1 most superior
    assert [p.name for p in ct.slice_files[-12:]] == [f"{k}.jpeg" for k in range(12, 0, -1)]
    assert any("Untitled.txt" in n for n in ct.notes)
    ct2 = load_ct(shared_data / "radiopaedia-stacks/74887")
    assert ct2.size == (630, 401, 110) and ct2.slice_files[-1].name == "a10000.jpeg"


def test_radiopaedia_first_file_is_superior(shared_data):
    """Lungs (air) fill the upper and middle files; the last files are abdomen: file 1 is the top of the volume."""
    ct = load_ct(shared_data / "radiopaedia-stacks/74576")
    a = sitk.GetArrayFromImage(ct.image)  # canonical z grows superior
    n = a.shape[0]
    lung_fraction = [(a[z] < -700).mean() for z in range(n)]
    assert np.mean(lung_fraction[-n // 2:-2]) > np.mean(lung_fraction[:n // 6])


COVID_CT_MODES = [  # one file per (format, mode) found in covid-ct/images
    ("COVID/2020.03.13.20035212-p23-152.png", "PNG", "L"),
    ("COVID/2020.02.10.20021584-p6-52%0.png", "PNG", "RGB"),
    ("COVID/2020.01.24.919183-p27-132.png", "PNG", "RGBA"),
    ("COVID/2020.03.16.20035105-p6-64-1.png", "JPEG", "RGB"),  # JPEG data named .png
    ("NonCOVID/20.jpg", "JPEG", "L"),
    ("NonCOVID/21%0.jpg", "JPEG", "RGB"),
]


@pytest.mark.parametrize("name, fmt, mode", COVID_CT_MODES)
def test_covid_ct_images_of_every_mode(shared_data, name, fmt, mode):
    path = shared_data / "covid-ct/images" / name
    with Image.open(path) as im:
        assert (im.format, im.mode) == (fmt, mode)
        width, height = im.size
        gray = np.asarray(im.convert("RGB").convert("L"), dtype=np.float64)
    ct = load_ct(path)
    assert ct.kind == "slice-2d" and ct.is_2d and ct.display_windowed
    assert ct.size == (width, height, 1)
    a = sitk.GetArrayFromImage(ct.image)[0]
    assert a.min() >= -1350 and a.max() <= 150
    np.testing.assert_allclose(a, -1350 + gray / 255 * 1500, atol=1e-3)  # alpha is 255 everywhere in this set


def test_imlab_nifti_and_mask_share_the_grid(shared_data):
    ct = load_ct(shared_data / "imlab-lung3d/id001-128x128x64.nii.gz")
    assert ct.input_orientation == "LAS" and ct.size == (128, 128, 64)
    assert ct.spacing == pytest.approx((3.0078, 3.0078, 5.0), abs=1e-3)
    mask = read_canonical(shared_data / "imlab-lung3d/id001-128x128x64-msk.nii.gz")
    assert mask.GetSize() == ct.size and mask.GetOrigin() == pytest.approx(ct.image.GetOrigin())
    lung = sitk.GetArrayFromImage(mask) > 127
    hu = sitk.GetArrayFromImage(ct.image)
    assert np.median(hu[lung]) < -800  # the mask lies on air-filled lung after both were reoriented


def test_totalsegmentator_nifti_left_is_high_x(shared_data):
    """RAS NIfTI: after canonicalization the left upper lobe lies at high x, liver and right lobe at low x."""
    ct = load_ct(shared_data / "totalsegmentator/tests/reference_files/example_ct.nii.gz")
    assert ct.input_orientation == "RAS" and ct.size == (122, 101, 112)
    seg = shared_data / "totalsegmentator/old_example_seg_d2907f6/tests/reference_files/example_seg"
    centre_x = {}
    for name in ("lung_upper_lobe_left", "lung_lower_lobe_right", "liver"):
        m = read_canonical(seg / f"{name}.nii.gz")
        assert m.GetSize() == ct.size
        centre_x[name] = np.argwhere(sitk.GetArrayFromImage(m) > 0)[:, 2].mean()
    assert centre_x["lung_upper_lobe_left"] > 61 > centre_x["lung_lower_lobe_right"]
    assert centre_x["liver"] < 61


def test_covid_semiseg_palette_mask(shared_data):
    path = shared_data / "covid-semiseg/TrainingSet/MultiClassInfection-Train/GT/0.png"
    mask = read_canonical(path)
    values = np.unique(sitk.GetArrayFromImage(mask))
    assert mask.GetSize() == (273, 369, 1) and set(values.tolist()) <= {0, 1, 2}
