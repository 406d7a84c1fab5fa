#!/usr/bin/env python
"""Nested cross-validation of lesions-unet's decision rule on pictures: the arg-max of the class probabilities
against a lowered lesion threshold, a consolidation weight and added left-right flips, on the 5 CV folds.

    python scripts/cv_lesion_decision.py --models DIR [--arch lite0-unet] [--compare decision.json] [-o decision.json]

DIR holds the fold models of ``scripts/cv_lesions.py train`` (``ARCH-foldK.pt``). Each fold model segments its
held-out labelled COVID-SemiSeg slices along the path of `covidct segment-lesions` for a picture (the JPEG as stored,
read by ``io.load_ct``, the four quarter turns averaged, ``lesions.inference.probabilities_2d``); the probabilities
are kept, so every rule is scored on the same out-of-fold predictions:

- ``argmax``: the shipped rule, the most probable of background / GGO / consolidation;
- ``threshold t, weight w``: lesion where P(GGO) + P(consolidation) > t (``t None``: where the arg-max is a
  lesion, its extent unchanged), consolidation where w P(consolidation) > P(GGO) there
  (``lesions.inference.decide``);
- each with the four quarter turns alone (``rot4``, shipped) or with their mirror images too (``d8``).

Nested selection: for each outer fold the rule with the best mean of infection, GGO and consolidation Dice on the
other four folds' slices is chosen and scored on the outer fold's slices; the table reports those outer scores (mean
over folds of per-fold means, as ``cv_lesions.py``), the shipped rule's on the same slices, and a paired bootstrap 95 %
CI of the difference. Nothing is chosen on the slices it is scored on. The rule to ship is the same choice made on
all 50 slices (``chosen_on_all_folds``; lesions.inference.PICTURE_TTA and PICTURE_RULE).

``--compare FILE``: another architecture's output of this script on the same folds; its nested scores are paired with
these slice by slice (``nested_minus_compare``: means and a bootstrap 95 % CI of the difference over all slices).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import cv_lesions  # noqa: E402
import evaluate_segment_lesions_command as command_eval  # noqa: E402

from CovidCTAnalysis.lesions.inference import decide  # noqa: E402
from CovidCTAnalysis.lesions.metrics import CLASSES  # noqa: E402

THRESHOLDS = (None, 0.3, 0.35, 0.4, 0.45, 0.5)  # None: the arg-max's lesion extent
WEIGHTS = (0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
VIEWS = ("rot4", "d8")


def fold_probabilities(weights: Path, images: list[Path]) -> list[dict]:
    """Per image: the rot4 and d8 probabilities [3, H, W] on the input's grid."""
    from CovidCTAnalysis.io import load_ct, to_input_grid
    from CovidCTAnalysis.lesions.inference import probabilities_2d
    from CovidCTAnalysis.lesions.network import load_network

    net = load_network("cpu", weights=weights)
    out = []
    for path in images:
        ct = load_ct(path)
        hu = sitk.GetArrayFromImage(ct.image).astype(np.float32)
        hu = hu.reshape((1,) + hu.shape[-2:])
        views = {view: probabilities_2d(net, hu, tta=view)[0].numpy() for view in VIEWS}
        # where each canonical pixel lands on the input's grid (the command writes its labels through to_input_grid)
        index = sitk.GetImageFromArray(np.arange(hu.size, dtype=np.int32).reshape(sitk.GetArrayViewFromImage(
            ct.image).shape))
        index.CopyInformation(ct.image)
        order = sitk.GetArrayFromImage(to_input_grid(index, ct)).ravel()
        out.append({view: p.reshape(3, -1)[:, order] for view, p in views.items()})
    return out


def labels_of(prob: np.ndarray, rule) -> np.ndarray:
    """Labels 0 / 1 GGO / 2 consolidation of flat probabilities [3, N] under ``rule`` (None: arg-max)."""
    if rule is None:
        return np.argmax(prob, axis=0).astype(np.uint8)
    return decide(prob.reshape(1, 3, -1, 1), *rule).ravel()


def score(rows: list[dict], view: str, rule) -> list[dict]:
    return [command_eval.dice_per_class(labels_of(r["prob"][view], rule), r["truth"]) for r in rows]


