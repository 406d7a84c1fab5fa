"""Dice / sensitivity / specificity for infection and per class, per slice and pooled; the training loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from CovidCTAnalysis.lesions.constants import IGNORE, INFECTION_UNKNOWN_CLASS
from CovidCTAnalysis.lesions.metrics import confusion, summarize
from CovidCTAnalysis.lesions.training import lesion_loss


def test_confusion_and_summary_on_known_masks():
    truth = np.zeros((10, 10), np.uint8)
    truth[0:4, 0:5] = 1   # 20 GGO
    truth[5:7, 0:5] = 2   # 10 consolidation
    pred = np.zeros_like(truth)
    pred[0:4, 0:4] = 1    # 16 GGO correct
    pred[5:7, 0:5] = 1    # consolidation called GGO: infection right, class wrong
    c = confusion(pred, truth)
    assert c["infection"].tolist() == [26, 0, 4, 70]
    assert c["ggo"].tolist() == [16, 10, 4, 70]
    assert c["consolidation"].tolist() == [0, 0, 10, 90]
    s = summarize([c])
    assert s["infection"]["dice"] == pytest.approx(52 / 56)
    assert s["ggo"]["dice"] == pytest.approx(32 / 46)
    assert s["consolidation"]["dice"] == 0.0
    assert s["infection"]["sensitivity"] == pytest.approx(26 / 30)
    assert s["ggo"]["specificity"] == pytest.approx(70 / 80)


def test_slices_without_a_class_do_not_count_for_its_mean_dice():
    t1 = np.zeros((4, 4), np.uint8)
    t1[0, :] = 2
    t2 = np.zeros((4, 4), np.uint8)      # no consolidation in truth
    p2 = np.zeros((4, 4), np.uint8)
    p2[3, :2] = 2                        # two false positives
    s = summarize([confusion(t1, t1), confusion(p2, t2)])
    assert s["consolidation"]["dice"] == 1.0                      # only slice 1 has the class
    assert s["consolidation"]["slices_with_class"] == 1
    assert s["consolidation"]["pooled_dice"] == pytest.approx(8 / 10)
    assert s["consolidation"]["specificity"] == pytest.approx((1.0 + 14 / 16) / 2)
    assert s["ggo"]["slices_with_class"] == 0 and math.isnan(s["ggo"]["dice"])


def test_loss_uses_the_infection_marginal_for_unknown_class():
    # logits favour GGO everywhere: a GGO target and an "infection, class unknown" target both cost little;
    # a consolidation target costs more; ignored pixels cost nothing
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 1] = 5.0
    ggo = torch.ones(1, 4, 4, dtype=torch.long)
    unknown = torch.full((1, 4, 4), INFECTION_UNKNOWN_CLASS, dtype=torch.long)
    cons = torch.full((1, 4, 4), 2, dtype=torch.long)
    l_ggo, l_unknown, l_cons = (float(lesion_loss(logits, t)) for t in (ggo, unknown, cons))
    assert l_unknown < 0.1 and l_ggo < 0.1
    assert l_cons > 2.0
    ignored = torch.full((1, 4, 4), IGNORE, dtype=torch.long)
    assert float(lesion_loss(logits, ignored)) == pytest.approx(0.0, abs=1e-6)


def test_volume_error_is_signed_percent_of_the_truth_and_nan_without_truth():
    from CovidCTAnalysis.lesions.metrics import volume_error_percent

    truth = {"ggo_ml": 50.0, "consolidation_ml": 0.0, "total_ml": 50.0}
    err = volume_error_percent({"ggo_ml": 40.0, "consolidation_ml": 5.0, "total_ml": 45.0}, truth)
    assert err["ggo"] == -20.0 and err["total"] == -10.0
    assert err["consolidation"] != err["consolidation"]      # nan: no truth to compare with
