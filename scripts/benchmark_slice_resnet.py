#!/usr/bin/env python
"""slice-resnet on volumes: CPU time per slice and per 300-slice volume, and the case result (probability, Corona
score) of the demo CT and of every Radiopaedia stack in ../shared/data.

    python scripts/benchmark_slice_resnet.py -o /tmp/slice-resnet-bench [--registry R] [--threads 2]

Writes OUT/benchmark.json and OUT/<case>-overlay.png (a few positive slices with their localization maps).
Timings (per slice, and classify_volume - Grad-CAM only - and explain_volume with Grad-CAM and LRP on the
300-slice demo CT) are medians over --repeats runs; they depend on the machine and on what else runs on it: the JSON
records the thread count and the load average. --volume-only skips the case list (timings only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def montage(ct_image, heatmap, result, path: Path, n: int = 4) -> None:
    """The n positive slices with the most activation, heatmap over the lung window."""
    import SimpleITK as sitk
    from PIL import Image

    from CovidCTAnalysis.classifiers.slice_resnet import inputs
    from CovidCTAnalysis.explain import overlay_rgb

    hu, heat = sitk.GetArrayFromImage(ct_image), sitk.GetArrayFromImage(heatmap)
    x0, x1, y0, y1 = result["roi_xy"]
    order = np.argsort(heat.reshape(heat.shape[0], -1).sum(1))[::-1][:n]
    tiles = [overlay_rgb(inputs.hu_to_unit(hu[z, y0:y1, x0:x1]), heat[z, y0:y1, x0:x1]) for z in sorted(order)
             if heat[z].any()]
    if not tiles:
        return
    h = min(t.shape[0] for t in tiles)
    tiles = [np.asarray(Image.fromarray(t).resize((int(t.shape[1] * 256 / h), 256))) for t in tiles]
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path)


def run_case(name: str, ct, model, out: Path, say) -> dict:
    from CovidCTAnalysis.classifiers.slice_resnet import classify_volume
    from CovidCTAnalysis.errors import InputError
    from CovidCTAnalysis.lungs import segment_lungs_classic

    t0 = time.perf_counter()
    try:
        lungs = segment_lungs_classic(ct.image, display_windowed=ct.display_windowed)
    except InputError as e:
        say(f"{name}: {e}")
        return {"case": name, "error": str(e)}
    t1 = time.perf_counter()
    result, heatmap = classify_volume(ct.image, lungs, model.device, model=model)
    t2 = time.perf_counter()
    montage(ct.image, heatmap, result, out / f"{name}-overlay.png")
    row = {"case": name, "size": list(ct.image.GetSize()), "spacing_mm": [round(s, 3) for s in ct.image.GetSpacing()],
           "display_windowed": ct.display_windowed, "probability": round(result["probability"], 4),
           "label": result["label"], "corona_score_cm3": round(result["corona_score_cm3"], 2),
           "corona_score_roi_cm3": round(result["corona_score_roi_cm3"], 2),
           "positive_slices": result["positive_slices"], "lung_slices": result["lung_slices"],
           "lungs_s": round(t1 - t0, 2), "classify_s": round(t2 - t1, 2)}
    say(json.dumps(row))
    return row


def per_slice_timing(model, repeats: int, n: int = 64) -> dict:
    """Median over ``repeats`` of the time per slice to classify a batch of n, to Grad-CAM a batch of 32 and to
    LRP a batch of 16."""
    rng = np.random.default_rng(0)
    squares = rng.random((n, model.square_size, model.square_size)).astype(np.float32)
    model.probabilities(squares[:8])  # warm-up
    classify, explain, lrp = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        model.probabilities(squares)
        classify.append((time.perf_counter() - t) / n)
        t = time.perf_counter()
        model.explain(squares[:32])
        explain.append((time.perf_counter() - t) / 32)
        t = time.perf_counter()
        model.relevance(squares[:16])
        lrp.append((time.perf_counter() - t) / 16)
    return {"repeats": repeats, "classify_s_per_slice": round(float(np.median(classify)), 4),
            "gradcam_s_per_slice": round(float(np.median(explain)), 4),
            "lrp_s_per_slice": round(float(np.median(lrp)), 4),
            "classify_s_per_slice_all": [round(v, 4) for v in classify],
            "gradcam_s_per_slice_all": [round(v, 4) for v in explain]}


def volume_timing(ct, model, repeats: int) -> dict:
    """Median over ``repeats`` of lung segmentation, of classify_volume (Grad-CAM) and of explain_volume with Grad-CAM
    and LRP on one volume (seconds)."""
    from CovidCTAnalysis.classifiers.slice_resnet import classify_volume, explain_volume
    from CovidCTAnalysis.lungs import segment_lungs_classic

    lungs_s, classify_s, both_s = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        lungs = segment_lungs_classic(ct.image, display_windowed=ct.display_windowed)
        t1 = time.perf_counter()
        result, _ = classify_volume(ct.image, lungs, model.device, model=model)
        t2 = time.perf_counter()
        explain_volume(ct.image, lungs, model.device, model=model, methods=("gradcam", "lrp"))
        lungs_s.append(t1 - t0)
        classify_s.append(t2 - t1)
        both_s.append(time.perf_counter() - t2)
    return {"repeats": repeats, "size": list(ct.image.GetSize()), "lung_slices": result["lung_slices"],
            "positive_slices": result["positive_slices"],
            "lungs_s_median": round(float(np.median(lungs_s)), 2),
            "classify_s_median": round(float(np.median(classify_s)), 2),
            "classify_s_all": [round(v, 2) for v in classify_s],
            "classify_gradcam_lrp_s_median": round(float(np.median(both_s)), 2),
            "classify_gradcam_lrp_s_all": [round(v, 2) for v in both_s]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--registry", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--volume-slices", type=int, default=300, help="z size of the timed demo volume")
    ap.add_argument("--repeats", type=int, default=3, help="timings are medians over this many runs")
    ap.add_argument("--volume-only", action="store_true", help="time the 300-slice volume only, no case list")
    a = ap.parse_args(argv)

    import torch

    from CovidCTAnalysis.classifiers.slice_resnet import load_model
    from CovidCTAnalysis.demo import make_demo_ct, write_demo_case
    from CovidCTAnalysis.io import load_ct

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    say = lambda s: print(s, flush=True)  # noqa: E731
    model = load_model("cpu", a.registry)
    report = {"threads": a.threads, "load_average_before": os.getloadavg(),
              "per_slice": per_slice_timing(model, a.repeats)}
    say(json.dumps(report))

    cases = []
    sizes = (((256, 256, 96), "demo-ct"), ((256, 256, a.volume_slices), f"demo-ct-{a.volume_slices}"))
    for size, label in sizes[1:] if a.volume_only else sizes:
        demo = make_demo_ct(size=size, seed=0)
        folder = a.out / label
        folder.mkdir(exist_ok=True)
        ct = load_ct(write_demo_case(demo, folder))
        cases.append(run_case(label, ct, model, a.out, say))
        if label != "demo-ct":  # the timed 300-slice volume
            report["volume"] = volume_timing(ct, model, a.repeats)
            say(json.dumps(report["volume"]))
    stacks = [] if a.volume_only else sorted(p for p in (a.data / "radiopaedia-stacks").iterdir() if p.is_dir())
    for folder in stacks:
        cases.append(run_case(f"radiopaedia-{folder.name}", load_ct(folder), model, a.out, say))
    report["cases"] = cases
    report["load_average_after"] = os.getloadavg()
    (a.out / "benchmark.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
