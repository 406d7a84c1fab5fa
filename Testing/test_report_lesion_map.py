"""The lesion maps of report.html and report.pdf (pipeline/report_images.py): every lesion of a CT projected from
the front, the side and the feet onto the lungs' silhouette, oriented as the captions say."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from CovidCTAnalysis.labels import CONSOLIDATION, GGO, LESION_SEGMENTS, LEFT_LUNG, RIGHT_LUNG
from CovidCTAnalysis.pipeline.report_images import key_figures, lesion_map_figures

GGO_RGB = np.round(np.array(LESION_SEGMENTS[0].color) * 255)
CONSOLIDATION_RGB = np.round(np.array(LESION_SEGMENTS[1].color) * 255)


def _images(shape=(40, 60, 80)):
    """Canonical LPS arrays (z, y, x): x grows to the patient's left, y to the back, z to the head."""
    lungs = np.zeros(shape, np.uint8)
    lungs[5:35, 10:50, 5:38] = RIGHT_LUNG  # patient's right: small x
    lungs[5:35, 10:50, 42:75] = LEFT_LUNG
    lesions = np.zeros(shape, np.uint8)
    lesions[28:33, 12:18, 8:14] = GGO  # right lung, near the head, at the front
    lesions[7:10, 40:46, 60:66] = CONSOLIDATION  # left lung, near the feet, at the back

    def image(a):
        img = sitk.GetImageFromArray(a)
        img.SetSpacing((1.0, 1.0, 2.0))
        return img
    return image(np.full(shape, -800, np.int16)), image(lungs), image(lesions)


def _where(rgb, colour):
    rows, cols = np.nonzero(np.all(np.abs(rgb.astype(int) - colour) <= 1, axis=2))
    return rows.mean() / rgb.shape[0], cols.mean() / rgb.shape[1]


def test_maps_place_each_lesion_as_the_captions_say():
    ct, lungs, lesions = _images()
    front, side, above = lesion_map_figures(ct, lungs, lesions)
    assert "front view" in front[0] and "side view" in side[0] and "from the feet" in above[0]
    # front: head up, patient's right on the left
    up, left = _where(front[1], GGO_RGB)
    down, right = _where(front[1], CONSOLIDATION_RGB)
    assert up < 0.5 < down and left < 0.5 < right
    # side: head up, front on the left
    up, front_ = _where(side[1], GGO_RGB)
    down, back = _where(side[1], CONSOLIDATION_RGB)
    assert up < 0.5 < down and front_ < 0.5 < back
    # from the feet, as axial slices are shown: front up, patient's right on the left
    front_, left = _where(above[1], GGO_RGB)
    back, right = _where(above[1], CONSOLIDATION_RGB)
    assert front_ < 0.5 < back and left < 0.5 < right
    # physical pixel sizes: 2 mm slices, 1 mm in-plane
    assert front[2] == (2.0, 1.0) and side[2] == (2.0, 1.0) and above[2] == (1.0, 1.0)
    # cut to the lungs with a margin, not the whole field of view
    assert front[1].shape[1] < 80


def test_a_label_the_maps_do_not_draw_gives_no_map():
    ct, lungs, lesions = _images()
    other = sitk.Cast(sitk.Multiply(sitk.Cast(lesions > 0, sitk.sitkUInt8), 9), sitk.sitkUInt8)  # label 9 only
    assert lesion_map_figures(ct, None, other) == []


def test_no_map_without_lesions_or_for_a_single_slice():
    ct, lungs, lesions = _images()
    empty = sitk.Image(lesions)
    empty = sitk.Multiply(empty, 0)
    assert lesion_map_figures(ct, lungs, empty) == []
    one = [sitk.GetImageFromArray(sitk.GetArrayFromImage(i)[20:21]) for i in (ct, lungs, lesions)]
    one[2][40, 20, 0] = GGO
    assert lesion_map_figures(*one) == []
    assert [caption for caption, _, _ in key_figures(*one) if "lesion map" in caption] == []


def test_key_figures_end_with_the_three_maps():
    captions = [caption for caption, _, _ in key_figures(*_images())]
    assert len(captions) == 5 and all("lesion map" in c for c in captions[2:])
