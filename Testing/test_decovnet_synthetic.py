"""DeCoVNet's semi-synthetic 3-D data: exact lesion masks and boxes, plausible placement, lesion bank (seed 002)."""

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.decovnet import synthetic as S
from CovidCTAnalysis.classifiers.decovnet.localize import box_from_mask


def _volume(shape=(20, 64, 96), spacing=(2.0, 2.0, 4.0)):
    rng = np.random.default_rng(0)
    hu = rng.normal(-850, 15, shape).astype(np.float32)
    lungs = np.zeros(shape, np.uint8)
    lungs[2:18, 8:56, 8:44] = 1
    lungs[2:18, 8:56, 52:88] = 2
    hu[lungs == 0] = 40.0
    return S.Volume(hu, lungs, spacing)


def _disk_patch(radius=8, contrast=300.0, label=1, name="disk"):
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = (x ** 2 + y ** 2) <= radius ** 2
    labels = np.where(disk, label, 0).astype(np.uint8)
    return S.LesionPatch(name, labels, np.where(disk, contrast, 0).astype(np.float32), pixel_mm=1.0)


def test_masks_and_boxes_are_exact():
    vol = _volume()
    bank = [_disk_patch(), _disk_patch(6, 500.0, 2, "cons")]
    case = S.place_lesions(vol, bank, np.random.default_rng(4), count=4)
    assert case.label == 1 and 1 <= len(case.placed) <= 4
    changed = case.hu != vol.hu
    lesion = case.lesions > 0
    assert changed.any() and not (changed & ~lesion).any()  # nothing outside the mask changes
    assert not (lesion & (vol.lungs == 0)).any()  # lesions stay inside the lungs
    np.testing.assert_array_equal(lesion, case.instances > 0)
    for k, placed in enumerate(case.placed, start=1):
        ids = sorted(set(np.unique(case.instances)) - {0})
        voxels = case.instances == ids[k - 1]
        assert placed.voxels == int(voxels.sum())
        assert placed.box == box_from_mask(voxels, vol.spacing)
        assert placed.label in (1, 2) and placed.label == np.bincount(case.lesions[voxels]).argmax()
    # the input volume is not modified
    assert np.array_equal(vol.hu, _volume().hu)


def test_lesion_values_follow_the_transplanted_contrast():
    vol = _volume()
    vol.hu[:] = np.where(vol.lungs > 0, -850.0, 40.0)
    case = S.place_lesions(vol, [_disk_patch(10, 400.0)], np.random.default_rng(1), count=1)
    core = case.lesions > 0
    from scipy import ndimage as ndi
    core = ndi.binary_erosion(core, structure=np.ones((1, 5, 5), bool))
    assert core.any()
    # level + gain x contrast with gain in GAIN_RANGE
    lo, hi = -850 + S.GAIN_RANGE[0] * 400 - 1, -850 + S.GAIN_RANGE[1] * 400 + 1
    assert lo <= case.hu[core].min() and case.hu[core].max() <= hi
    assert np.ptp(case.hu[core]) < 5.0  # one gain per lesion (the soft edge reaches 2 voxels in by < 1 %)


def test_lesion_is_an_ellipsoid_in_z():
    vol = _volume(shape=(40, 64, 96), spacing=(1.0, 1.0, 1.0))
    vol.lungs[:] = 0
    vol.lungs[2:38, 4:60, 4:92] = 1
    case = S.place_lesions(vol, [_disk_patch(8)], np.random.default_rng(2), count=1)
    areas = case.lesions.astype(bool).sum(axis=(1, 2))
    zs = np.nonzero(areas)[0]
    centre = zs[np.argmax(areas[zs])]
    assert len(zs) >= 3 and areas[zs[0]] < areas[centre] and areas[zs[-1]] < areas[centre]


def test_placement_prefers_peripheral_posterior_lower_lung():
    vol = _volume(shape=(30, 64, 96))
    w = S.placement_weights(vol.lungs, vol.spacing)
    assert w.sum() == pytest.approx(1.0) and (w[vol.lungs == 0] == 0).all()
    z, y, x = 10, 32, 26
    assert w[z, 8, x] > w[z, y, x]  # subpleural over central
    assert w[z, 54, x] > w[z, 9, x]  # posterior (high y) over anterior
    assert w[3, y, 8] > w[16, y, 8]  # lower (low z) over upper, same distance to the pleura


