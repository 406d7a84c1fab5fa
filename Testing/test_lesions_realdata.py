"""The shipped lesions-unet on the fixed COVID-SemiSeg validation slices, and the SemiSeg reader (real data)."""

from __future__ import annotations

import numpy as np
import pytest

from CovidCTAnalysis.lesions import semiseg
from CovidCTAnalysis.lesions.constants import INFECTION_UNKNOWN_CLASS, VALIDATION_SLICES

pytestmark = pytest.mark.realdata

#: The model card's validation numbers minus a margin (mean per-slice Dice over the 13 validation slices).
MIN_INFECTION_DICE = 0.68
MIN_GGO_DICE = 0.62
MIN_CONSOLIDATION_DICE = 0.35


def test_fixed_split_and_labels(shared_data):
    root = shared_data / "covid-semiseg"
    train = semiseg.labelled_slices(root, "train")
    val = semiseg.labelled_slices(root, "val")
    assert len(train) == 37 and len(val) == 13
    assert sorted(int(s.name.split("-")[1]) for s in val) == sorted(VALIDATION_SLICES)
    assert not {s.name for s in train} & {s.name for s in val}
    for s in val:
        assert s.hu.shape == s.target.shape
        assert s.hu.min() >= -1350 and s.hu.max() <= 150          # lung-window mapping of 8-bit values
        assert set(np.unique(s.target)) <= {0, 1, 2}
    # display orientation: the SemiSeg crops are taller than wide (lungs one above the other); rotated, wider
    assert np.mean([s.hu.shape[1] > s.hu.shape[0] for s in train + val]) > 0.7


def test_pseudo_labels_are_infection_of_unknown_class(shared_data):
    pseudo = semiseg.pseudo_labelled_slices(shared_data / "covid-semiseg", limit=8)
    assert len(pseudo) == 8
    assert all(set(np.unique(s.target)) <= {0, INFECTION_UNKNOWN_CLASS} for s in pseudo)
    assert any((s.target == INFECTION_UNKNOWN_CLASS).any() for s in pseudo)


def test_shipped_model_reaches_its_validation_dice(shared_data):
    """Through the public API, as `covidct segment-lesions` runs a 2-D picture: one slice, no lung mask."""
    import SimpleITK as sitk
    from test_lesions_inference import shipped_network

    from CovidCTAnalysis.lesions import segment_lesions
    from CovidCTAnalysis.lesions.metrics import confusion, summarize

    net = shipped_network()
    conf = []
    for s in semiseg.labelled_slices(shared_data / "covid-semiseg", "val"):
        image = sitk.GetImageFromArray(s.hu[None])
        out = segment_lesions(image, None, display_windowed=True, net=net)
        conf.append(confusion(sitk.GetArrayFromImage(out)[0], s.target))
    m = summarize(conf)
    assert m["infection"]["dice"] >= MIN_INFECTION_DICE
    assert m["ggo"]["dice"] >= MIN_GGO_DICE
    assert m["consolidation"]["dice"] >= MIN_CONSOLIDATION_DICE
    assert m["infection"]["specificity"] > 0.9


def test_normal_lungs_in_true_hu_get_almost_no_lesions(shared_data):
    """imlab's two normal chest CTs (true HU, 3 mm pixels), through the shipped path (the density rules): under 2 %
    involvement (model card, 2.1.0: 0.48 % and 0.92 %; 1.x alone called 69 % of id001 ground glass)."""
    import SimpleITK as sitk
    from test_lesions_inference import shipped_network

    from CovidCTAnalysis.io.load import load_ct
    from CovidCTAnalysis.lesions import quantify, segment_lesions
    from CovidCTAnalysis.lungs import classic_lungs

    net = shipped_network()
    for name in ("id001", "id002"):
        image = load_ct(shared_data / "imlab-lung3d" / f"{name}-128x128x64.nii.gz").image
        found = classic_lungs(image)  # as analyze runs it: the pleural fill's dense tissue becomes consolidation
        lungs = found.labels
        q = quantify(segment_lesions(image, lungs, net=net, pleural=found.pleural), lungs)
        assert q["percent_involvement"]["total"] < 2.0, (name, q["percent_involvement"])
        assert sitk.GetArrayFromImage(lungs).any()
