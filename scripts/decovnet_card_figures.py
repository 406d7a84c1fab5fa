#!/usr/bin/env python
"""Figures of the DeCoVNet model card: the CAM and the localized lesion (seed 002, §II-E, Fig. 3 style).

    python scripts/decovnet_card_figures.py --weights Resources/Models/decovnet/decovnet.pt \
        --input '{"in_plane": [112, 168], "z_mm": 5.0, "lung_only": true, "mask_value": 0.1}' \
        --synthetic /tmp/decovnet-data --case imlab-id002-v0-pos.npz --stack 75329 \
        --out Resources/Models/cards/decovnet
Writes OUT/cam-synthetic.png (a synthetic test positive on the model grid: CAM, localized lesion, true lesions) and
OUT/cam-radiopaedia-<stack>.png (a real Radiopaedia stack on its own grid, through classify_volume). Each panel is
the axial slice through the localized lesion's centre (or through the CAM maximum when nothing was localized, or
the slice with the most lesion / lung voxels when the CAM is empty).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _panel(ax, ct01, cam, located, truth, title):
    import numpy as np

    ax.imshow(ct01, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.imshow(np.ma.masked_less(cam, 0.05), cmap="jet", alpha=0.35, vmin=0, vmax=1, interpolation="bilinear")
    if truth is not None and truth.any():
        ax.contour(truth, levels=[0.5], colors="lime", linewidths=0.8)
    if located is not None and located.any():
        ax.contour(located, levels=[0.5], colors="magenta", linewidths=1.0)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _slice_of(located, cam, fallback):
    """The slice through the localized lesion, else through the CAM maximum, else the fallback mask's fullest."""
    import numpy as np

    if located is not None and located.any():
        return int(round(np.nonzero(located)[0].mean()))
    if cam.max() > 0:
        return int(np.unravel_index(int(np.argmax(cam)), cam.shape)[0])
    return int(np.argmax(fallback.sum(axis=(1, 2))))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--input", required=True, help="the registry entry's input dict (JSON)")
    p.add_argument("--synthetic", type=Path, required=True)
    p.add_argument("--case", required=True, help="file name of a synthetic test case")
    p.add_argument("--stack", default="75329")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import SimpleITK as sitk
    import torch

    from CovidCTAnalysis.classifiers.decovnet import infer, inputs, localize
    from CovidCTAnalysis.classifiers.decovnet.synthetic import load_case
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs import segment_lungs_classic

    torch.set_num_threads(a.threads)
    spec = inputs.InputSpec.from_dict(json.loads(a.input))
    model = infer.model_from_state_dict(torch.load(a.weights, map_location="cpu", weights_only=True),
                                        torch.device("cpu"), spec)
    a.out.mkdir(parents=True, exist_ok=True)

    # synthetic test positive, on the model grid
    hu, lungs, lesions, meta = load_case(a.synthetic / a.case)
    x = inputs.prepare_arrays(hu, lungs, meta["spacing"], spec)
    truth_image = sitk.GetImageFromArray((lesions > 0).astype(np.float32))
    truth_image.SetSpacing(tuple(meta["spacing"]))
    truth = sitk.GetArrayFromImage(sitk.Resample(truth_image, x.grid, sitk.Transform(), sitk.sitkLinear, 0.0,
                                                 sitk.sitkFloat32)) > 0.5
    prob, cam = model.run(x.array)
    loc = localize.localize(x.ct, x.lungs, cam)
    located = None if loc.empty else loc.mask
    z = _slice_of(located, cam, truth)
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.6), dpi=110)
    _panel(axes[0], x.ct[z], np.zeros_like(cam[z]), None, truth[z], f"{a.case}: slice {z}, true lesions (green)")
    _panel(axes[1], x.ct[z], cam[z], None if located is None else located[z], truth[z],
           f"P(COVID-19) {prob:.2f}; CAM, localized ({loc.source}, magenta)")
    fig.tight_layout()
    fig.savefig(a.out / "cam-synthetic.png")
    plt.close(fig)

    # a real Radiopaedia stack, through classify_volume on its own grid
    ct = load_ct(a.data / "radiopaedia-stacks" / a.stack)
    lung_image = segment_lungs_classic(ct.image, display_windowed=ct.display_windowed)
    result, heatmap, located_real = infer.classify_volume(ct.image, lung_image, torch.device("cpu"), model=model)
    ct01 = inputs.normalize_hu(sitk.GetArrayFromImage(ct.image))
    heat = sitk.GetArrayFromImage(heatmap)
    lmask = None if located_real is None else sitk.GetArrayFromImage(located_real["mask"]) > 0
    lung_array = sitk.GetArrayFromImage(lung_image) > 0
    z = _slice_of(lmask, heat, lung_array)
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.2), dpi=110)
    _panel(axes[0], ct01[z], np.zeros_like(heat[z]), None, lung_array[z], f"Radiopaedia {a.stack}: slice {z}, "
           "lungs-classic (green)")
    _panel(axes[1], ct01[z], heat[z], None if lmask is None else lmask[z], None,
           f"P(COVID-19) {result['probability']:.2f}; CAM, localized (magenta)")
    fig.tight_layout()
    fig.savefig(a.out / f"cam-radiopaedia-{a.stack}.png")
    plt.close(fig)
    print(json.dumps({"synthetic": {"case": a.case, "probability": prob, "source": loc.source},
                      "radiopaedia": {"stack": a.stack, "probability": result["probability"],
                                      "localization": result["localization"]}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
