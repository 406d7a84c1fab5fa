"""lungs-classic end to end: the demo CT (exact truth), one-slice and display-windowed inputs, refusals, real data."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CovidCTAnalysis.errors import InputError
from CovidCTAnalysis.lungs import classic_lungs, lung_volumes_ml, segment_lungs_classic
from CovidCTAnalysis.lungs.evaluate import dice, lesion_coverage


@pytest.fixture(scope="module")
def demo():
    from CovidCTAnalysis.demo import make_demo_ct

    return make_demo_ct(size=(96, 96, 48), seed=0)


@pytest.fixture(scope="module")
def demo_found(demo):
    return classic_lungs(demo.image)


@pytest.fixture(scope="module")
def demo_labels(demo_found):
    return demo_found.labels


def _arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _image(array: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    img = sitk.GetImageFromArray(array.astype(np.float32))
    img.SetSpacing(spacing)
    return img


def test_labels_lie_on_the_input_grid(demo, demo_labels):
    assert demo_labels.GetPixelID() == sitk.sitkUInt8
    assert demo_labels.GetSize() == demo.image.GetSize()
    assert demo_labels.GetSpacing() == demo.image.GetSpacing()
    assert demo_labels.GetOrigin() == demo.image.GetOrigin()
    assert demo_labels.GetDirection() == demo.image.GetDirection()
    assert set(np.unique(_arr(demo_labels))) == {0, 1, 2}


def test_demo_lungs_match_the_truth(demo, demo_labels):
    a, g = _arr(demo_labels), _arr(demo.lungs)
    assert dice(a > 0, g > 0) >= 0.97
    # right/left: each label is the right side, not just some lung
    assert dice(a == 1, g == 1) >= 0.96
    assert dice(a == 2, g == 2) >= 0.96


def test_right_lung_is_label_1_at_low_x(demo_labels):
    a = _arr(demo_labels)
    x_right = np.nonzero(a == 1)[2].mean()
    x_left = np.nonzero(a == 2)[2].mean()
    assert x_right < a.shape[2] / 2 < x_left


def test_pleural_lesions_lie_inside_the_lung(demo, demo_labels):
    """The known failure of threshold masks: consolidations flush with the chest wall (lungmask issue #35)."""
    a, lesions = _arr(demo_labels), _arr(demo.lesions)
    assert any(les.touches_pleura and les.label == 2 for les in demo.lesion_list), "the demo has a pleural consolidation"
    assert lesion_coverage(a, lesions) >= 0.95
    # without the pleural fills most of the consolidation voxels would be outside (0.44 measured on the demo)
    assert lesion_coverage(a, lesions == 2) >= 0.85


def test_pleural_fill_is_reported_and_its_dense_part_is_consolidation(demo, demo_found):
    """What the pleural fills added (ClassicLungs.pleural, on its coarse grid) is what lesions/pleural.py calls
    consolidation: on the demo it is nearly all truth consolidation, and a good part of it."""
    from CovidCTAnalysis.lesions.pleural import DENSE_HU, pleural_on_grid

    fill = pleural_on_grid(demo_found.pleural, demo.image)
    dense = fill & (_arr(demo_found.labels) > 0) & (_arr(demo.image) > DENSE_HU)
    truth = _arr(demo.lesions)
    assert (truth[dense] == 2).mean() > 0.8
    assert dense.sum() > 0.25 * (truth == 2).sum()


def test_progress_is_reported(demo):
    events = []
    segment_lungs_classic(demo.image, progress=lambda f, m: events.append((f, m)))
    fractions = [f for f, _ in events]
    assert len(events) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in events)


def test_one_axial_slice(demo):
    z = 28
    labels = segment_lungs_classic(demo.image[:, :, z:z + 1])
    assert labels.GetSize() == (96, 96, 1)
    a, g = _arr(labels)[0], _arr(demo.lungs)[z]
    assert dice(a > 0, g > 0) >= 0.95
    assert dice(a == 1, g == 1) >= 0.93 and dice(a == 2, g == 2) >= 0.93


