"""How good is the consensus, and does the classifiers' disagreement flag the cases it gets wrong? Measured on shared
validation predictions.

    python scripts/consensus_validation.py   # slice-resnet, da-cmil, lobe-patch, cvae-netvlad: CV predictions

The four figure classifiers' 5-fold CV files hold out-of-fold predictions for the same 543 COVID-CT figures (same
names, same patient-disjoint folds). Each is calibrated as its registry entry says, on those CV folds (each fold by
a fit on the other four, so no figure is calibrated by a fit that saw it, and every fold keeps its classifier's
ranking); one without a calibration contributes its raw probability, as in ``covidct analyze``. The consensus is
their mean, scored like a classifier: ROC AUC per fold (mean +- sd) and pooled with bootstrap CIs, beside each
member's on the same calibrated predictions.

For each candidate threshold t the table gives the cases whose spread exceeds t and the consensus's error rate (at
0.5) and Brier score above and below it. The rule of the consensus card: choose the smallest t whose upper group has
at least --ratio times the lower group's error rate, each group holding at least --min-cases cases (with four
classifiers nearly every case's spread exceeds 0.05, and a lower group of one correct case would pass); when none
does, the spread does not predict errors on these data and the registry's threshold stays a stated default. Writes
Resources/Models/cards/consensus/validation.json.
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
from CovidCTAnalysis.evaluation.calibration import cross_validated  # noqa: E402
from CovidCTAnalysis.models import load_registry  # noqa: E402

DEFAULT = {"slice-resnet": "Resources/Models/slice-resnet/cv/cv-lite0-320.json",
           "da-cmil": "Resources/Models/da-cmil/cv/cv-da-cmil.json",
           "lobe-patch": "Resources/Models/lobe-patch/cv/cv-lobe-patch.json",
           "cvae-netvlad": "Resources/Models/cards/cvae-netvlad/cv-full.json"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ratio", type=float, default=2.0)
    p.add_argument("--min-cases", type=int, default=20)
    p.add_argument("--out", type=Path, default=REPO / "Resources/Models/cards/consensus/validation.json")
    a = p.parse_args(argv)

    registry = load_registry()
    calibrated, names, labels, fold_of = {}, None, None, None
    for model, source in DEFAULT.items():
        data = json.loads((REPO / source).read_text(encoding="utf-8"))
        if names is None:
            names, labels, fold_of = data["names"], np.asarray(data["labels"], dtype=int), data["fold_of"]
        elif data["names"] != names or data.get("labels", labels.tolist()) != labels.tolist() \
                or data["fold_of"] != fold_of:
            p.error(f"{source}: not the same cases, labels and folds as {DEFAULT['slice-resnet']}")
        calibration = registry.get(model).calibration
        if calibration:
            calibrated[model] = cross_validated(labels, data["oof"], None, calibration["method"], fold_of=fold_of)
        else:
            calibrated[model] = np.asarray(data["oof"], dtype=float)
    stack = np.stack(list(calibrated.values()))
    mean, spread = stack.mean(axis=0), stack.max(axis=0) - stack.min(axis=0)
    wrong, brier = (mean >= 0.5) != labels, (mean - labels) ** 2

    fold_of = np.asarray(fold_of)
    scores = {}
    print(f"{'':>13} {'CV ROC AUC per fold':>36} {'mean +- sd':>14} {'pooled [95 % CI]':>24}")
    for name, p_ in [*calibrated.items(), ("consensus", mean)]:
        per_fold = [metrics.roc_auc(labels[fold_of == f], p_[fold_of == f]) for f in np.unique(fold_of)]
        pooled = metrics.bootstrap_ci(labels, p_, metrics.roc_auc)
        scores[name] = {"fold_auc": per_fold, "auc_mean": float(np.mean(per_fold)),
                        "auc_sd": float(np.std(per_fold, ddof=1)), "pooled_auc": metrics.roc_auc(labels, p_),
                        "pooled_auc_ci95": pooled,
                        "accuracy_at_0.5": float(((p_ >= 0.5) == labels).mean())}
        s_ = scores[name]
        print(f"{name:>13} {' '.join(f'{a:.3f}' for a in per_fold):>36} {s_['auc_mean']:.3f} +- {s_['auc_sd']:.3f} "
              f"{s_['pooled_auc']:.3f} [{pooled[0]:.3f}, {pooled[1]:.3f}]")

    rows, chosen = [], None
    print(f"{len(labels)} cases, consensus error rate {wrong.mean():.3f}; spread median {np.median(spread):.3f}")
    print(f"{'t':>5} {'above':>6} {'err above':>10} {'err below':>10} {'Brier above':>12} {'Brier below':>12}")
    for t in np.round(np.arange(0.05, 1.0, 0.05), 2):
        upper = spread > t
        if upper.sum() == 0 or upper.all():
            continue
        row = {"threshold": float(t), "above": int(upper.sum()), "error_above": float(wrong[upper].mean()),
               "error_below": float(wrong[~upper].mean()), "brier_above": float(brier[upper].mean()),
               "brier_below": float(brier[~upper].mean())}
        rows.append(row)
        print(f"{t:5.2f} {row['above']:6d} {row['error_above']:10.3f} {row['error_below']:10.3f} "
              f"{row['brier_above']:12.3f} {row['brier_below']:12.3f}")
        if chosen is None and min(row["above"], len(labels) - row["above"]) >= a.min_cases \
                and row["error_above"] >= a.ratio * row["error_below"]:
            chosen = float(t)
    result = {"models": {m: DEFAULT[m] for m in calibrated}, "cases": len(labels), "roc_auc": scores,
              "error_rate": float(wrong.mean()), "spread_median": float(np.median(spread)),
              "rule": {"ratio": a.ratio, "min_cases": a.min_cases}, "chosen": chosen, "table": rows,
              "registry_threshold": registry.disagreement_threshold}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"chosen: {chosen if chosen is not None else 'none (the spread does not predict errors here)'}; "
          f"registry threshold {registry.disagreement_threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
