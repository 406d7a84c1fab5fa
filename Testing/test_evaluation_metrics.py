"""The shared evaluation harness on constructed scores whose metrics are known exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from CovidCTAnalysis.evaluation import evaluate, metrics


def test_perfect_ranking_has_auc_one_and_zero_fpr_at_tpr95():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert metrics.roc_auc(y, p) == 1.0
    assert metrics.pr_auc(y, p) == 1.0
    assert metrics.fpr_at_tpr(y, p) == 0.0


def test_inverted_ranking_has_auc_zero_and_fpr_one():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.9, 0.8, 0.2, 0.1])
    assert metrics.roc_auc(y, p) == 0.0
    assert metrics.fpr_at_tpr(y, p) == 1.0


def test_auc_counts_ties_as_half():
    # positives 0.5 and 0.9; negatives 0.5 and 0.1: pairs (0.5,0.5)=0.5, (0.5,0.1)=1, (0.9,0.5)=1, (0.9,0.1)=1
    assert metrics.roc_auc([1, 1, 0, 0], [0.5, 0.9, 0.5, 0.1]) == pytest.approx(3.5 / 4)


def test_fpr_at_tpr95_needs_every_positive_when_fewer_than_twenty():
    # 10 positives: TPR >= 0.95 means all 10. The lowest positive (0.35) sits above 2 of the 5 negatives.
    y = np.array([1] * 10 + [0] * 5)
    p = np.array([0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.35, 0.4, 0.3, 0.2, 0.45, 0.1])
    assert metrics.fpr_at_tpr(y, p) == pytest.approx(2 / 5)


def test_counts_and_rates_at_a_threshold():
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.6, 0.2, 0.7, 0.4, 0.3, 0.2, 0.1, 0.0]
    r = metrics.at_threshold(y, p, 0.5)
    assert (r["tp"], r["fn"], r["fp"], r["tn"]) == (3, 1, 1, 5)
    assert r["accuracy"] == pytest.approx(0.8)
    assert r["sensitivity"] == pytest.approx(0.75)
    assert r["specificity"] == pytest.approx(5 / 6)
    assert r["ppv"] == pytest.approx(0.75)
    assert r["npv"] == pytest.approx(5 / 6)
    assert r["f1"] == pytest.approx(0.75)


def test_threshold_table_rows_and_undefined_ppv():
    y = [1, 1, 0, 0]
    p = [0.85, 0.45, 0.25, 0.05]
    table = metrics.threshold_table(y, p)
    assert [row["threshold"] for row in table] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    by_t = {row["threshold"]: row for row in table}
    assert by_t[0.1]["accuracy"] == 0.75 and by_t[0.1]["ppv"] == pytest.approx(2 / 3) and by_t[0.1]["npv"] == 1.0
    assert by_t[0.3]["accuracy"] == 1.0
    assert by_t[0.5]["accuracy"] == 0.75 and by_t[0.5]["ppv"] == 1.0 and by_t[0.5]["npv"] == pytest.approx(2 / 3)
    assert by_t[0.9]["ppv"] is None  # nothing predicted positive
    assert by_t[0.9]["npv"] == 0.5


def test_ece_of_perfectly_calibrated_scores_is_about_zero():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert metrics.calibration(y, p)["ece"] < 0.01


def test_ece_of_overconfident_scores_is_exact():
    # every score 0.9 but only half are positive: one bin, |0.5 - 0.9| = 0.4
    y = [1, 0] * 50
    cal = metrics.calibration(y, [0.9] * 100)
    assert cal["ece"] == pytest.approx(0.4)
    assert sum(b["count"] for b in cal["bins"]) == 100
    assert cal["bins"][9]["count"] == 100


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 120)
    p = np.clip(0.35 * y + 0.65 * rng.random(120), 0, 1)
    auc = metrics.roc_auc(y, p)
    ci = metrics.bootstrap_ci(y, p, metrics.roc_auc, n=300, seed=3)
    assert ci[0] < auc < ci[1]
    assert 0.02 < ci[1] - ci[0] < 0.4
    assert metrics.bootstrap_ci(y, p, metrics.roc_auc, n=300, seed=3) == ci


def test_bootstrap_of_a_perfect_ranking_is_degenerate_at_one():
    y = np.array([0] * 20 + [1] * 20)
    p = np.linspace(0, 1, 40)
    assert metrics.bootstrap_ci(y, p, metrics.roc_auc, n=200) == [1.0, 1.0]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        metrics.roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        metrics.roc_auc([0, 1], [0.1, 1.2])
    with pytest.raises(ValueError):
        metrics.roc_auc([0, 1], [0.1])


def test_evaluate_writes_json_and_plots(tmp_path):
    rng = np.random.default_rng(2)
    y = np.array([0] * 30 + [1] * 30)
    p = np.clip(0.4 * y + 0.6 * rng.random(60), 0, 1)
    result = evaluate(y, p, tmp_path, title="constructed", names=[f"c{i}" for i in range(60)], n_boot=100)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"]["roc_auc"]["value"] == pytest.approx(metrics.roc_auc(y, p))
    assert saved["n"] == 60 and saved["positives"] == 30 and len(saved["cases"]) == 60
    assert len(saved["threshold_table"]) == 9
    for name in ("roc.png", "pr.png", "calibration.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["figures"]["roc"] == "roc.png"