def test_display_windowed_slice(demo):
    """An 8-bit lung-window rendering (as a PNG/JPEG source would be) mapped back to approximate HU."""
    z = 28
    hu = _arr(demo.image)[z:z + 1]
    u8 = np.clip(np.round((hu + 1350.0) / 1500.0 * 255.0), 0, 255)
    approx = sitk.GetImageFromArray((-1350.0 + u8 / 255.0 * 1500.0).astype(np.float32))
    approx.CopyInformation(demo.image[:, :, z:z + 1])
    a = _arr(segment_lungs_classic(approx, display_windowed=True))[0]
    g = _arr(demo.lungs)[z]
    assert dice(a > 0, g > 0) >= 0.95
    assert dice(a == 1, g == 1) >= 0.93 and dice(a == 2, g == 2) >= 0.93


def test_volumes_of_the_demo_labels(demo_labels):
    a = _arr(demo_labels)
    voxel_ml = float(np.prod(demo_labels.GetSpacing())) / 1000.0
    v = lung_volumes_ml(demo_labels)
    assert v["right_ml"] == pytest.approx((a == 1).sum() * voxel_ml)
    assert v["left_ml"] == pytest.approx((a == 2).sum() * voxel_ml)
    assert 1500.0 < v["total_ml"] < 8000.0  # an adult's lungs


@pytest.mark.parametrize("value", [-1000.0, 0.0, 40.0])
def test_uniform_image_has_no_lungs(value):
    with pytest.raises(InputError, match="no lungs found"):
        segment_lungs_classic(_image(np.full((20, 64, 64), value)))


def test_abdomen_without_lungs_is_refused():
    """A body with a stomach bubble and bowel gas, no lung: gut gas is pure air, lung parenchyma is not."""
    z, y, x = np.mgrid[0:30, 0:96, 0:96]
    body = ((x - 48) / 42.0) ** 2 + ((y - 48) / 34.0) ** 2 < 1.0
    img = np.full(body.shape, -1000.0)
    img[body] = 45.0
    stomach = ((x - 62) / 12.0) ** 2 + ((y - 34) / 9.0) ** 2 + ((z - 15) / 8.0) ** 2 < 1.0
    img[stomach] = -1000.0
    rng = np.random.default_rng(0)
    for _ in range(12):  # bowel gas pockets
        cx, cy, cz = rng.integers(25, 70), rng.integers(35, 70), rng.integers(4, 26)
        img[((x - cx) / 4.0) ** 2 + ((y - cy) / 3.0) ** 2 + ((z - cz) / 3.0) ** 2 < 1.0] = -1000.0
    img += rng.normal(0.0, 15.0, img.shape)
    with pytest.raises(InputError, match="no lungs found"):
        segment_lungs_classic(_image(img, (3.0, 3.0, 3.0)))


def test_the_abdominal_slices_of_the_demo_are_refused(demo):
    g = _arr(demo.lungs)
    first = int(np.flatnonzero(g.any(axis=(1, 2)))[0])
    assert first >= 3
    with pytest.raises(InputError, match="no lungs found"):
        segment_lungs_classic(demo.image[:, :, :first])


def test_not_a_volume_is_refused():
    with pytest.raises(InputError):
        segment_lungs_classic(sitk.Image(64, 64, sitk.sitkFloat32))  # 2-D image (a slice must be one z slice)
    with pytest.raises(InputError, match="no lungs found"):
        segment_lungs_classic(sitk.Image(4, 4, 4, sitk.sitkFloat32))


# ------------------------------------------------------------------------------------------------ real data
def _imlab(shared_data, case):
    from CovidCTAnalysis.io import load_ct, read_canonical

    folder = shared_data / "imlab-lung3d"
    ct = load_ct(folder / f"id{case}-128x128x64.nii.gz")
    reference = _arr(read_canonical(folder / f"id{case}-128x128x64-msk.nii.gz")) > 127
    return ct, reference


