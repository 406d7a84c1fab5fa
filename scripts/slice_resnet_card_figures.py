#!/usr/bin/env python
"""Figure of the slice-resnet model card (seed 003): where its Grad-CAM lies, for one or more weights side by side.

    python scripts/slice_resnet_card_figures.py --out Resources/Models/cards/slice-resnet \
        --weights 2.0.0=OLD/registry.json --weights 2.1.0=Resources/Models/registry.json

One row per ``--weights LABEL=REGISTRY`` (default: this checkout's registry), one column per case, each through the
classifier run that ``covidct analyze`` makes: a Radiopaedia COVID-19 stack and the normal imlab thorax id002
(lungs by the pipeline; the slice shown is the lung slice with the most lung, the same in every row) and two
radiologist-labelled COVID-SemiSeg slices (infection outlined in green). CT in the lung window, Grad-CAM in colour
(none where the slice is called negative: maps are computed for positive slices only), the lung mask in blue.
Writes OUT/gradcam-rows.png.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.lesions.semiseg import DOCTOR_LABEL, FOLDER  # noqa: E402

DOCTOR = FOLDER / DOCTOR_LABEL


def _cases(data: Path, tmp: Path, stack: str, slices: list[str]) -> list[dict]:
    """The CTs, their lungs (None for a 2-D figure), the slice to show and the reference mask, once for all rows."""
    import SimpleITK as sitk
    from PIL import Image

    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lesions.semiseg import to_display
    from CovidCTAnalysis.lungs.select import segment_lungs

    out = []
    for title, path in ((f"Radiopaedia {stack} (COVID-19)", data / "radiopaedia-stacks" / stack),
                        ("imlab id002 (normal)", data / "imlab-lung3d" / "id002-128x128x64.nii.gz")):
        ct = load_ct(path)
        lungs = segment_lungs(ct.image, display_windowed=ct.display_windowed)
        area = (sitk.GetArrayFromImage(lungs) > 0).reshape(ct.image.GetDepth(), -1).sum(1)
        out.append({"title": title, "ct": ct, "lungs": lungs, "z": int(np.argmax(area)), "truth": None})
    for name in slices:
        with Image.open(data / DOCTOR / "Imgs" / name) as im:
            gray = to_display(np.asarray(im.convert("L")), name)
        with Image.open(data / DOCTOR / "GT" / f"{Path(name).stem}.png") as im:
            truth = to_display(np.asarray(im.convert("L")) > 127, name)
        Image.fromarray(gray).save(tmp / f"{Path(name).stem}.png")
        out.append({"title": f"COVID-SemiSeg {name}", "ct": load_ct(tmp / f"{Path(name).stem}.png"), "lungs": None,
                    "z": 0, "truth": truth})
    return out


def _panel(ax, case: dict, registry: Path) -> None:
    import SimpleITK as sitk

    from CovidCTAnalysis.classifiers.table import load_classifier

    run = load_classifier("slice-resnet", "cpu", registry).run(case["ct"], case["lungs"], None)
    z = case["z"]
    ct = sitk.GetArrayFromImage(case["ct"].image)[z]
    heat = sitk.GetArrayFromImage(run.heatmap)[z]
    ax.imshow(np.clip((ct + 1350.0) / 1500.0, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.imshow(np.ma.masked_less(heat, 0.05), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    if case["lungs"] is not None:
        ax.contour(sitk.GetArrayFromImage(case["lungs"])[z] > 0, levels=[0.5], colors="deepskyblue",
                   linewidths=0.6)
    if case["truth"] is not None:
        ax.contour(case["truth"], levels=[0.5], colors="lime", linewidths=0.8)
    where = "" if run.details.get("lung_slices") is None else (
        f", {run.details['positive_slices']}/{run.details['lung_slices']} slices positive")
    ax.set_title(f"{case['title']}\nP {run.probability:.2f}{where}{'' if heat.any() else '; no map here'}",
                 fontsize=7)
    ax.axis("off")


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from CovidCTAnalysis.models.registry import default_registry_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--weights", action="append", metavar="LABEL=REGISTRY",
                    help="a row: its label and a registry.json (repeat; default: this checkout's registry)")
    ap.add_argument("--stack", default="74887")
    ap.add_argument("--slices", default="0.jpg,12.jpg", help="COVID-SemiSeg labelled slices (comma-separated)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    rows = [tuple(w.split("=", 1)) for w in (a.weights or [f"shipped={default_registry_path()}"])]
    if any(len(r) != 2 for r in rows):
        ap.error("--weights takes LABEL=REGISTRY")
    with tempfile.TemporaryDirectory() as tmp:
        cases = _cases(a.data, Path(tmp), a.stack, a.slices.split(","))
        fig, axes = plt.subplots(len(rows), len(cases), figsize=(3.2 * len(cases), 3.5 * len(rows)), squeeze=False)
        for r, (label, registry) in enumerate(rows):
            for c, case in enumerate(cases):
                _panel(axes[r][c], case, Path(registry))
            axes[r][0].text(-0.08, 0.5, label, transform=axes[r][0].transAxes, rotation=90, va="center",
                            ha="right", fontsize=9)
    fig.suptitle("slice-resnet Grad-CAM (colour), lungs (blue), radiologists' infection (green)", fontsize=8)
    a.out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90, bbox_inches="tight")
    buffer.seek(0)
    with Image.open(buffer) as im:  # a 256-colour palette: a third of the bytes, for a file kept in the repository
        im.convert("RGB").quantize(256).save(a.out / "gradcam-rows.png", optimize=True)
    print(a.out / "gradcam-rows.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
