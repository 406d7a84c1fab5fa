"""Fitting a classifier's calibration on its validation predictions (issue 22), for the registry and the card.

Platt scaling (a logistic regression on the logit of the raw probability: slope and intercept, so it can also move
a classifier that calls too many cases positive) or temperature scaling (one divisor of the logit: only sharpens
or softens). Both are fitted by maximum likelihood (scikit-learn, scipy). The ECE after calibration is reported
twice: in sample (the calibration fitted and judged on the same predictions) and cross-validated (fitted on the
other folds, patient-grouped when groups are given), which is the honest number for the card.

An ECE measured on a few hundred cases is noisy even for a perfectly calibrated classifier (a bin of 50 cases
misses its mean probability by about 0.07 by chance). ``ece_sampling`` measures that floor: it draws labels from the
calibrated probabilities themselves and reports the ECE such labels give, so the card can say whether a calibration
that misses the 0.05 target is distinguishable from a calibrated one at this sample size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..models.calibration import EPSILON, calibrate
from .metrics import calibration as reliability


def _logits(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


def fit_platt(y, p) -> dict:
    """{"method": "platt", "a", "b"}: sigmoid(a * logit(p) + b) by (nearly unregularized) logistic regression."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, max_iter=1000).fit(_logits(p)[:, None], np.asarray(y, dtype=int))
    return {"method": "platt", "a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}


def fit_temperature(y, p) -> dict:
    """{"method": "temperature", "temperature"}: the T > 0 minimizing the log loss of sigmoid(logit(p) / T)."""
    from scipy.optimize import minimize_scalar

    z, y = _logits(p), np.asarray(y, dtype=float)

    def nll(log_t: float) -> float:
        q = np.clip(1 / (1 + np.exp(-z / np.exp(log_t))), EPSILON, 1 - EPSILON)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    best = minimize_scalar(nll, bounds=(-5, 5), method="bounded")
    return {"method": "temperature", "temperature": float(np.exp(best.x))}


FITS = {"platt": fit_platt, "temperature": fit_temperature}


def apply(calibration: dict, p) -> np.ndarray:
    return np.array([calibrate(calibration, v) for v in np.asarray(p, dtype=float)])


def cross_validated(y, p, groups: Sequence | None, method: str, folds: int = 5,
                    fold_of: Sequence[int] | None = None) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each fold calibrated by a fit on the others (grouped by patient).
    ``fold_of``: the folds to use (each case's fold number, e.g. the classifier's own CV folds, so that every fold
    of that CV is calibrated by one fit and keeps its ranking) instead of ``folds`` new grouped ones."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    if fold_of is not None:
        fold_of = np.asarray(fold_of)
        splitter = [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in np.unique(fold_of)]
    else:
        splitter = (GroupKFold(n_splits=folds).split(p, y, groups) if groups is not None
                    else StratifiedKFold(n_splits=folds, shuffle=True, random_state=0).split(p, y))
    out = np.empty_like(p)
    for train, test in splitter:
        out[test] = apply(FITS[method](y[train], p[train]), p[test])
    return out


def ece_sampling(y, p, draws: int = 2000, seed: int = 0) -> dict:
    """How the ECE of (y, p) compares with that of a perfectly calibrated classifier with the same probabilities on
    as many cases: labels drawn as Bernoulli(p) ``draws`` times. {"median", "p95": of those ECEs, "p_value": the
    share of draws whose ECE is at least the observed one} (small: miscalibration the sample size cannot explain)."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    observed = reliability(y, p)["ece"]
    rng = np.random.default_rng(seed)
    simulated = np.array([reliability((rng.random(p.size) < p).astype(int), p)["ece"] for _ in range(draws)])
    return {"median": float(np.median(simulated)), "p95": float(np.quantile(simulated, 0.95)),
            "p_value": float(np.mean(simulated >= observed))}


def fit_and_report(y, p, groups: Sequence | None = None, method: str = "platt", folds: int = 5
                   ) -> tuple[dict, np.ndarray]:
    """(report, out-of-fold calibrated probabilities). The report: the fit on all predictions (what the registry
    stores) plus n, ECE before, after (in sample) and after (cross-validated), and the reliability bins before and
    after (cross-validated) for the card, and ``ece_after_cv_sampling`` (``ece_sampling`` of the cross-validated
    probabilities)."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    fitted = FITS[method](y, p)
    after = apply(fitted, p)
    oof = cross_validated(y, p, groups, method, folds)
    before_bins, oof_bins = reliability(y, p), reliability(y, oof)
    return {**fitted, "n": int(y.size), "positives": int(y.sum()),
            "ece_before": before_bins["ece"], "ece_after_in_sample": reliability(y, after)["ece"],
            "ece_after_cv": oof_bins["ece"], "cv_folds": folds,
            "ece_after_cv_sampling": ece_sampling(y, oof),
            "reliability_before": before_bins, "reliability_after_cv": oof_bins}, oof
