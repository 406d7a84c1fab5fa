#!/usr/bin/env python
"""Figures of the lobe-patch model card (seed 001): k-means lung regions, infection map and infected region.

    python scripts/lobe_patch_card_figures.py --out Resources/Models/cards/lobe-patch [--data ../shared/data]

Writes OUT/infection-maps.png: the first labelled COVID-SemiSeg slice (radiologists' infection outlined in green),
one Radiopaedia COVID-19 stack and the generated demo CT (seed 0, true lesions in green), each through
``covidct analyze``'s classifier run: CT in the lung window, the infection map (coarse x fine, §2.8) in colour, the
k-means lung regions outlined in blue and the infected region (both maps > 0.5) in magenta. Volumes show the slice
with the most infected pixels (the most lung when none).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.lesions.semiseg import DOCTOR_LABEL, FOLDER  # noqa: E402

DOCTOR = FOLDER / DOCTOR_LABEL


def _case(ct, lungs, truth=None):
    import SimpleITK as sitk

    from CovidCTAnalysis.pipeline.classifiers import run_classifier

    run = run_classifier("lobe-patch", ct, lungs, "cpu")
    arrays = {k: sitk.GetArrayFromImage(v) for k, v in (("ct", ct.image), ("heat", run.heatmap),
                                                      ("lobes", run.segments["lobes"][0]),
                                                      ("infected", run.segments["infected"][0]))}
    score = arrays["infected"].reshape(len(arrays["ct"]), -1).sum(1)
    if score.max() == 0:
        score = (arrays["lobes"] > 0).reshape(len(arrays["ct"]), -1).sum(1)
    z = int(np.argmax(score))
    return {k: v[z] for k, v in arrays.items()}, (None if truth is None else truth[z]), run


def _panel(ax, case, truth, title):
    ct01 = np.clip((case["ct"] + 1350.0) / 1500.0, 0, 1)
    ax.imshow(ct01, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.imshow(np.ma.masked_less(case["heat"], 0.05), cmap="jet", alpha=0.4, vmin=0, vmax=1)
    for mask, colour in ((case["lobes"] > 0, "deepskyblue"), (case["infected"] > 0, "magenta"),
                         (truth, "lime")):
        if mask is not None and mask.any():
            ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.8)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk
    from PIL import Image

    from CovidCTAnalysis.demo import make_demo_ct, write_demo_case
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lesions.semiseg import to_display
    from CovidCTAnalysis.lungs.select import segment_lungs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--stack", default="75329")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        first = sorted((a.data / DOCTOR / "Imgs").iterdir(), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)[0]
        with Image.open(first) as im:
            gray = to_display(np.asarray(im.convert("L")), first.name)
        with Image.open(a.data / DOCTOR / "GT" / (first.stem + ".png")) as im:
            gt = to_display(np.asarray(im.convert("L")) > 127, first.name)
        Image.fromarray(gray).save(Path(tmp) / "slice.png")
        case, _, run = _case(load_ct(Path(tmp) / "slice.png"), None)
        panels.append((case, gt, f"COVID-SemiSeg {first.name}: P {run.probability:.2f}, "
                                 f"{run.details['percent_infected']:.1f} % infected"))
        stack = load_ct(a.data / "radiopaedia-stacks" / a.stack)
        case, _, run = _case(stack, segment_lungs(stack.image, display_windowed=stack.display_windowed))
        panels.append((case, None, f"Radiopaedia {a.stack}: P {run.probability:.2f}, "
                                   f"{run.details['percent_infected']:.1f} % infected"))
        demo = make_demo_ct(seed=0)
        ct = load_ct(write_demo_case(demo, Path(tmp) / "demo"))
        truth = sitk.GetArrayFromImage(demo.lesions) > 0
        case, truth_z, run = _case(ct, demo.lungs, truth)
        panels.append((case, truth_z, f"demo seed 0: P {run.probability:.2f}, "
                                      f"{run.details['percent_infected']:.1f} % infected"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.3))
    for ax, (case, truth, title) in zip(axes, panels):
        _panel(ax, case, truth, title)
    fig.suptitle("lobe-patch: infection map (colour), k-means lung regions (blue), infected (magenta), "
                 "reference infection (green)", fontsize=8)
    a.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out / "infection-maps.png", dpi=110, bbox_inches="tight")
    print(a.out / "infection-maps.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
