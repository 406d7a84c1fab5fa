"""DeCoVNet lesion localization (seed 002, §II-E) and hit rate (§II-H) on constructed volumes with known answers."""

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.decovnet import localize as L
from CovidCTAnalysis.classifiers.decovnet.infer import COVID_EVIDENCE
from CovidCTAnalysis.explain.cam import cam_map, class_weights
from CovidCTAnalysis.classifiers.decovnet.inputs import normalize_hu

LUNG_HU, DENSE_HU = -850.0, -300.0


def _lung_volume(shape=(12, 60, 90)):
    lungs = np.zeros(shape, bool)
    lungs[1:-1, 5:-5, 5:-5] = True
    ct = np.full(shape, LUNG_HU, np.float32)
    return ct, lungs


def _mottled(ct, box):
    """A ground-glass-like patch: air and dense voxels mixed in a checkerboard (high local variance)."""
    z, y, x = np.ogrid[box[0], box[1], box[2]]
    ct[box] = np.where((y + x) % 2 == 0, DENSE_HU, LUNG_HU)


def test_cam_is_the_logit_difference_weighted_features():
    features = np.zeros((2, 1, 2, 2))
    features[0, 0, 0, 0] = 1.0
    features[1, 0, 1, 1] = 2.0
    w = np.array([[0.0, 1.0], [1.0, 0.0]])  # feature 0 votes COVID, feature 1 votes non-COVID
    evidence = class_weights(w, COVID_EVIDENCE)
    cam = cam_map(features, evidence)
    assert cam[0, 0, 0] == 1.0 and cam[0, 1, 1] == 0.0  # negative evidence set to 0, max scaled to 1
    assert cam_map(np.zeros((2, 1, 2, 2)), evidence).max() == 0.0


def test_3dcc_activation_high_in_mixed_texture_low_in_clean_lung_and_at_the_lung_border():
    ct, lungs = _lung_volume()
    _mottled(ct, (slice(4, 8), slice(20, 34), slice(30, 46)))
    act = L.activation_3dcc(normalize_hu(ct), lungs)
    assert act[5, 27, 38] > 0.9
    assert act[5, 45, 75] == 0.0  # clean lung
    assert act[5, 6, 40] == 0.0  # at the border of the lung mask (outside voxels do not count)
    assert act[0].max() == 0.0  # no lung, no activation


def test_vessels_do_not_make_the_3dcc_region():
    # §II-E: the unsupervised 3DCC activation is meant for lesions, not for the vessels every lung has. A vessel
    # running through the slices is one dense voxel per 7 x 7 window (2 x sqrt(1/49 x 48/49) = 0.28); a vessel lying
    # in a slice fills 1/7 of the window (0.70), above the "std" threshold, but only in its slice: R_3dcc, the largest
    # region, is the lesion. With the component count a single vessel is one component, so "std-cc" is lower still.
    ct, lungs = _lung_volume()
    ct[:, 45, 20] = DENSE_HU  # through the slices
    ct[5, 30, 10:80] = DENSE_HU  # in one slice
    lesion = (slice(3, 9), slice(12, 22), slice(50, 62))
    _mottled(ct, lesion)
    std = L.activation_3dcc(normalize_hu(ct), lungs, kind="std")
    assert std[2, 45, 20] < 0.3 < L.ACTIVATION_THRESHOLDS["std"] < std[5, 30, 40] < 0.71
    r3dcc = L.largest_region(std >= L.ACTIVATION_THRESHOLDS["std"])
    assert r3dcc[lesion].mean() > 0.5 and not r3dcc[5, 30, 40] and not r3dcc[:, 45, 20].any()
    counted = L.activation_3dcc(normalize_hu(ct), lungs, kind="std-cc")
    assert counted[5, 30, 40] == pytest.approx(std[5, 30, 40] / L.CC_FULL, rel=1e-5)
    assert counted[5, 30, 40] < L.ACTIVATION_THRESHOLDS["std-cc"]


def test_component_count_matches_labelling_of_each_window():
    from skimage.measure import euler_number, label

    rng = np.random.default_rng(0)
    binary = rng.random((2, 30, 30)) < 0.25
    counts = L.component_count(binary, window=7)
    for z, y, x in [(0, 3, 3), (0, 15, 15), (1, 10, 22), (1, 0, 0), (0, 29, 12)]:
        crop = binary[z, max(y - 3, 0):y + 4, max(x - 3, 0):x + 4]
        # components minus holes of the cropped window, 4-connected
        assert counts[z, y, x] == euler_number(crop, connectivity=1), (z, y, x)
        assert counts[z, y, x] <= label(crop, connectivity=1).max()


def test_mottled_texture_counts_many_components():
    ct, lungs = _lung_volume()
    _mottled(ct, (slice(4, 8), slice(20, 34), slice(30, 46)))
    act = L.activation_3dcc(normalize_hu(ct), lungs, kind="std-cc")
    assert act[5, 27, 38] > 0.9 and act[5, 45, 75] == 0.0


