"""The generated demo chest CT: determinism, geometry, HU per structure, truth consistency, lesion list, writing."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CovidCTAnalysis import labels
from CovidCTAnalysis.demo import DemoCase, DemoLesion, make_demo_ct


def arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def index_of(image: sitk.Image, point_mm) -> tuple[int, int, int]:
    """(z, y, x) array index of the voxel nearest a physical LPS point."""
    x, y, z = image.TransformPhysicalPointToIndex(tuple(float(v) for v in point_mm))
    return z, y, x


@pytest.fixture(scope="module")
def case() -> DemoCase:
    return make_demo_ct((128, 128, 48), seed=0)


@pytest.fixture(scope="module")
def small() -> DemoCase:
    return make_demo_ct((64, 64, 32), seed=1)


# ------------------------------------------------------------------------------------------- determinism
def test_same_seed_same_case():
    a, b = make_demo_ct((48, 48, 24), seed=3), make_demo_ct((48, 48, 24), seed=3)
    assert np.array_equal(arr(a.image), arr(b.image))
    assert np.array_equal(arr(a.lungs), arr(b.lungs))
    assert np.array_equal(arr(a.lesions), arr(b.lesions))
    assert a.lesion_list == b.lesion_list
    assert a.seed == 3


def test_different_seeds_differ():
    a, b = make_demo_ct((48, 48, 24), seed=3), make_demo_ct((48, 48, 24), seed=4)
    assert not np.array_equal(arr(a.lungs), arr(b.lungs))
    assert a.lesion_list != b.lesion_list
    assert np.abs(arr(a.image) - arr(b.image)).mean() > 5.0


def test_no_lesions_same_patient(small):
    clean = make_demo_ct((64, 64, 32), seed=1, lesions=False)
    assert clean.lesion_list == ()
    assert not arr(clean.lesions).any()
    assert np.array_equal(arr(clean.lungs), arr(small.lungs))
    diff = arr(clean.image) != arr(small.image)
    distance = ndimage.distance_transform_edt(arr(small.lesions) == 0)  # voxels from the nearest lesion voxel
    assert diff.any() and distance[diff].max() < 3.0  # only lesions, their soft margins and the blur changed


@pytest.mark.parametrize("bad", [dict(seed=-1), dict(seed=1.5), dict(size=(64, 64)), dict(size=(64, 0, 32)),
                                 dict(spacing=(1.0, -1.0, 1.0))])
def test_bad_arguments(bad):
    args = dict(size=(32, 32, 16), seed=0) | bad
    with pytest.raises(ValueError):
        make_demo_ct(**args)


# ------------------------------------------------------------------------------------------- geometry
def test_canonical_grid(small):
    img = small.image
    assert img.GetSize() == (64, 64, 32)
    assert img.GetPixelID() == sitk.sitkFloat32
    assert img.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert img.GetSpacing() == pytest.approx((350 / 64, 350 / 64, 300 / 32))
    for truth in (small.lungs, small.lesions):
        assert truth.GetPixelID() == sitk.sitkUInt8
        assert truth.GetSize() == img.GetSize()
        assert truth.GetSpacing() == img.GetSpacing()
        assert truth.GetOrigin() == img.GetOrigin()
        assert truth.GetDirection() == img.GetDirection()
    # field of view centred in-plane: the body is centred and fully inside
    body = arr(img) > -500
    xs = np.nonzero(body.any(axis=(0, 1)))[0]
    assert xs.min() > 0 and xs.max() < 63
    assert abs((xs.min() + xs.max()) / 2 - 31.5) < 2


def test_explicit_spacing():
    c = make_demo_ct((40, 30, 20), spacing=(8.0, 9.0, 12.0), seed=0)
    assert c.image.GetSize() == (40, 30, 20)
    assert c.image.GetSpacing() == (8.0, 9.0, 12.0)
    assert c.lungs.GetSpacing() == (8.0, 9.0, 12.0)


# ------------------------------------------------------------------------------------------- HU
def test_hu_per_structure(case):
    img, lungs, lesions = arr(case.image), arr(case.lungs), arr(case.lesions)
    parenchyma = (lungs > 0) & (lesions == 0)
    assert -880 < np.median(img[parenchyma]) < -820
    corners = np.concatenate([img[:, :6, :6].ravel(), img[:, -6:, -6:].ravel()])
    assert abs(np.median(corners) + 1000) < 10
    # heart (no contrast: blood and myocardium ~ +40), a box at its centre
    z, y, x = index_of(case.image, (28.0, -34.0, 102.0))
    heart = img[z - 1:z + 2, y - 3:y + 4, x - 3:x + 4]
    assert 20 < np.median(heart) < 60
    assert 10 < heart.std() < 35           # CT-like noise
    # spine: a vertebral body on the midline, posterior; cortical bone brighter than 300 HU
    z, y, x = index_of(case.image, (0.0, 46.0, 150.0))
    marrow = img[z - 1:z + 2, y - 2:y + 3, x - 2:x + 3]
    vertebra = img[z - 1:z + 2, y - 9:y + 10, x - 9:x + 10]
    assert 150 < np.median(marrow) < 400 and np.percentile(vertebra, 95) > 300
    # subcutaneous fat exists: a band of voxels around -100 inside the body
    body = ndimage.binary_fill_holes(img > -500)
    assert ((img > -140) & (img < -60) & body).sum() > 0.02 * body.sum()


def test_lesion_hu(case):
    img, lesions = arr(case.image), arr(case.lesions)
    core = lambda m: ndimage.binary_erosion(m)  # noqa: E731 - inner voxels (no soft margin)
    ggo, cons = img[core(lesions == labels.GGO)], img[core(lesions == labels.CONSOLIDATION)]
    assert len(ggo) > 50 and len(cons) > 20
    assert -720 < np.median(ggo) < -430
    assert -100 < np.median(cons) < 70


# ------------------------------------------------------------------------------------------- truth
def test_truth_labels_and_subset(case):
    lungs, lesions = arr(case.lungs), arr(case.lesions)
    assert set(np.unique(lungs)) == {0, 1, 2}
    assert set(np.unique(lesions)) == {0, labels.GGO, labels.CONSOLIDATION}
    assert not ((lesions > 0) & (lungs == 0)).any()


def test_right_lung_on_patient_right_and_larger(case):
    lungs = arr(case.lungs)
    xr = np.nonzero(lungs == labels.RIGHT_LUNG)[2].mean()
    xl = np.nonzero(lungs == labels.LEFT_LUNG)[2].mean()
    assert xr < lungs.shape[2] / 2 < xl            # LPS: x grows toward the patient's left
    voxel_ml = np.prod(case.lungs.GetSpacing()) / 1000
    right, left = (lungs == 1).sum() * voxel_ml, (lungs == 2).sum() * voxel_ml
    assert right > 1.03 * left
    assert 3500 < right + left < 7500              # adult lungs at inspiration


def test_lungs_meet_at_anterior_junction():
    c = make_demo_ct((256, 256, 96), seed=0, lesions=False)
    lungs = arr(c.lungs)
    right, left = lungs == 1, lungs == 2

    def within(gap):  # a right-lung voxel with a left-lung voxel `gap` voxels further toward +x (patient left)
        return (right[:, :, :-gap - 1] & left[:, :, gap + 1:]).any(axis=(1, 2))

    touching = within(0)
    assert 1 <= touching.sum() <= 6                      # the lungs touch on a few slices only
    assert (within(0) | within(1) | within(2)).sum() > touching.sum()   # a 1-2 voxel line elsewhere


def test_lung_shape_apex_and_base(case):
    lungs = arr(case.lungs)
    area = (lungs > 0).sum(axis=(1, 2))
    zs = np.nonzero(area)[0]
    top, bottom = zs.max(), zs.min()
    # a narrow apex below the top of the field of view (which includes the root of the neck)
    assert area[top] < 0.15 * area.max() and area[top - 1] < 0.4 * area.max()
    assert top < lungs.shape[0] - 1 and bottom > 0   # upper abdomen below the lung bases
    # the lung bases are domed: the lowest lung voxels lie in the posterior costophrenic recesses
    ys = np.nonzero(lungs[bottom:bottom + 2] > 0)[1]
    assert ys.mean() > lungs.shape[1] / 2 + 5


def test_trachea_air_above_carina(case):
    img, lungs = arr(case.image), arr(case.lungs)
    # the trachea (lumen radius ~9 mm) runs on the midline from y ~ -12 mm at z 245 to the carina at y ~ +2, z ~ 190
    for zmm in (205.0, 225.0, 245.0):
        yc = -12.0 + (245.0 - zmm) * 14.0 / 55.0
        z, y0, x0 = index_of(case.image, (-4.5, yc - 4.5, zmm))
        _, y1, x1 = index_of(case.image, (4.5, yc + 4.5, zmm))
        box_img, box_lungs = img[z, y0:y1 + 1, x0:x1 + 1], lungs[z, y0:y1 + 1, x0:x1 + 1]
        assert np.median(box_img) < -850
        assert not box_lungs.any()


# ------------------------------------------------------------------------------------------- lesion list
def test_lesion_list_matches_truth(case):
    lesions = arr(case.lesions)
    voxel_ml = np.prod(case.image.GetSpacing()) / 1000
    assert len(case.lesion_list) >= 4
    assert all(isinstance(l, DemoLesion) for l in case.lesion_list)
    for label in (labels.GGO, labels.CONSOLIDATION):
        listed = sum(l.volume_ml for l in case.lesion_list if l.label == label)
        assert listed == pytest.approx((lesions == label).sum() * voxel_ml, rel=1e-9)
    for l in case.lesion_list:
        assert 1.5 <= l.volume_ml <= 45.0
        assert l.side in ("right", "left")
        z, y, x = index_of(case.image, l.centre_mm)
        side = labels.RIGHT_LUNG if l.side == "right" else labels.LEFT_LUNG
        assert arr(case.lungs)[z, y, x] == side or lesions[max(z - 2, 0):z + 3, y - 2:y + 3, x - 2:x + 3].any()
    assert {l.side for l in case.lesion_list} == {"right", "left"}


def test_lesion_volumes_are_voxel_counts(small):
    lesions, lungs = arr(small.lesions), arr(small.lungs)
    voxel_ml = np.prod(small.image.GetSpacing()) / 1000
    for l in small.lesion_list:
        n = l.volume_ml / voxel_ml
        assert n == pytest.approx(round(n), abs=1e-6)  # an exact number of voxels
    comps, n = ndimage.label(lesions > 0)
    assert n >= 1
    sides = lungs[lesions > 0]
    assert set(np.unique(sides)) <= {1, 2}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pleural_lesions(seed):
    c = make_demo_ct((64, 64, 32), seed=seed)
    img, lungs, lesions = arr(c.image), arr(c.lungs), arr(c.lesions)
    body = ndimage.binary_fill_holes(img > -500, structure=np.ones((1, 3, 3)))
    chest_wall = body & (lungs == 0)
    for label in (labels.GGO, labels.CONSOLIDATION):
        listed = [l for l in c.lesion_list if l.label == label and l.touches_pleura]
        assert listed, f"no pleural lesion of label {label}"
        # independently: some lesion voxel of that label is 6-adjacent to non-lung body tissue
        ring = ndimage.binary_dilation(lesions == label) & ~(lesions == label)
        assert (ring & chest_wall).any()
