"""Calibration of the classifiers and their consensus (issue 22): the run-time arithmetic, the fitting, the shipped
calibrations (re-fitted from the predictions they name, ECE after calibration <= 0.05), and the table row."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from CovidCTAnalysis.evaluation.calibration import apply, ece_sampling, fit_and_report, fit_platt, fit_temperature
from CovidCTAnalysis.evaluation.metrics import calibration as reliability
from CovidCTAnalysis.models import load_registry
from CovidCTAnalysis.models.calibration import calibrate, calibrated_entry, consensus

MAX_ECE = 0.05  # issue 22: ECE after calibration on validation data


def test_platt_and_temperature_formulas():
    assert calibrate(None, 0.8) == 0.8
    assert calibrate({"method": "platt", "a": 1.0, "b": 0.0}, 0.8) == pytest.approx(0.8)
    assert calibrate({"method": "platt", "a": 1.0, "b": math.log(1 / 4)}, 0.8) == pytest.approx(0.5)
    assert calibrate({"method": "temperature", "temperature": 2.0}, 0.9) == pytest.approx(0.75)
    assert calibrate({"method": "platt", "a": 1.0, "b": 0.0}, 1.0) < 1.0, "a probability of 1 stays finite"
    with pytest.raises(ValueError):
        calibrate({"method": "isotonic"}, 0.5)


def test_calibrated_entry_keeps_the_raw_result():
    entry = {"probability": 0.9, "label": "COVID-19", "heatmap": "heatmap-x.nrrd"}
    assert calibrated_entry(entry, None) is entry
    out = calibrated_entry(entry, {"method": "platt", "a": 1.0, "b": -3.0})
    assert out["probability_raw"] == 0.9 and out["label_raw"] == "COVID-19" and out["calibration"] == "platt"
    assert out["probability"] == pytest.approx(1 / (1 + math.exp(-(math.log(9) - 3))))
    assert out["label"] == "non-COVID" and out["heatmap"] == "heatmap-x.nrrd"


def test_calibration_limited_to_an_input_kind_leaves_the_other_raw():
    entry = {"probability": 0.9, "label": "COVID-19"}
    slices_only = {"method": "temperature", "temperature": 2.0, "inputs": ["slice"]}
    assert calibrated_entry(entry, slices_only, "volume") is entry
    assert calibrated_entry(entry, slices_only, "slice")["probability"] == pytest.approx(0.75)  # sqrt(9) = 3 : 1
    assert calibrated_entry(entry, {"method": "temperature", "temperature": 2.0}, "volume")["probability_raw"] == 0.9


def test_consensus_mean_and_disagreement():
    agree = consensus({"b": 0.7, "a": 0.9}, 0.5)
    assert agree == {"probability": pytest.approx(0.8), "spread": pytest.approx(0.2), "disagreement": False,
                     "threshold": 0.5, "models": ["a", "b"]}
    assert consensus({"a": 0.95, "b": 0.2}, 0.5)["disagreement"] is True
    assert consensus({}, 0.5)["probability"] is None


def test_consensus_states_its_validation_only_for_the_classifiers_it_was_measured_on():
    validated = {"models": ["b", "a"], "text": "CV AUC 0.9 on figures"}
    assert consensus({"a": 0.9, "b": 0.7}, 0.5, validated)["validation"] == "CV AUC 0.9 on figures"
    other = consensus({"a": 0.9, "b": 0.7, "c": 0.2}, 0.5, validated)["validation"]
    assert other == "not validated for this set (with c); the validated set (a, b): CV AUC 0.9 on figures"
    fewer = consensus({"a": 0.9}, 0.5, validated)["validation"]
    assert fewer.startswith("not validated for this set (without b); the validated set (a, b)")
    on_slices = dict(validated, inputs=["slice"])
    assert consensus({"a": 0.9, "b": 0.7}, 0.5, on_slices, "slice")["validation"] == "CV AUC 0.9 on figures"
    assert consensus({"a": 0.9, "b": 0.7}, 0.5, on_slices, "volume")["validation"] == (
        "not validated for this set (on a volume input); the validated set (a, b): CV AUC 0.9 on figures")
    assert "validation" not in consensus({"a": 0.9}, 0.5) and "validation" not in consensus({}, 0.5, validated)


def test_registry_consensus_validation_names_shipped_classifiers_and_its_measurement():
    """The registry's consensus line is the one scripts/consensus_validation.py measured (its json), on shipped
    classifiers whose CV predictions it read."""
    registry = load_registry()
    validated = registry.consensus["validation"]
    root = registry.path.parents[2]
    measured = json.loads((root / "Resources/Models/cards/consensus/validation.json").read_text(encoding="utf-8"))
    assert sorted(measured["models"]) == sorted(validated["models"])
    for name in validated["models"]:
        assert registry.get(name).task == "classification", name
    assert f"ROC AUC {measured['roc_auc']['consensus']['auc_mean']:.2f}" in validated["text"]
    members = [measured["roc_auc"][m]["auc_mean"] for m in validated["models"]]
    assert f"alone {min(members):.2f}-{max(members):.2f}" in validated["text"]
    if measured["chosen"] is not None:  # the rule's threshold is the one the registry uses
        assert registry.disagreement_threshold == measured["chosen"]


def test_calibration_on_given_folds_keeps_each_folds_ranking():
    """Calibrated on a classifier's own CV folds, each fold gets one monotone fit: its ROC AUC is unchanged."""
    from CovidCTAnalysis.evaluation.calibration import cross_validated
    from CovidCTAnalysis.evaluation.metrics import roc_auc

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.5 + 0.25 * (2 * y - 1) + rng.normal(0, 0.25, y.size), 0.01, 0.99)
    fold_of = np.repeat(np.arange(5), 60)
    out = cross_validated(y, p, None, "platt", fold_of=fold_of)
    for k in range(5):
        test = fold_of == k
        assert roc_auc(y[test], out[test]) == pytest.approx(roc_auc(y[test], p[test]))
    mixed = cross_validated(y, p, None, "platt")  # folds of its own: a fold of the CV mixes several fits
    assert not np.allclose(out, mixed)


