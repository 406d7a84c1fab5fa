"""Segmentation metrics on labelled slices: Dice, sensitivity, specificity for infection (any label) and per class.

Per-slice values are averaged over slices, as Inf-Net (Fan et al. 2020, section IV-A) reports them; Dice and
sensitivity of a class are averaged over the slices whose ground truth contains that class (they are undefined
otherwise), specificity over all slices. Pooled values (all pixels of all slices together) are given as well, and a
percentile bootstrap 95 % confidence interval over slices for each mean.
"""

from __future__ import annotations

import numpy as np

from ..labels import CONSOLIDATION, GGO

CLASSES = {"infection": None, "ggo": GGO, "consolidation": CONSOLIDATION}


def confusion(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """{class: [TP, FP, FN, TN]} for one slice (or volume); infection = any label > 0."""
    out = {}
    for name, label in CLASSES.items():
        p = pred > 0 if label is None else pred == label
        t = truth > 0 if label is None else truth == label
        tp = int(np.count_nonzero(p & t))
        fp = int(np.count_nonzero(p & ~t))
        fn = int(np.count_nonzero(~p & t))
        out[name] = np.array([tp, fp, fn, p.size - tp - fp - fn], dtype=np.int64)
    return out


def _ratios(c: np.ndarray) -> tuple[float, float, float]:
    tp, fp, fn, tn = (float(v) for v in c)
    dice = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    sens = tp / (tp + fn) if (tp + fn) else float("nan")
    spec = tn / (tn + fp) if (tn + fp) else float("nan")
    return dice, sens, spec


def _bootstrap(values: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (n, values.size))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def summarize(confusions: list[dict[str, np.ndarray]]) -> dict:
    """Mean per-slice and pooled Dice / sensitivity / specificity per class, with bootstrap CIs of the means."""
    result = {}
    for name in CLASSES:
        per = np.array([_ratios(c[name]) for c in confusions])  # [slices, 3]
        present = np.array([c[name][0] + c[name][2] > 0 for c in confusions])
        dice = np.where(present, per[:, 0], np.nan)
        sens = np.where(present, per[:, 1], np.nan)
        pooled = _ratios(sum(c[name] for c in confusions))
        result[name] = {
            "dice": float(np.nanmean(dice)) if present.any() else float("nan"),
            "dice_ci95": _bootstrap(dice),
            "sensitivity": float(np.nanmean(sens)) if present.any() else float("nan"),
            "specificity": float(np.nanmean(per[:, 2])),
            "pooled_dice": pooled[0],
            "pooled_sensitivity": pooled[1],
            "pooled_specificity": pooled[2],
            "slices_with_class": int(present.sum()),
        }
    return result


def volume_error_percent(predicted: dict, truth: dict) -> dict[str, float]:
    """Signed volume error in % of the truth, per class and in total, from two ``quantify`` results (nan where the
    truth has none of that class)."""
    def err(key: str) -> float:
        return 100.0 * (predicted[key] - truth[key]) / truth[key] if truth[key] else float("nan")

    return {"ggo": err("ggo_ml"), "consolidation": err("consolidation_ml"), "total": err("total_ml")}