@pytest.mark.realdata
@pytest.mark.parametrize("case, minimum", [("001", 0.985), ("002", 0.980)])
def test_imlab_dice(shared_data, case, minimum):
    """Measured 0.9885 (001) and 0.9832 (002); a threshold + largest component baseline gets 0.981 / 0.975.

    002's reference mask stops short of the partial-volume layer over the left dome (5 mm slices) and includes more
    of the hilar vessels than our closing does: 0.985 is not reached there (reported, not hidden).
    """
    ct, reference = _imlab(shared_data, case)
    a = _arr(segment_lungs_classic(ct.image))
    assert dice(a > 0, reference) >= minimum


@pytest.mark.realdata
@pytest.mark.parametrize("case", ["001", "002"])
def test_imlab_right_lung_is_label_1(shared_data, case):
    """imlab headers are LAS; after the canonical LPS reorientation the liver (patient's right) is at low x."""
    ct, reference = _imlab(shared_data, case)
    a = _arr(segment_lungs_classic(ct.image))
    values = _arr(ct.image)
    liver = (values > 40) & (values < 90)
    low_slices = slice(0, 8)
    # the liver dome sits under the right lung: the soft tissue of the lowest slices leans to low x
    assert np.nonzero(liver[low_slices])[2].mean() < a.shape[2] / 2
    assert np.nonzero(a == 1)[2].mean() < np.nonzero(a == 2)[2].mean()
    # and each label holds one side of the reference (which has no sides)
    mid = a.shape[2] // 2
    assert (reference & (a == 1))[:, :, :mid].sum() > 0.95 * (a == 1).sum()
    assert (reference & (a == 2))[:, :, mid:].sum() > 0.95 * (a == 2).sum()


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["0.dcm", "1.dcm"])
def test_lungmask_testdata_slices_right_left(shared_data, name):
    """A COVID-19 slice (prone): right lung at low x; R231 counts 64752 / 36536 over the two slices."""
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(shared_data / "lungmask-testdata" / "tests" / "testdata" / name)
    a = _arr(segment_lungs_classic(ct.image))[0]
    right, left = int((a == 1).sum()), int((a == 2).sum())
    assert 0.85 * 32376 < right < 1.1 * 32376  # R231's right lung per slice
    assert 0.6 * 18268 < left < 1.1 * 18268  # the dense posterior left lung is partly left out
    # LPS is the patient's frame: prone or supine, the right lung is at low x
    assert np.nonzero(a == 1)[1].mean() < a.shape[1] / 2 < np.nonzero(a == 2)[1].mean()


@pytest.mark.realdata
def test_upper_abdomen_dicom_series_is_refused(shared_data):
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(shared_data / "totalsegmentator" / "tests" / "reference_files" / "example_ct_dicom")
    with pytest.raises(InputError, match="no lungs found"):
        segment_lungs_classic(ct.image)


@pytest.mark.realdata
def test_display_windowed_stack_right_left(shared_data):
    """A Radiopaedia COVID-19 JPEG stack (no HU, no spacing): two lungs, right at low x, adult-sized."""
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(shared_data / "radiopaedia-stacks" / "74576")
    assert ct.display_windowed
    labels = segment_lungs_classic(ct.image, display_windowed=True)
    a = _arr(labels)
    assert np.nonzero(a == 1)[2].mean() < a.shape[2] / 2 < np.nonzero(a == 2)[2].mean()
    v = lung_volumes_ml(labels)
    assert 0.6 < v["right_ml"] / v["left_ml"] < 1.6


# ------------------------------------------------------------------------------------------------ crops (issue 18)
def _crops(lungs: np.ndarray, cut: int) -> dict[str, tuple[slice, slice]]:
    """(y, x) crops whose lungs touch the image edge: cut `cut` voxels into both lungs from the sides, or into the
    lungs' box from all four sides."""
    _, ys, xs = np.nonzero(lungs)
    return {"sides": (slice(0, lungs.shape[1]), slice(xs.min() + cut, xs.max() + 1 - cut)),
            "box": (slice(ys.min() + cut, ys.max() + 1 - cut), slice(xs.min() + cut, xs.max() + 1 - cut))}


