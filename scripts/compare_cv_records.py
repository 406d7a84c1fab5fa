"""Two cross-validation records of the figure classifiers, compared on the same held-out figures.

    python scripts/compare_cv_records.py BASE.json OTHER.json
    python scripts/compare_cv_records.py BASE.json BASE.json --other-view mirrored   # test-time flips, paired
    python scripts/compare_cv_records.py A.json B.json --ensemble                    # A against mean(A, B)

A record is what a trainer's ``--cv`` writes (``train.cross_validate``: names, labels, patient groups, fold of each
figure, out-of-fold P). ``--base-view`` / ``--other-view`` pick the P of each record: ``oof`` (the figure as
inference sees it), ``mirrored`` (its left-right mirror image, slice-resnet's records since they carry it) or
``mean`` (the mean of the two: test-time flips). ``--ensemble`` compares BASE with the mean of BASE's and OTHER's
P (each under its view). Prints per-fold ROC AUC of both, the fold mean, the pooled AUC, and
the pooled difference with a 95 % CI by bootstrap over patients (figures of one patient drawn together), as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.evaluation import metrics  # noqa: E402

VIEWS = ("oof", "mirrored", "mean")
BOOTSTRAP = 2000


def view(record: dict, name: str) -> np.ndarray:
    """P of every figure in ``record`` under view ``name`` (VIEWS)."""
    oof = np.asarray(record["oof"], float)
    if name == "oof":
        return oof
    if "oof_mirrored" not in record:
        raise ValueError("the record has no oof_mirrored (P of the mirror images)")
    mirrored = np.asarray(record["oof_mirrored"], float)
    return mirrored if name == "mirrored" else (oof + mirrored) / 2


def scores(y: np.ndarray, p: np.ndarray, fold_of: np.ndarray) -> dict:
    folds = [metrics.roc_auc(y[fold_of == f], p[fold_of == f]) for f in sorted(set(fold_of.tolist()))]
    return {"folds": [round(a, 3) for a in folds], "fold_mean": round(float(np.mean(folds)), 4),
            "fold_sd": round(float(np.std(folds, ddof=1)), 4), "pooled": round(metrics.roc_auc(y, p), 4)}


def patient_bootstrap(y, base, other, groups, n: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    """95 % CI of pooled AUC(other) - AUC(base), patients drawn with replacement."""
    rng = np.random.default_rng(seed)
    patients = np.unique(groups)
    rows = {g: np.flatnonzero(groups == g) for g in patients}
    diffs = []
    for _ in range(n):
        take = np.concatenate([rows[g] for g in rng.choice(patients, len(patients))])
        if len(set(y[take].tolist())) == 2:
            diffs.append(metrics.roc_auc(y[take], other[take]) - metrics.roc_auc(y[take], base[take]))
    return [round(float(v), 4) for v in np.percentile(diffs, [2.5, 97.5])]


def compare(base: dict, other: dict, base_view: str = "oof", other_view: str = "oof", ensemble: bool = False,
            n_boot: int = BOOTSTRAP) -> dict:
    """BASE (under ``base_view``) against OTHER (under ``other_view``, or averaged with BASE when ``ensemble``) on
    the figures both scored: per-fold and pooled ROC AUC, the gains, and the pooled gain's patient-bootstrap CI."""
    if base["names"] != other["names"] or base["fold_of"] != other["fold_of"]:
        raise ValueError("the two records do not hold the same figures in the same folds")
    y, groups = np.asarray(base["labels"]), np.asarray(base["groups"])
    fold_of = np.asarray(base["fold_of"])
    scored = fold_of >= 0
    b = view(base, base_view)
    o = view(other, other_view)
    o = (b + o) / 2 if ensemble else o
    y, groups, fold_of, b, o = y[scored], groups[scored], fold_of[scored], b[scored], o[scored]
    sb, so = scores(y, b, fold_of), scores(y, o, fold_of)
    return {"base": sb, "other": so,
            "fold_gains": [round(x - w, 3) for w, x in zip(sb["folds"], so["folds"])],
            "pooled_gain": round(so["pooled"] - sb["pooled"], 4),
            "pooled_gain_ci95": patient_bootstrap(y, b, o, groups, n_boot)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", type=Path)
    p.add_argument("other", type=Path)
    p.add_argument("--base-view", default="oof", choices=VIEWS)
    p.add_argument("--other-view", default="oof", choices=VIEWS)
    p.add_argument("--ensemble", action="store_true", help="OTHER is the mean of BASE's and OTHER's P")
    a = p.parse_args(argv)
    records = []
    for path in (a.base, a.other):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            print(f"covidct: error: {path}: not a readable CV record ({exc})", file=sys.stderr)
            return 2
    try:
        result = compare(records[0], records[1], a.base_view, a.other_view, a.ensemble)
    except (ValueError, KeyError) as exc:
        print(f"covidct: error: {a.base}, {a.other}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
