#!/usr/bin/env python
"""Score a registered volume classifier on the test split of DeCoVNet's semi-synthetic volumes, the way
`covidct analyze` runs it: each volume written as NRRD, read by ``io.load_ct``, its lungs found by the pipeline's
``segment_lungs``, the classifier run through ``pipeline.classifiers.run_classifier``.

    python scripts/make_decovnet_data.py --out /tmp/decovnet/data
    python scripts/evaluate_synthetic_volumes.py --model da-cmil --synthetic /tmp/decovnet/data -o out.json
    COVIDCT_MODELS=DIR python scripts/evaluate_synthetic_volumes.py ...   # a candidate registry

The test split shares neither background anatomy nor lesion patch with the train split
(CovidCTAnalysis/classifiers/decovnet/synthetic.py). Writes per-case probabilities and ROC AUC, PR AUC and the
threshold metrics with bootstrap 95 % CIs (``evaluation.metrics.summary``). A classifier that reports % infected
lung (``percent_infected``, e.g. lobe-patch) is also scored against each volume's true involvement (the
transplanted lesions' share of the lung): per case, and the mean and median absolute error in percentage points.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a registered classifier that reads volumes")
    ap.add_argument("--synthetic", type=Path, required=True, help="folder of scripts/make_decovnet_data.py")
    ap.add_argument("--split", default="test", choices=("test", "train"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path, required=True)
    a = ap.parse_args(argv)

    import SimpleITK as sitk
    import torch

    from CovidCTAnalysis.classifiers.decovnet.synthetic import load_case, read_index
    from CovidCTAnalysis.evaluation import metrics
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs.select import segment_lungs
    from CovidCTAnalysis.models.registry import load_registry
    from CovidCTAnalysis.pipeline.classifiers import run_classifier

    torch.set_num_threads(a.threads)
    index = read_index(a.synthetic, a.split)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in index:
            hu, _, _, meta = load_case(a.synthetic / row["file"])
            image = sitk.GetImageFromArray(hu)
            image.SetSpacing(tuple(float(s) for s in meta["spacing"]))
            path = Path(tmp) / (Path(row["file"]).stem + ".nrrd")
            sitk.WriteImage(image, str(path))
            t0 = time.time()
            ct = load_ct(path)
            run = run_classifier(a.model, ct, segment_lungs(ct.image, display_windowed=False), "cpu")
            cases.append({"case": row["file"], "label": int(row["label"]), "probability": round(run.probability, 4),
                          "seconds": round(time.time() - t0, 1)})
            if run.details.get("percent_infected") is not None:
                cases[-1].update(percent_infected=run.details["percent_infected"],
                                 true_percent=round(100.0 * float(row.get("involvement", 0.0)), 3))
            print(json.dumps(cases[-1]), flush=True)
    y = np.array([c["label"] for c in cases])
    p = np.array([c["probability"] for c in cases])
    result = {"command": "python scripts/evaluate_synthetic_volumes.py " + " ".join(sys.argv[1:] if argv is None
                                                                                    else argv),
              "model": a.model, "version": load_registry().get(a.model).version, "split": a.split,
              "summary": metrics.summary(y, p), "cases": cases}
    scored = [c for c in cases if "percent_infected" in c]
    if scored:
        error = np.abs([c["percent_infected"] - c["true_percent"] for c in scored])
        result["percent_infected_error"] = {"n": len(scored), "mean": round(float(error.mean()), 3),
                                            "median": round(float(np.median(error)), 3)}
        print(f"% infected: mean absolute error {error.mean():.2f}, median {np.median(error):.2f} points")
    auc = result["summary"]["metrics"]["roc_auc"]
    low, high = auc["ci95"]
    print(f"{a.model} {result['version']}: synthetic {a.split} ROC AUC {auc['value']:.3f} [{low:.3f}, {high:.3f}]")
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