def _crop_dices(image: sitk.Image, full: np.ndarray, cut: int) -> dict[str, float]:
    out = {}
    for name, (ys, xs) in _crops(full, cut).items():
        cropped = _arr(segment_lungs_classic(image[xs, ys, :])) > 0
        out[name] = dice(cropped, full[:, ys, xs])
    return out


def test_demo_cropped_until_its_lungs_touch_the_edge(demo, demo_labels):
    """The same lungs come out of a crop cut into them as out of the whole CT (issue 18: Dice >= 0.97)."""
    dices = _crop_dices(demo.image, _arr(demo_labels) > 0, cut=4)
    assert min(dices.values()) >= 0.97, dices


@pytest.mark.realdata
@pytest.mark.parametrize("case", ["001", "002"])
def test_imlab_cropped_until_its_lungs_touch_the_edge(shared_data, case):
    """Measured 0.995-1.000 (cuts of 5 and 15 voxels from the sides, the lungs' box and 5 voxels into it); 002 lies
    on a mattress that a crop narrower than the patient turns into a band from side to side
    (airspace._side_to_side_bands). Cuts of 10 and 15 voxels (30, 45 mm) into the box from all four sides leave no
    chest wall in view and lose the lung outside the mediastinum's outline (0.957/0.931 and 0.66/0.62, the price of
    airspace._inside_body_outline; lungs-classic card)."""
    ct, _ = _imlab(shared_data, case)
    full = _arr(segment_lungs_classic(ct.image)) > 0
    for cut, kinds in ((5, ("sides", "box")), (15, ("sides",)), (0, ("box",))):
        dices = {k: d for k, d in _crop_dices(ct.image, full, cut).items() if k in kinds}
        assert min(dices.values()) >= 0.97, (cut, dices)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["radiopaedia-stacks/74867", "covid-ct/images/COVID/2020.01.24.919183-p27-132.png"])
def test_table_under_the_patient_is_not_lung(shared_data, name):
    """A slanted table whose underside the image edges wall in (a Radiopaedia stack narrower than the patient, a
    COVID-CT figure): the underside lies outside the body's outline and is not lung, so no lung reaches the lowest
    tenth of the image (before airspace._inside_body_outline the mask ran down to the bottom edge; measured lowest
    lung row 0.82 and 0.72 of the height)."""
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(shared_data / name)
    lungs = _arr(segment_lungs_classic(ct.image, display_windowed=ct.display_windowed)) > 0
    rows = np.nonzero(lungs)[1]
    assert rows.size and rows.max() < 0.9 * lungs.shape[1]


@pytest.mark.realdata
def test_semiseg_figures_are_not_refused(shared_data):
    """The 50 radiologist-labelled COVID-SemiSeg slices are tight crops whose lungs touch the edge: each gets a lung
    mask (28 were refused before issue 18), covering a plausible share of the figure (measured median 0.53)."""
    from CovidCTAnalysis.io import load_ct

    folder = shared_data / "covid-semiseg" / "TrainingSet" / "LungInfection-Train" / "Doctor-label" / "Imgs"
    files = sorted(folder.glob("*.jpg"))
    assert len(files) == 50
    shares = []
    for path in files:
        ct = load_ct(path)
        shares.append((_arr(segment_lungs_classic(ct.image, display_windowed=ct.display_windowed)) > 0).mean())
    assert min(shares) > 0.05 and 0.35 < float(np.median(shares)) < 0.7


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["114.png", "116.png", "118.png"])
def test_mediastinal_window_figures_do_not_fail(shared_data, name):
    """COVID-CT figures shown in a mediastinal window (lungs as black as the air around the body): lungs-classic
    found only a small pocket astride the midline, gave it no side, and failed with an IndexError. It now labels the
    pocket, and analyze reports what it found."""
    from CovidCTAnalysis.errors import LungsNotFoundError
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(shared_data / "covid-ct" / "images" / "NonCOVID" / name)
    try:
        labels = _arr(segment_lungs_classic(ct.image, display_windowed=ct.display_windowed))
    except LungsNotFoundError:
        return
    assert set(np.unique(labels)) - {0} <= {1, 2} and labels.any()
