"""Fit a classifier's calibration on its validation predictions and store it with the weights (issue 22).

    python scripts/calibrate_classifier.py --model slice-resnet \
        --predictions Resources/Models/slice-resnet/cv/cv-lite0-320.json --method platt --write

PREDICTIONS is a JSON file with ``labels`` (0/1), the raw probabilities under ``probabilities`` (or ``oof``: the
out-of-fold predictions `train_slice_resnet.py --cv` writes) and optionally ``groups`` (patient ids: the
cross-validated ECE then keeps a patient's images in one fold). Writes into the model's card folder
(Resources/Models/cards/MODEL/): calibration.json (fit, ECE before / after in sample / after cross-validated,
reliability bins, and how the ECE compares with that of a perfectly calibrated classifier on as many cases:
``ece_after_cv_sampling``) and reliability-before.png / reliability-after.png; with --write also the compact ``calibration``
block of the model's registry entry (the block `covidct analyze` applies).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.evaluation.calibration import FITS, fit_and_report  # noqa: E402
from CovidCTAnalysis.evaluation.plots import reliability_plot  # noqa: E402
from CovidCTAnalysis.models.registry import default_registry_path  # noqa: E402

REGISTRY_KEYS = ("method", "a", "b", "temperature", "n", "ece_before", "ece_after_cv")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--method", choices=sorted(FITS), default="platt")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--groups-from", type=Path, help="take the patient ids from this predictions JSON (same 'names' in "
                   "the same order) when PREDICTIONS has none")
    p.add_argument("--write", action="store_true", help="store the calibration in the registry entry")
    p.add_argument("--inputs", choices=("slice", "volume"),
                   help="the input kind the predictions are of, when the classifier runs another network on the "
                        "other kind (the calibration then leaves that kind raw)")
    a = p.parse_args(argv)

    data = json.loads(a.predictions.read_text(encoding="utf-8"))
    probabilities = data.get("probabilities", data.get("oof"))
    if probabilities is None or "labels" not in data:
        p.error(f"{a.predictions}: needs 'labels' and 'probabilities' (or 'oof')")
    groups = data.get("groups")
    if groups is None and a.groups_from:
        other = json.loads(a.groups_from.read_text(encoding="utf-8"))
        if other.get("names") != data.get("names") or "groups" not in other:
            p.error(f"{a.groups_from}: no 'groups' for the same 'names' in the same order as {a.predictions}")
        groups = other["groups"]
    report, _ = fit_and_report(data["labels"], probabilities, groups, a.method, a.folds)
    registry_path = default_registry_path()
    cards = registry_path.parent / "cards" / a.model
    cards.mkdir(parents=True, exist_ok=True)
    source = str(a.predictions.resolve().relative_to(REPO)) if a.predictions.resolve().is_relative_to(REPO) \
        else str(a.predictions)
    report["fitted_on"] = source
    if groups is not None and data.get("groups") is None:
        report["groups_from"] = str(a.groups_from)
    (cards / "calibration.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    reliability_plot(report["reliability_before"], cards / "reliability-before.png", f"{a.model}: raw")
    reliability_plot(report["reliability_after_cv"], cards / "reliability-after.png",
                     f"{a.model}: {a.method} (cross-validated)")
    block = {k: report[k] for k in REGISTRY_KEYS if k in report}
    block["ece_after_cv_p"] = report["ece_after_cv_sampling"]["p_value"]
    block["fitted_on"] = source
    if "groups_from" in report:
        block["groups_from"] = report["groups_from"]
    if a.inputs:
        block["inputs"] = [a.inputs]
    print(json.dumps(block, indent=1))
    if a.write:
        registry = json.loads(registry_path.read_text(encoding="utf-8"))
        entry = next(m for m in registry["models"] if m["name"] == a.model)
        entry["calibration"] = block
        registry_path.write_text(json.dumps(registry, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
