#!/usr/bin/env python
"""Time DeCoVNet inference (classify_volume: input grid, network, CAM, localization, heatmap on the CT grid).

    python scripts/benchmark_decovnet.py                      # 512 x 512 x 300 generated chest CT, registered weights
    python scripts/benchmark_decovnet.py --weights W.pt --spec 112,168,5 --lung-only --mask-value 0.1 --repeat 3
The lung mask is the generated CT's exact truth (lung segmentation is its own pipeline stage, timed there).
Prints one JSON object: per-stage and total seconds of each run, the torch thread count and the CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="512,512,300")
    p.add_argument("--weights", type=Path, help="state dict instead of the registered weights")
    p.add_argument("--spec", default="112,168,5", help="with --weights: height,width,z_mm (z_mm 0 = every slice)")
    p.add_argument("--lung-only", action="store_true", help="with --weights: the CT channel shows the lungs only")
    p.add_argument("--mask-value", type=float, default=1.0, help="with --weights: lung mask channel value")
    p.add_argument("--registry", type=Path, help="registry JSON (default: the package's)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    import numpy as np
    import torch

    from CovidCTAnalysis.classifiers.decovnet import infer, inputs
    from CovidCTAnalysis.demo import make_demo_ct

    torch.set_num_threads(a.threads)
    device = torch.device("cpu")
    if a.weights:
        h, w, z = (float(v) for v in a.spec.split(","))
        spec = inputs.InputSpec(int(h), int(w), z or None, a.lung_only, a.mask_value)
        model = infer.model_from_state_dict(torch.load(a.weights, map_location="cpu", weights_only=True), device,
                                            spec)
    else:
        model = infer.load_model(device, a.registry)
    size = tuple(int(v) for v in a.size.split(","))
    t = time.time()
    case = make_demo_ct(size=size, seed=0)
    gen_s = time.time() - t
    runs = []
    for _ in range(a.repeat):
        stages: list = []
        last = [time.time()]

        def progress(fraction, message, stages=stages, last=last):
            now = time.time()
            stages.append([round(now - last[0], 3), message])  # seconds spent before this message
            last[0] = now

        t = time.time()
        result, heatmap, loc = infer.classify_volume(case.image, case.lungs, device, progress, model=model)
        runs.append({"total_s": round(time.time() - t, 3), "probability": round(result["probability"], 4),
                     "slices": result["slices"], "localized": loc is not None, "stages": stages})
    print(json.dumps({"size": size, "spacing_mm": case.image.GetSpacing(), "generate_s": round(gen_s, 1),
                      "spec": model.spec.to_dict(), "threads": torch.get_num_threads(),
                      "cpu": platform.processor() or platform.machine(), "runs": runs,
                      "best_s": min(r["total_s"] for r in runs),
                      "median_s": float(np.median([r["total_s"] for r in runs]))}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