def test_largest_3dcc_region_and_cam_overlap_pick_the_known_lesion():
    ct, lungs = _lung_volume()
    big = (slice(3, 9), slice(15, 35), slice(15, 40))
    small = (slice(4, 6), slice(40, 46), slice(65, 71))
    _mottled(ct, big)
    _mottled(ct, small)
    ct01 = normalize_hu(ct)
    cam = np.zeros(ct.shape, np.float32)
    cam[2:10, 12:38, 12:44] = 0.7  # overlaps the big lesion
    cam[3:7, 38:50, 60:76] = 1.0  # the CAM maximum, on the small lesion
    loc = L.localize(ct01, lungs, cam)
    assert loc.n_cam_regions == 2 and loc.source == "cam+3dcc"
    assert loc.r3dcc[6, 25, 27] and not loc.r3dcc[5, 43, 68].any()
    assert loc.mask[6, 25, 27] and not loc.mask[5, 43, 68]
    centre = L.centre_index(loc.mask)  # (x, y, z)
    assert centre == pytest.approx((27.5, 24.5, 5.5), abs=0.01)
    assert not (loc.mask & ~lungs).any()


def test_without_overlap_nothing_is_localized_unless_the_fallback_is_asked_for():
    ct, lungs = _lung_volume()  # no texture at all: no 3DCC region
    cam = np.zeros(ct.shape, np.float32)
    cam[2:5, 10:20, 10:20] = 0.6
    cam[6:9, 30:40, 50:60] = 0.9
    paper = L.localize(normalize_hu(ct), lungs, cam)  # §II-E: the CAM region overlapping R_3dcc, and there is none
    assert not paper.r3dcc.any() and paper.empty and paper.source == "none"
    loc = L.localize(normalize_hu(ct), lungs, cam, variant="cam+3dcc+fallback")
    assert loc.source == "cam-max"
    assert loc.mask[7, 35, 55] and not loc.mask[3, 15, 15]
    alone = L.localize(normalize_hu(ct), lungs, cam, variant="cam")  # Table V's "CAM" row
    assert alone.source == "cam" and np.array_equal(alone.mask, loc.mask)
    assert L.localize(normalize_hu(ct), lungs, cam, variant="3dcc").empty
    with pytest.raises(ValueError):
        L.localize(normalize_hu(ct), lungs, cam, variant="normgrad")


def test_3dcc_alone_returns_the_largest_activation_region():
    ct, lungs = _lung_volume()
    _mottled(ct, (slice(3, 9), slice(15, 35), slice(15, 40)))
    _mottled(ct, (slice(4, 6), slice(40, 46), slice(65, 71)))
    cam = np.zeros(ct.shape, np.float32)
    cam[3:7, 38:50, 60:76] = 1.0  # CAM on the small one
    loc = L.localize(normalize_hu(ct), lungs, cam, variant="3dcc")
    assert loc.source == "3dcc" and loc.mask[6, 25, 27] and not loc.mask[5, 43, 68]


def test_cam_without_evidence_in_the_lungs_gives_no_region():
    ct, lungs = _lung_volume()
    cam = np.zeros(ct.shape, np.float32)
    cam[0, :, :] = 1.0  # evidence only on a slice outside the lung mask
    loc = L.localize(normalize_hu(ct), lungs, cam)
    assert loc.empty and loc.source == "none"


def test_cam_peak_outside_the_lungs_is_not_the_lesion():
    # the shipped weights put their CAM maximum at the posterior edge of the model grid, outside the body; the
    # lesion must still be sought inside the lungs, relative to the strongest in-lung evidence
    ct, lungs = _lung_volume()
    cam = np.zeros(ct.shape, np.float32)
    cam[:, -4:, :] = 1.0  # outside the lung mask (rows 55..59)
    cam[3:7, 20:30, 40:55] = 0.3  # weaker, but the strongest inside the lungs
    cam[3:7, 40:44, 10:14] = 0.1  # below half of the in-lung maximum
    loc = L.localize(normalize_hu(ct), lungs, cam, variant="cam")
    assert loc.mask[5, 25, 47] and not loc.mask[5, 42, 12]
    assert not (loc.mask & ~lungs).any() and loc.n_cam_regions == 1


def test_box_from_mask_uses_voxel_edges():
    mask = np.zeros((5, 6, 7), bool)
    mask[1:3, 2:4, 3:6] = True
    box = L.box_from_mask(mask, spacing=(2.0, 1.0, 5.0), origin=(10.0, 0.0, -5.0))
    assert box == {"min_mm": [10 + 2.5 * 2, 1.5, -5 + 0.5 * 5], "max_mm": [10 + 5.5 * 2, 3.5, -5 + 2.5 * 5]}


def test_hit_rate_counts_true_positives_only():
    box = {"min_mm": [0, 0, 0], "max_mm": [10, 10, 10]}
    other = {"min_mm": [20, 20, 20], "max_mm": [30, 30, 30]}
    cases = [
        {"label": 1, "probability": 0.9, "centre_mm": (5, 5, 5), "boxes": [box]},          # hit
        {"label": 1, "probability": 0.8, "centre_mm": (25, 25, 25), "boxes": [box, other]},  # hit (second box)
        {"label": 1, "probability": 0.7, "centre_mm": (15, 5, 5), "boxes": [box]},          # miss
        {"label": 1, "probability": 0.6, "centre_mm": None, "boxes": [box]},                # miss: nothing localized
        {"label": 1, "probability": 0.2, "centre_mm": (5, 5, 5), "boxes": [box]},           # false negative: ignored
        {"label": 0, "probability": 0.9, "centre_mm": (5, 5, 5), "boxes": []},              # false positive: ignored
    ]
    assert L.hit_rate(cases) == {"hit_rate": 0.5, "hits": 2, "true_positives": 4}
    assert L.hit_rate(cases[4:])["hit_rate"] is None
    assert L.is_hit((10, 10, 10), [box]) and not L.is_hit((10.01, 10, 10), [box])