def test_fits_repair_a_biased_overconfident_classifier():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    true_logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.5, y.size)
    p = 1 / (1 + np.exp(-(3 * true_logit + 2)))  # too sharp and shifted towards COVID-19, like slice-resnet
    before = reliability(y, p)["ece"]
    platt = fit_platt(y, p)
    assert before > 0.15
    assert reliability(y, apply(platt, p))["ece"] < 0.03
    assert platt["a"] == pytest.approx(1 / 3, rel=0.2)
    assert fit_temperature(y, p)["temperature"] > 1.5, "an overconfident model gets softened"
    report, oof = fit_and_report(y, p, groups=None, method="platt")
    assert report["ece_after_cv"] < 0.03 and oof.shape == p.shape


def test_ece_sampling_separates_noise_from_miscalibration():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 400)
    calibrated = (rng.random(p.size) < p).astype(int)
    honest = ece_sampling(calibrated, p)
    assert honest["p_value"] > 0.05 and 0.02 < honest["median"] < 0.08, honest
    overconfident = np.where(p > 0.5, 0.99, 0.01)  # right ranking, probabilities far too sure
    assert ece_sampling(calibrated, overconfident)["p_value"] == 0.0


def test_shipped_calibrations_are_reproducible_and_meet_the_ece_target():
    registry = load_registry()
    root = registry.path.parents[2]
    calibrated = {n: e for n, e in registry.entries.items() if e.calibration}
    assert "slice-resnet" in calibrated
    for name, entry in calibrated.items():
        cal = entry.calibration
        data = json.loads((root / cal["fitted_on"]).read_text(encoding="utf-8"))
        y, p = data["labels"], data.get("probabilities", data.get("oof"))
        groups = data.get("groups")
        if groups is None and "groups_from" in cal:  # the patient ids of the same figures, from another file
            other = json.loads((root / cal["groups_from"]).read_text(encoding="utf-8"))
            assert other["names"] == data["names"], f"{name}: groups_from lists other figures"
            groups = other["groups"]
        report, _ = fit_and_report(y, p, groups, cal["method"])
        for key in ("a", "b", "temperature", "ece_before", "ece_after_cv"):
            if key in cal:
                assert report[key] == pytest.approx(cal[key], rel=1e-4), f"{name}: {key} is stale"
        # Above the target only where a perfectly calibrated classifier would miss it as often by chance (p >= 0.05).
        sampling = report["ece_after_cv_sampling"]
        assert report["ece_after_cv"] <= MAX_ECE or sampling["p_value"] >= 0.05, (
            f"{name}: cross-validated ECE {report['ece_after_cv']:.3f}, p = {sampling['p_value']:.3f}")
        assert cal["ece_after_cv_p"] == pytest.approx(sampling["p_value"], abs=1e-9), f"{name}: p is stale"
        assert report["ece_after_cv"] < report["ece_before"]


def test_registry_states_the_disagreement_threshold():
    registry = load_registry()
    assert 0 < registry.disagreement_threshold < 1
    assert registry.consensus["chosen_on"]


def test_slicer_table_shows_calibration_and_consensus():
    pytest.importorskip("vtk", reason="the Slicer table adapter needs vtk (slicer-core)")
    from CovidCTAnalysis.mrml.tables import report_rows

    report = {"classifiers": {"a": {"probability": 0.7, "probability_raw": 0.99, "label": "COVID-19"}},
              "consensus": consensus({"a": 0.7, "b": 0.1}, 0.5)}
    rows = {r.measurement: r for r in report_rows(report)}
    assert "uncalibrated 0.990" in rows["P(COVID-19), a"].note
    assert rows["P(COVID-19), consensus of 2"].value == pytest.approx(0.4)
    assert "disagree" in rows["P(COVID-19), consensus of 2"].note
    assert "Validation, consensus" not in rows
    report["consensus"] = consensus({"a": 0.7, "b": 0.1}, 0.5, {"models": ["a", "b"], "text": "CV AUC 0.9"})
    assert {r.measurement: r for r in report_rows(report)}["Validation, consensus"].note == "CV AUC 0.9"


def test_measurements_table_carries_each_classifiers_validation():
    """The Slicer and web table show under a classifier's probability how far its weights were validated."""
    from CovidCTAnalysis.mrml.tables import report_rows

    rows = report_rows({"classifiers": {"m": {"probability": 0.7, "label": "COVID-19", "validation": "CV AUC 0.8"},
                                        "n": {"probability": 0.2, "label": "non-COVID"}}})
    names = [r.measurement for r in rows]
    assert names == ["P(COVID-19), m", "Validation, m", "P(COVID-19), n"]
    assert rows[1].note == "CV AUC 0.8"
