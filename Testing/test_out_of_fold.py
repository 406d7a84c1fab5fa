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
