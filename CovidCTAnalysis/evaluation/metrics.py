"""Metrics of a binary COVID-19 classifier from labels (1 = COVID-19) and scores P(COVID-19).

What each seed reports, in one place:
- accuracy, sensitivity (TPR), specificity (TNR), F1, PPV, NPV at a threshold (a case is positive when p >= t);
- ROC AUC (scikit-learn) and PR AUC (average precision, the step-wise area scikit-learn computes; no trapezoidal
  interpolation, which would be optimistic);
- FPR at TPR = 95 % (seed 000, §Results): the smallest false-positive rate among ROC points with TPR >= 0.95;
- the threshold table 0.1 ... 0.9 with accuracy, PPV and NPV (seed 002, Table II), plus sensitivity/specificity;
- calibration: expected calibration error over ``ECE_BINS`` equal-width bins of P(COVID-19):
  ECE = sum_b n_b / N * |fraction positive in b - mean p in b| (the binary, positive-class form);
- 95 % confidence intervals by the bootstrap (seed 000: 2000 iterations): ``BOOTSTRAP`` resamples of the cases,
  stratified (positives and negatives resampled separately, so every resample has both classes and the same
  prevalence), percentile interval. Seeded: the same input gives the same interval.

Undefined values (PPV with no predicted positive, ...) are ``None`` so the JSON stays valid.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))
BOOTSTRAP = 2000
CONFIDENCE = 0.95
ECE_BINS = 10
TARGET_TPR = 0.95


def _check(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} scores")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0 (non-COVID) or 1 (COVID-19)")
    if y.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    return y, p


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def confusion(y, p, threshold: float = 0.5) -> dict[str, int]:
    y, p = _check(y, p)
    pred = p >= threshold
    return {"tp": int(np.sum(pred & (y == 1))), "fp": int(np.sum(pred & (y == 0))),
            "tn": int(np.sum(~pred & (y == 0))), "fn": int(np.sum(~pred & (y == 1)))}


def at_threshold(y, p, threshold: float = 0.5) -> dict[str, float | None]:
    """accuracy, sensitivity, specificity, PPV, NPV, F1 at ``threshold`` (+ the confusion counts)."""
    c = confusion(y, p, threshold)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    out = {
        "threshold": threshold,
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }
    out.update(c)
    return out


def roc_auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    y, p = _check(y, p)
    return float(roc_auc_score(y, p))


def pr_auc(y, p) -> float:
    from sklearn.metrics import average_precision_score

    y, p = _check(y, p)
    return float(average_precision_score(y, p))


def fpr_at_tpr(y, p, target: float = TARGET_TPR) -> float:
    """Smallest FPR of an ROC operating point whose TPR >= ``target`` (seed 000)."""
    from sklearn.metrics import roc_curve

    y, p = _check(y, p)
    fpr, tpr, _ = roc_curve(y, p)
    return float(fpr[tpr >= target - 1e-12].min())


def threshold_table(y, p, thresholds=THRESHOLDS) -> list[dict]:
    """Seed 002 Table II: per threshold accuracy, PPV, NPV (and sensitivity, specificity, counts)."""
    return [at_threshold(y, p, t) for t in thresholds]


def calibration(y, p, bins: int = ECE_BINS) -> dict:
    """ECE and the reliability-diagram bins (count, mean p, fraction positive) over equal-width bins of p."""
    y, p = _check(y, p)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        sel = index == b
        n = int(sel.sum())
        conf = float(p[sel].mean()) if n else None
        frac = float(y[sel].mean()) if n else None
        if n:
            ece += n / y.size * abs(frac - conf)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
                      "mean_probability": conf, "fraction_positive": frac})
    return {"ece": float(ece), "bins": table}


def _percentile_ci(values: np.ndarray, confidence: float) -> list[float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    a = (1 - confidence) / 2
    return [float(np.quantile(values, a)), float(np.quantile(values, 1 - a))]


def bootstrap_ci(y, p, metric: Callable[[np.ndarray, np.ndarray], float | None], n: int = BOOTSTRAP,
                 seed: int = 0, confidence: float = CONFIDENCE) -> list[float] | None:
    """Stratified percentile bootstrap interval of ``metric(y, p)`` (see module doc)."""
    y, p = _check(y, p)
    pos, neg = np.nonzero(y == 1)[0], np.nonzero(y == 0)[0]
    if pos.size == 0 or neg.size == 0:
        return None
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for i in range(n):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        v = metric(y[idx], p[idx])
        values[i] = np.nan if v is None else v
    return _percentile_ci(values, confidence)


def roc_band(y, p, n: int = BOOTSTRAP, seed: int = 0, confidence: float = CONFIDENCE, points: int = 101
             ) -> dict | None:
    """The ROC curve with its bootstrap 95 % band, from one set of resamples (those of ``bootstrap_ci`` with the
    same ``n`` and ``seed``, so ``auc_ci95`` equals ``bootstrap_ci(y, p, roc_auc, n, seed)``).

    {"fpr", "tpr": the curve; "grid", "low", "high": at each of ``points`` false-positive rates 0..1, the percentile
    interval of the resampled curves' true-positive rate there (their highest TPR at that FPR); "auc", "auc_ci95"}.
    None without both classes. One ``roc_curve`` per resample serves the band and the AUC (the trapezoid under the
    same points, as ``roc_auc_score`` computes it), half the cost of two bootstraps.
    """
    from sklearn.metrics import auc, roc_curve

    y, p = _check(y, p)
    pos, neg = np.nonzero(y == 1)[0], np.nonzero(y == 0)[0]
    if pos.size == 0 or neg.size == 0:
        return None
    grid = np.linspace(0.0, 1.0, points)
    rng = np.random.default_rng(seed)
    tprs, aucs = np.empty((n, points)), np.empty(n)
    for i in range(n):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        fpr, tpr, _ = roc_curve(y[idx], p[idx])
        # fpr and tpr never decrease along the curve: the last point with fpr <= f has the highest TPR there
        tprs[i] = tpr[np.searchsorted(fpr, grid + 1e-12, side="right") - 1]
        aucs[i] = auc(fpr, tpr)
    a = (1 - confidence) / 2
    fpr, tpr, _ = roc_curve(y, p)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "grid": grid.tolist(),
            "low": np.quantile(tprs, a, axis=0).tolist(), "high": np.quantile(tprs, 1 - a, axis=0).tolist(),
            "auc": roc_auc(y, p), "auc_ci95": _percentile_ci(aucs, confidence)}


def _at(name: str, threshold: float) -> Callable:
    return lambda y, p: at_threshold(y, p, threshold)[name]


def summary(y, p, threshold: float = 0.5, n_boot: int = BOOTSTRAP, seed: int = 0) -> dict:
    """Every metric above, each scalar with its bootstrap CI: {"n", "positives", "metrics": {name: {"value", "ci95"}},
    "threshold_table", "calibration"}."""
    y, p = _check(y, p)
    scalars: dict[str, Callable] = {
        "roc_auc": roc_auc, "pr_auc": pr_auc, "fpr_at_tpr95": fpr_at_tpr,
        "accuracy": _at("accuracy", threshold), "sensitivity": _at("sensitivity", threshold),
        "specificity": _at("specificity", threshold), "f1": _at("f1", threshold),
        "ppv": _at("ppv", threshold), "npv": _at("npv", threshold),
        "ece": lambda yy, pp: calibration(yy, pp)["ece"],
    }
    metrics = {name: {"value": f(y, p), "ci95": bootstrap_ci(y, p, f, n_boot, seed)} for name, f in scalars.items()}
    return {"n": int(y.size), "positives": int(y.sum()), "threshold": threshold, "bootstrap": n_boot,
            "metrics": metrics, "confusion": confusion(y, p, threshold),
            "threshold_table": threshold_table(y, p), "calibration": calibration(y, p)}
