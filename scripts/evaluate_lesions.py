#!/usr/bin/env python
"""Evaluate lesions-unet: Dice / sensitivity / specificity on the fixed validation slices, volume error on the demo CT.

    python scripts/evaluate_lesions.py [--weights FILE] [--demo-seeds 0,1,2] [--json OUT.json]

1. COVID-SemiSeg validation slices (constants.VALIDATION_SLICES; never used for training): infection (any label) and
   per class, mean over slices (Inf-Net's convention) and pooled, with bootstrap 95 % CIs. Three ways of running a
   2-D slice are compared: whole slice (what segment_lesions does for a single slice), whole slice with left-right
   flip averaging, and gated by the classic lung mask of the slice (display-windowed), to validate the 2-D choice.
2. The demo CT (CovidCTAnalysis.demo, exact truth): lungs by lungs-classic, lesions by segment_lesions; per-class and
   total volume error against the truth, infection Dice, after each post-processing step (STEPS: the network alone,
   then the ground-glass attenuation rule of lesions/attenuation.py, then consolidation from the pleural fill of
   lesions/pleural.py, then the consolidation extent rule of lesions/consolidation.py - the last row is what
   `covidct analyze` does). Also the intensity pseudo-mask's agreement with the truth.
3. Normal lungs in true HU (../shared/data/imlab-lung3d, no lesions): lesion volume and % involvement found there
   after each step: every millilitre is a false positive.
Without --weights the registered model is used (sha256 checked).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.lesions import pseudo_infection_mask, quantify, segment_lesions, semiseg  # noqa: E402
from CovidCTAnalysis.lesions.inference import segment_slices  # noqa: E402
from CovidCTAnalysis.lesions.metrics import confusion, summarize, volume_error_percent  # noqa: E402
from CovidCTAnalysis.lesions.network import load_network  # noqa: E402

PUBLISHED = {  # COVID-SemiSeg test slices (Fan et al. 2020, Tables II and IV)
    "infection": {"Semi-Inf-Net": 0.739, "Inf-Net": 0.682, "U-Net": 0.439},
    "ggo": {"Semi-Inf-Net + multi-class U-Net (best)": 0.646},
    "consolidation": {"Semi-Inf-Net + multi-class U-Net (best)": 0.458},
}


def slice_image(hu: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(hu[None].astype(np.float32))
    s = 350.0 / hu.shape[1]  # io's default for 2-D pictures
    img.SetSpacing((s, s, 5.0))
    return img


def evaluate_slices(net, samples) -> dict:
    from CovidCTAnalysis.errors import InputError
    from CovidCTAnalysis.lesions.inference import lung_gate
    from CovidCTAnalysis.lungs import segment_lungs_classic

    conf = {"whole slice": [], "whole slice, flip-averaged": [], "gated by classic lung mask": []}
    lung_failures = 0
    for s in samples:
        conf["whole slice"].append(confusion(segment_slices(net, s.hu[None])[0], s.target))
        conf["whole slice, flip-averaged"].append(confusion(segment_slices(net, s.hu[None], tta="flip")[0],
                                                            s.target))
        image = slice_image(s.hu)
        try:
            lung = sitk.GetArrayFromImage(segment_lungs_classic(image, display_windowed=True))[0] > 0
        except InputError:  # "no lungs found": typical of tight figure crops
            lung = np.zeros(s.hu.shape, bool)
            lung_failures += 1
        gate = lung_gate(lung[None], image.GetSpacing()[:2])[0]
        pred = segment_slices(net, s.hu[None])[0] * gate
        conf["gated by classic lung mask"].append(confusion(pred, s.target))
    result = {mode: summarize(c) for mode, c in conf.items()}
    result["gated by classic lung mask"]["lung_segmentation_failures"] = lung_failures
    return result


#: The post-processing steps on true-HU input, each row adding one (the last is what segment_lesions ships):
#: (name, attenuation rule on ground glass, consolidation from the pleural fill of lungs-classic, consolidation extent).
STEPS = (("network", False, False, False), ("+ attenuation rule", True, False, False),
         ("+ attenuation rule + pleural consolidation", True, True, False),
         ("+ attenuation rule + pleural consolidation + consolidation extent", True, True, True))


def run_steps(net, image, found):
    """(step name, lesion label image) for each of STEPS; ``found``: lungs.ClassicLungs of ``image``."""
    for name, check, pleural, extent in STEPS:
        yield name, segment_lesions(image, found.labels, net=net, attenuation_check=check,
                                    pleural=found.pleural if pleural else None, consolidation_extent=extent)


def evaluate_demo(net, seed: int) -> list[dict]:
    """Numbers on demo CT ``seed`` after each post-processing step (one case, one lung mask, for all)."""
    from CovidCTAnalysis.demo import make_demo_ct
    from CovidCTAnalysis.lungs import classic_lungs

    case = make_demo_ct(seed=seed)
    found = classic_lungs(case.image)
    lungs = found.labels
    t = sitk.GetArrayFromImage(case.lesions)
    truth_q = quantify(case.lesions, case.lungs)
    pseudo = sitk.GetArrayFromImage(pseudo_infection_mask(case.image, lungs))
    pc = summarize([confusion(pseudo, t)])["infection"]
    rows = []
    t0 = time.time()
    for step, pred in run_steps(net, case.image, found):
        seconds = time.time() - t0
        pred_q = quantify(pred, lungs)
        summary = summarize([confusion(sitk.GetArrayFromImage(pred), t)])
        rows.append({
            "seed": seed, "steps": step, "size": list(case.image.GetSize()),
            "seconds_segment_lesions": round(seconds, 2),
            "truth": {k: truth_q[k] for k in ("ggo_ml", "consolidation_ml", "total_ml", "percent_involvement")},
            "predicted": {k: pred_q[k] for k in ("ggo_ml", "consolidation_ml", "total_ml", "percent_involvement",
                                                 "severity")},
            "volume_error_percent": volume_error_percent(pred_q, truth_q),
            "dice": {k: summary[k]["pooled_dice"] for k in summary},
            "pseudo_mask_vs_truth": {"dice": pc["pooled_dice"], "sensitivity": pc["pooled_sensitivity"]},
        })
        t0 = time.time()
    return rows


def evaluate_normals(net, folder: Path) -> list[dict]:
    """Lesions found in normal lungs (true HU; every millilitre is a false positive) after each step."""
    from CovidCTAnalysis.io.load import load_ct
    from CovidCTAnalysis.lungs import classic_lungs

    rows = []
    for path in sorted(folder.glob("id*-128x128x64.nii.gz")):
        image = load_ct(path).image
        found = classic_lungs(image)
        for step, pred in run_steps(net, image, found):
            q = quantify(pred, found.labels)
            rows.append({"case": path.name, "steps": step, "ggo_ml": q["ggo_ml"],
                         "consolidation_ml": q["consolidation_ml"],
                         "percent_involvement": q["percent_involvement"]["total"]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "covid-semiseg")
    ap.add_argument("--weights", type=Path, help="weights file (default: the registered lesions-unet)")
    ap.add_argument("--demo-seeds", default="0", help="comma-separated demo CT seeds (default 0)")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = load_network("cpu", weights=args.weights)
    result = {"weights": str(args.weights or "registered lesions-unet"), "published_test_dice": PUBLISHED}

    if (args.data / semiseg.LABELLED).is_dir():
        val = semiseg.labelled_slices(args.data, "val")
        result["validation"] = evaluate_slices(net, val)
        for mode, m in result["validation"].items():
            print(f"validation ({len(val)} slices), {mode}:")
            for k, v in m.items():
                if not isinstance(v, dict):
                    print(f"  {k}: {v}")
                    continue
                print(f"  {k:14s} Dice {v['dice']:.3f} [{v['dice_ci95'][0]:.3f}, {v['dice_ci95'][1]:.3f}]  pooled "
                      f"{v['pooled_dice']:.3f}  sens {v['sensitivity']:.3f}  spec {v['specificity']:.3f}  "
                      f"(published best {max(PUBLISHED[k].values()):.3f})")
    else:
        print(f"{args.data}: absent, validation slices skipped")

    result["demo"] = []
    for seed in (int(s) for s in args.demo_seeds.split(",") if s.strip()):
        for d in evaluate_demo(net, seed):
            result["demo"].append(d)
            ve = d["volume_error_percent"]
            print(f"demo seed {seed} ({d['steps']}): total "
                  f"{d['predicted']['total_ml']:.1f} mL vs truth {d['truth']['total_ml']:.1f} mL "
                  f"(error {ve['total']:+.1f} %; GGO {ve['ggo']:+.1f} %, consolidation {ve['consolidation']:+.1f} %), "
                  f"infection Dice {d['dice']['infection']:.3f}, "
                  f"involvement {d['predicted']['percent_involvement']['total']:.2f} % "
                  f"vs {d['truth']['percent_involvement']['total']:.2f} %; pseudo-mask Dice "
                  f"{d['pseudo_mask_vs_truth']['dice']:.3f}; {d['seconds_segment_lesions']:.1f} s")
    normals = args.data.parent / "imlab-lung3d"
    if normals.is_dir():
        result["normal_lungs"] = evaluate_normals(net, normals)
        for r in result["normal_lungs"]:
            print(f"normal lungs {r['case']} ({r['steps']}): "
                  f"GGO {r['ggo_ml']:.1f} mL, consolidation {r['consolidation_ml']:.1f} mL, involvement "
                  f"{r['percent_involvement']:.2f} % (truth 0)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
