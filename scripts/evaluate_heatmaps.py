#!/usr/bin/env python
"""Explanation-map quality of a classifier (CovidCTAnalysis.evaluation.heatmaps), for its model card.

Two measurements, each through the same classifier run that `covidct analyze` makes:
- 2-D: the 50 radiologist-labelled COVID-SemiSeg slices (TrainingSet/LungInfection-Train/Doctor-label: Imgs + GT
  infection masks; not classifier training data). Each slice and mask is turned into display orientation first (the
  set lies rotated by 90 degrees, CovidCTAnalysis/lesions/semiseg.py) and read as a 2-D figure. Pointing game
  (maximum within the infection mask dilated by 5 px) and energy lift, with bootstrap CIs.
- 3-D: the Radiopaedia COVID-19 stacks, the generated demo CT (seeds 0 and 1) and the two normal imlab thoraxes:
  share of the map's mass inside the lung mask of lungs-classic (and inside the lungs grown by 5 mm), P(COVID-19)
  and the model's scalar outputs (e.g. the Corona score). With these positives and negatives, the case-level ROC AUC
  of P(COVID-19) and of every other scalar output (e.g. the Corona score, Gozes et al. §3.2's case decision).

    python scripts/evaluate_heatmaps.py --model slice-resnet \
        -o Resources/Models/cards/slice-resnet/heatmaps-gradcam.json
    python scripts/evaluate_heatmaps.py --model slice-resnet --method lrp -o /tmp/lrp.json

Real data are read from ../shared/data (or --data); nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.evaluation.heatmaps import mass_inside, summarize  # noqa: E402
from CovidCTAnalysis.lesions.semiseg import DOCTOR_LABEL, FOLDER  # noqa: E402

DOCTOR = FOLDER / DOCTOR_LABEL


def _heat(run, method: str | None):
    """The classifier run's map for ``method`` (None = its default map) as a numpy array (z, y, x)."""
    import SimpleITK as sitk

    image = run.heatmaps[method] if method else run.heatmap
    return sitk.GetArrayFromImage(image)