def mean_over_folds(dice: list[dict], folds: list[int], name: str) -> float:
    means = []
    for k in sorted(set(folds)):
        values = [d[name] for d, f in zip(dice, folds) if f == k and d[name] is not None]
        if values:
            means.append(np.mean(values))
    return float(np.mean(means))


def objective(dice: list[dict], folds: list[int]) -> float:
    return float(np.mean([mean_over_folds(dice, folds, name) for name in CLASSES]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, required=True, help="folder of ARCH-foldK.pt")
    ap.add_argument("--arch", default="lite0-unet", help="the fold models' architecture (file names)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--compare", type=Path, help="this script's JSON for other fold models, paired on nested scores")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args(argv)
    folder = args.data / command_eval.LABELLED
    folds = cv_lesions.make_folds(cv_lesions.slice_table(args.data))
    rows = []
    for k, fold in enumerate(folds):
        images = [folder / "Imgs" / f"{n}.jpg" for n in fold]
        for number, prob in zip(fold, fold_probabilities(cv_lesions.weights_path(args.models, args.arch, k),
                                                         images)):
            with Image.open(folder / "GT" / f"{number}.png") as im:
                truth = np.asarray(im).ravel()
            rows.append({"slice": number, "fold": k + 1, "prob": prob, "truth": truth})
        print(f"fold {k + 1}: probabilities of {len(fold)} slices", flush=True)

    rules = [(view, None) for view in VIEWS] + [(view, rule) for view in VIEWS
                                                 for rule in itertools.product(THRESHOLDS, WEIGHTS)]
    dice = {rule: score(rows, *rule) for rule in rules}
    fold_of = [r["fold"] for r in rows]
    shipped = dice[("rot4", None)]
    chosen, nested = [], [None] * len(rows)
    for k in range(1, len(folds) + 1):
        inner = [i for i, f in enumerate(fold_of) if f != k]
        best = max(rules, key=lambda rule: objective([dice[rule][i] for i in inner], [fold_of[i] for i in inner]))
        chosen.append({"outer_fold": k, "view": best[0], "rule": "argmax" if best[1] is None else
                       {"threshold": best[1][0], "consolidation_weight": best[1][1]}})
        for i, f in enumerate(fold_of):
            if f == k:
                nested[i] = dice[best][i]

    # the rule to ship: the same choice made on all five folds' slices (its score there is not a CV number)
    final = max(rules, key=lambda rule: objective(dice[rule], fold_of))
    nested_rows = [{"slice": r["slice"], "fold": r["fold"], "dice": d} for r, d in zip(rows, nested)]
    shipped_rows = [{"slice": r["slice"], "fold": r["fold"], "dice": d} for r, d in zip(rows, shipped)]
    summary = {"nested": cv_lesions.class_summary(nested_rows, len(folds)),
               "shipped_rule": cv_lesions.class_summary(shipped_rows, len(folds)),
               "nested_minus_shipped": cv_lesions.paired(nested_rows, shipped_rows, held_out_only=False)}
    command = f"python scripts/cv_lesion_decision.py --models DIR --arch {args.arch}"
    if args.compare:
        other = json.loads(args.compare.read_text(encoding="utf-8"))
        other_rows = [{"slice": r["slice"], "fold": r["fold"], "dice": r["nested"]} for r in other["rows"]]
        summary["nested_minus_compare"] = cv_lesions.paired(nested_rows, other_rows, held_out_only=False)
        command += f" --compare {args.compare.name}"
    table = {f"{view} {'argmax' if rule is None else f't {rule[0]} w {rule[1]}'}":
             {name: round(mean_over_folds(dice[(view, rule)], fold_of, name), 3) for name in CLASSES}
             for view, rule in rules}
    result = {"command": command, "folds": folds,
              "chosen_per_outer_fold": chosen, "summary": summary,
              "chosen_on_all_folds": {"view": final[0], "rule": "argmax" if final[1] is None else
                                      {"threshold": final[1][0], "consolidation_weight": final[1][1]}},
              "all_rules_all_folds": table,
              "rows": [{"slice": r["slice"], "fold": r["fold"], "shipped": s, "nested": n}
                       for r, s, n in zip(rows, shipped, nested)]}
    print(json.dumps({"chosen": chosen, "summary": summary}, indent=1))
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
