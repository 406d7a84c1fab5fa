#!/usr/bin/env python
"""A classifier on a volume: seconds to classify and explain a 512 x 512 x 300 CT, median of repeats.

    python scripts/benchmark_classifier.py --model da-cmil -o /tmp/da-cmil-bench.json [--registry R] [--threads 2]
        [--repeats 3] [--size 512,512,300] [--device cuda]

Any registered classifier (da-cmil, cvae-netvlad, lobe-patch, ...), run through the classifier interface exactly as
``covidct analyze`` runs it. The volume is the generated demo CT (seed 0) with its exact lung mask (and lesion map,
for a classifier that uses one), so the time is the classifier's alone: lung and lesion segmentation are the
pipeline's stages, timed by scripts/benchmark_lungs.py and scripts/benchmark_lesions.py. Loading the weights is not
timed. The JSON records the thread count, the device and the load average, on which the numbers depend, and the
run's scalar details (slices classified, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a registered classifier")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--registry", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="512,512,300", help="x,y,z voxels of the demo CT")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)

    import torch

    from CovidCTAnalysis.classifiers import load_classifier
    from CovidCTAnalysis.demo import make_demo_ct, write_demo_case
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.models.device import select_device

    torch.set_num_threads(a.threads)
    device = select_device(a.device)
    size = tuple(int(v) for v in a.size.split(","))
    demo = make_demo_ct(size=size, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        ct = load_ct(write_demo_case(demo, Path(folder)))
    classifier = load_classifier(a.model, device, a.registry)
    extra = {"lesions": demo.lesions} if getattr(classifier, "needs_lesions", False) else {}
    seconds = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        result = classifier.run(ct, demo.lungs, None, **extra)
        seconds.append(time.perf_counter() - t0)
        print(f"{seconds[-1]:.2f} s", flush=True)
    details = {k: v for k, v in result.details.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    report = {"model": a.model, "version": result.version, "size": list(size), "device": str(device),
              "threads": a.threads, "repeats": a.repeats,
              "classify_explain_s_median": round(float(np.median(seconds)), 2),
              "classify_explain_s_all": [round(s, 2) for s in seconds], "details": details,
              "load_average": os.getloadavg()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