def semiseg_slices(data: Path, model: str, method: str | None, device, registry=None) -> dict:
    import SimpleITK as sitk
    from PIL import Image

    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lesions.semiseg import to_display
    from CovidCTAnalysis.pipeline.classifiers import run_classifier

    folder = data / DOCTOR
    heats, masks, cases = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for img_path in sorted((folder / "Imgs").iterdir(), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
            gt = folder / "GT" / (img_path.stem + ".png")
            if not gt.is_file():
                continue
            with Image.open(img_path) as im:
                gray = to_display(np.asarray(im.convert("L")), img_path.name)
            with Image.open(gt) as im:
                mask = to_display(np.asarray(im.convert("L")) > 127, img_path.name)
            figure = Path(tmp) / f"{img_path.stem}.png"
            Image.fromarray(gray).save(figure)
            ct = load_ct(figure)
            run = run_classifier(model, ct, None, device)
            heat = _heat(run, method)[0]
            if heat.shape != mask.shape:
                raise SystemExit(f"{img_path}: map {heat.shape} and mask {mask.shape} differ")
            heats.append(heat)
            masks.append(mask)
            cases.append({"slice": img_path.name, "probability": round(float(run.probability), 4)})
    out = summarize(heats, masks)
    for case, hit, lift in zip(cases, out.pop("hits"), out.pop("lifts")):
        case.update(hit=hit, energy_lift=None if lift is None else round(lift, 3))
    out["cases"] = cases
    return out


def _volume_case(ct, model: str, method: str | None, device, name: str) -> dict:
    import SimpleITK as sitk

    from CovidCTAnalysis.classifiers.slice_resnet.infer import lung_region
    from CovidCTAnalysis.lungs.select import segment_lungs
    from CovidCTAnalysis.pipeline.classifiers import run_classifier

    lungs = segment_lungs(ct.image, display_windowed=ct.display_windowed)
    run = run_classifier(model, ct, lungs, device)
    heat = _heat(run, method)
    labels = sitk.GetArrayFromImage(lungs)
    grown = lung_region(labels, ct.image.GetSpacing()) > 0
    scalars = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in run.summary().items()
               if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    inside = mass_inside(heat, labels > 0)
    grown_share = mass_inside(heat, grown)
    return {"case": name, **scalars, "mass_in_lungs": None if inside is None else round(inside, 4),
            "mass_in_lungs_5mm": None if grown_share is None else round(grown_share, 4)}


def volumes(data: Path, model: str, method: str | None, device, demo_seeds) -> list[dict]:
    """Every 3-D case with the map's mass in the lungs and the model's scalars; the demo CTs also with the truth's
    % involvement (lesion voxels / lung voxels), beside which a model's own % (e.g. lobe-patch's) is read."""
    import SimpleITK as sitk

    from CovidCTAnalysis.demo import make_demo_ct, write_demo_case
    from CovidCTAnalysis.io import load_ct

    cases = []

    def add(ct, name: str, covid: int, **truth) -> None:
        t0 = time.time()
        cases.append(dict(_volume_case(ct, model, method, device, name), covid=covid,
                          seconds=round(time.time() - t0, 1), **truth))
        print(json.dumps(cases[-1]), flush=True)

    stacks = data / "radiopaedia-stacks"
    for folder in sorted(p for p in stacks.iterdir() if p.is_dir()) if stacks.is_dir() else []:
        add(load_ct(folder), f"radiopaedia {folder.name}", 1)
    for path in sorted((data / "imlab-lung3d").glob("id*[0-9].nii.gz")):
        add(load_ct(path), f"imlab {path.name.split('-')[0]} (normal)", 0)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in demo_seeds:
            case = make_demo_ct(seed=seed)
            lungs, lesions = (sitk.GetArrayFromImage(case.lungs) > 0), (sitk.GetArrayFromImage(case.lesions) > 0)
            truth = round(100.0 * float((lesions & lungs).sum()) / float(lungs.sum()), 3)
            add(load_ct(write_demo_case(case, Path(tmp) / f"seed{seed}")), f"demo seed {seed}", 1,
                truth_percent_involvement=truth)
    return cases


def case_level_auc(cases: list[dict]) -> dict:
    """ROC AUC over the volumes of every numeric output (positives: COVID-19 stacks and demo CTs; negatives: normal
    thoraxes); None when one class is missing."""
    from sklearn.metrics import roc_auc_score  # scores here are not all probabilities (Corona score in cm3)

    y = [c["covid"] for c in cases]
    if len(set(y)) < 2:
        return {}
    keys = [k for k in cases[0] if k not in ("covid", "seconds") and "mass" not in k and "truth" not in k and all(
        isinstance(c.get(k), (int, float)) and not isinstance(c.get(k), bool) for c in cases)]
    varying = [k for k in keys if "slices" not in k or k == "positive_slices"]  # not the lung extent
    return {k: round(float(roc_auc_score(y, [float(c[k]) for c in cases])), 4) for k in varying
            if len({c[k] for c in cases}) > 1}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--method", default=None, help="a named map of the classifier (e.g. lrp); default: its default")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--demo-seeds", default="0,1")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-volumes", action="store_true")
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if not a.data.is_dir():
        ap.error(f"{a.data}: real data folder not found")
    import torch

    from CovidCTAnalysis.models.device import select_device

    torch.set_num_threads(a.threads)
    device = select_device(a.device)
    result = {"model": a.model, "method": a.method or "default",
              "semiseg": semiseg_slices(a.data, a.model, a.method, device)}
    s = result["semiseg"]
    print(f"SemiSeg labelled slices: pointing game {s['pointing_game']:.3f} {s['pointing_ci95']}, energy lift mean "
          f"{s['energy_lift_mean']:.2f} median {s['energy_lift_median']:.2f} {s['energy_lift_ci95']}", flush=True)
    if not a.skip_volumes:
        seeds = [int(v) for v in a.demo_seeds.split(",") if v.strip()]
        result["volumes"] = volumes(a.data, a.model, a.method, device, seeds)
        result["case_level_roc_auc"] = case_level_auc(result["volumes"])
        shares = [c["mass_in_lungs"] for c in result["volumes"] if c["mass_in_lungs"] is not None]
        result["mass_in_lungs_median"] = float(np.median(shares)) if shares else None
        print(f"volumes: map mass inside the lungs, median {result['mass_in_lungs_median']}; case-level AUC "
              f"{result['case_level_roc_auc']}", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
