"""The one cross-validation loop of the slice trainers (slice_resnet.train.out_of_fold): patient-disjoint folds, each
figure predicted once by a model that did not see its patient, per-fold and pooled scores."""

import numpy as np
import pytest

from CovidCTAnalysis.classifiers.slice_resnet.train import FOLD_SEED, folds, out_of_fold


def _data():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 3)  # 40 patients, 3 figures each
    y = np.repeat(rng.integers(0, 2, 40), 3)
    return y, groups


def test_every_figure_predicted_once_by_a_model_that_did_not_see_its_patient():
    y, groups = _data()
    seen = []

    def fit_predict(i, train_idx, test):
        assert not set(groups[train_idx]) & set(groups[test])
        seen.append(test)
        return y[test] * 0.8 + 0.1  # a perfect ranking

    cv = out_of_fold(y, groups, 5, fit_predict, say=lambda m: None)
    assert sorted(np.concatenate(seen).tolist()) == list(range(len(y)))
    assert sorted(set(cv["fold_of"])) == [0, 1, 2, 3, 4]
    assert np.allclose(cv["oof"], y * 0.8 + 0.1)
    assert [f["fold"] for f in cv["folds"]] == [1, 2, 3, 4, 5] and cv["auc_mean"] == 1.0 and cv["auc_sd"] == 0.0
    assert cv["pooled"]["n"] == len(y)


def test_only_some_folds():
    y, groups = _data()
    cv = out_of_fold(y, groups, 5, lambda i, tr, te: np.full(len(te), 0.5), say=lambda m: None, only=(2,))
    assert [f["fold"] for f in cv["folds"]] == [2] and cv["auc_sd"] is None
    scored = np.array(cv["fold_of"]) >= 0
    assert cv["pooled"]["n"] == scored.sum() < len(y) and np.isnan(np.array(cv["oof"])[~scored]).all()
    assert cv["folds"][0]["roc_auc"] == pytest.approx(0.5)


def test_folds_are_the_fixed_seeds_for_every_trainer():
    """slice-resnet, da-cmil, cvae-netvlad and lobe-patch score the same figures in each fold whatever their runs'
    seeds: the consensus of their out-of-fold predictions needs it (scripts/consensus_validation.py)."""
    y, groups = _data()
    cv = out_of_fold(y, groups, 5, lambda i, tr, te: np.full(len(te), 0.5), say=lambda m: None)
    expected = np.full(len(y), -1)
    for i, test in enumerate(folds(y, groups, 5, FOLD_SEED)):
        expected[test] = i
    assert cv["fold_of"] == expected.tolist()
    assert FOLD_SEED == 0  # the seed of every committed CV record


def _record(y, groups, p, mirrored=None):
    fold_of = np.zeros(len(y), int)
    for i, test in enumerate(folds(y, groups, 5, FOLD_SEED)):
        fold_of[test] = i
    record = {"names": [f"f{k}" for k in range(len(y))], "labels": y.tolist(), "groups": groups.astype(str).tolist(),
              "fold_of": fold_of.tolist(), "oof": p.tolist()}
    if mirrored is not None:
        record["oof_mirrored"] = mirrored.tolist()
    return record


def test_two_records_compared_paired_on_the_same_figures():
    """scripts/compare_cv_records.py: fold and pooled AUC of both, the gain with a patient-bootstrap CI; a record
    whose mirror view is asked for and missing, or which holds other figures, is refused."""
    from conftest import load_script

    script = load_script("compare_cv_records")
    y, groups = _data()
    noise = np.random.default_rng(1).random(len(y))
    weak, strong = (0.3 * y + noise) / 1.3, (2.0 * y + noise) / 3.0  # the second ranks better
    base, other = _record(y, groups, weak, mirrored=strong), _record(y, groups, strong)
    result = script.compare(base, other, n_boot=200)
    assert result["other"]["pooled"] > result["base"]["pooled"] and result["pooled_gain"] > 0
    low, high = result["pooled_gain_ci95"]
    assert 0 < low <= result["pooled_gain"] <= high
    assert script.compare(base, base, other_view="mirrored", n_boot=20)["other"] == result["other"]  # mirror view read
    assert script.compare(base, base, other_view="mean", n_boot=20)["other"]["pooled"] == pytest.approx(
        script.compare(base, other, ensemble=True, n_boot=20)["other"]["pooled"])  # flip mean == ensemble of the views
    with pytest.raises(ValueError, match="oof_mirrored"):
        script.compare(other, other, other_view="mirrored")
    shuffled = dict(other, names=other["names"][::-1])
    with pytest.raises(ValueError, match="same figures"):
        script.compare(base, shuffled)