def test_negative_is_the_unchanged_variant_and_generation_is_deterministic():
    vol = _volume()
    neg = S.negative(vol)
    assert neg.label == 0 and not neg.lesions.any() and np.array_equal(neg.hu, vol.hu)
    a = S.place_lesions(vol, [_disk_patch()], np.random.default_rng(9), 3)
    b = S.place_lesions(vol, [_disk_patch()], np.random.default_rng(9), 3)
    assert np.array_equal(a.hu, b.hu) and a.boxes == b.boxes


def test_patches_from_a_slice_carry_contrast_over_the_surrounding_lung():
    grey = np.full((80, 80), 200, np.uint8)  # soft tissue
    grey[10:70, 10:70] = 40  # aerated lung
    labels = np.zeros((80, 80), np.uint8)
    grey[30:45, 30:45] = 100
    labels[30:45, 30:45] = 1
    labels[60:62, 60:62] = 2  # too small: skipped
    patches = S.patches_from_slice(grey, labels, "7")
    assert len(patches) == 1
    p = patches[0]
    assert p.labels.shape == (15, 15) and (p.labels == 1).all()
    np.testing.assert_allclose(p.contrast_hu, (100 - 40) * 1500 / 255, rtol=1e-5)
    assert p.pixel_mm == pytest.approx(S.THORAX_WIDTH_MM / 80)


def test_slice_split_is_disjoint():
    splits = [S.split_of_slice(k) for k in range(50)]
    assert splits.count("test") == 10 and splits.count("train") == 40


@pytest.mark.realdata
def test_lesion_bank_from_semiseg(shared_data):
    train = S.load_lesion_bank(shared_data, "train")
    test = S.load_lesion_bank(shared_data, "test")
    assert len(train) > 100 and len(test) > 20
    assert not {p.source.split("#")[0] for p in train} & {p.source.split("#")[0] for p in test}
    assert all(p.contrast_hu[p.labels > 0].mean() >= S.MIN_CONTRAST_HU for p in train + test)


@pytest.mark.realdata
def test_pseudo_lesion_bank_keeps_its_volumes_apart(shared_data):
    """The pseudo-labelled bank splits by source CT volume (slices of one volume repeat its lesions), and none of its
    patches comes from the 50 labelled slices the heatmap harness scores on."""
    train = S.load_lesion_bank(shared_data, "train", source="pseudo")
    test = S.load_lesion_bank(shared_data, "test", source="pseudo")
    assert len(train) > 300 and len(test) > 50
    volumes = {split: {S.pseudo_volume(p.source.split("#")[0]) for p in bank}
               for split, bank in (("train", train), ("test", test))}
    assert not volumes["train"] & volumes["test"] and len(volumes["test"]) == 4
    labelled = {p.stem for p in S.semiseg_slices(shared_data)}
    assert not labelled & {p.source.split("#")[0] for p in train + test}
    assert all(set(np.unique(p.labels)) <= {0, 1} for p in train + test)
    with pytest.raises(ValueError, match="lesion source"):
        S.load_lesion_bank(shared_data, "train", source="doctor")


def test_involvement_target_adds_lesions_until_reached():
    vol = _volume()
    n_lung = int((vol.lungs > 0).sum())
    case = S.place_lesions(vol, [_disk_patch(12)], np.random.default_rng(3), involvement=0.05)
    assert (case.lesions > 0).sum() >= 0.05 * n_lung
    assert len(case.placed) > 1
    with pytest.raises(ValueError):
        S.place_lesions(vol, [_disk_patch()], np.random.default_rng(3), count=2, involvement=0.1)


def test_generated_thorax_background_takes_the_requested_size(tmp_path):
    spec = S.BackgroundSpec("demo-1", "train", "demo:1", 1)
    coarse = S.load_background(tmp_path, spec, demo_size=(48, 48, 24))
    fine = S.load_background(tmp_path, spec, demo_size=(96, 96, 24))
    assert coarse.hu.shape == coarse.lungs.shape == (24, 48, 48)
    assert fine.hu.shape == (24, 96, 96)
    assert fine.spacing[0] == pytest.approx(coarse.spacing[0] / 2)
    assert fine.spacing[2] == pytest.approx(coarse.spacing[2])
    assert (fine.lungs > 0).any() and (coarse.lungs > 0).any()
