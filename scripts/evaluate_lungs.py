#!/usr/bin/env python3
"""Evaluate `lungs-classic` and/or `lungs-unet`: Dice and HD95 against reference masks, lesion coverage on the demo CT.

Cases (default: imlab, demo, lungmask and totalseg, those available; totalseg-slices only when named):
  imlab      ../shared/data/imlab-lung3d, 2 thorax CTs with lung masks (float, lung ~255: > 127 is lung); also a
             15-line baseline (threshold -400 or -500 HU, air touching the slice edge removed, largest component, holes
             filled) for comparison
  demo       the generated demo CT (exact truth; pleural consolidations): Dice, HD95, per side, lesion coverage
  lungmask   ../shared/data/lungmask-testdata: two COVID-19 DICOM slices; no mask ships, only the label counts of
             lungmask's R231 model (64752 right, 36536 left over both slices): a sanity check of sides and size
  totalseg   ../shared/data/totalsegmentator example_ct: abdomen with lung bases; TotalSegmentator's lobe masks
             (model output, not ground truth) as a sanity reference
  totalseg-slices  each axial slice of that CT as a single-slice image (as a user loads one DICOM slice), at its
             3 mm pixels and resampled in-plane to --slice-mm: at the lung bases, the lung found against the lobe
             masks; on the slices below the lungs, how many get a (false) lung and how much
  pictures   display-windowed figures, as a user loads a PNG or JPEG: the 543 COVID-CT train + val figures (lungs
             found, both lungs labelled; no reference masks exist) and the 50 radiologist-labelled COVID-SemiSeg
             slices (share of the infection inside the lung mask), in display orientation and as the set stores
             them (turned by 90 degrees); only when named

    python scripts/evaluate_lungs.py                          # the default cases available
    python scripts/evaluate_lungs.py --cases demo --demo-size 256,256,96 --demo-seeds 0,1,2
    python scripts/evaluate_lungs.py --image CT.nii.gz --reference lungs.nii.gz [--reference-threshold 0.5]
    python scripts/evaluate_lungs.py --model lungs-classic,lungs-unet   # both methods, one table

--model: comma-separated `lungs-classic` (default) and `lungs-unet` (the registered weights, or --weights FILE). Every row says which method made it; "sides"
says whether label 1 (right) lies at lower x than label 2 on the canonical grid (patient's right) and, where the
reference has both labels, per-side Dice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from CovidCTAnalysis.lungs import segment_lungs_classic
from CovidCTAnalysis.lungs.evaluate import compare, dice, hd95_mm, lesion_coverage

DATA = Path(os.environ.get("COVIDCT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
R231_COUNTS = (64752, 36536)  # lungmask's own test: right, left over the two slices
METHODS = ["lungs-classic"]  # set by --model
_NETS: dict = {}


def unet_network(weights: Path | None = None, device: str = "cpu"):
    """lungs-unet: the registered weights, or the file ``weights`` (a candidate under evaluation)."""
    key = (str(weights), device)
    if key not in _NETS:
        from CovidCTAnalysis.lungs.unet import load_network

        _NETS[key] = load_network(device, weights=weights)
    return _NETS[key]


def baseline(image: sitk.Image, threshold: float = -400.0) -> np.ndarray:
    """The 15-line method: threshold, drop air touching the slice edge, keep the largest component, fill holes."""
    v = sitk.GetArrayFromImage(image)
    air = v < threshold
    inplane = np.zeros((3, 3, 3), bool)
    inplane[1] = ndi.generate_binary_structure(2, 1)
    lab, _ = ndi.label(air, inplane)
    edge = np.unique(np.concatenate([lab[:, 0].ravel(), lab[:, -1].ravel(), lab[:, :, 0].ravel(),
                                     lab[:, :, -1].ravel()]))
    air[np.isin(lab, edge[edge > 0])] = False
    lab, n = ndi.label(air)
    if n == 0:
        return air
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    m = lab == sizes.argmax()
    return np.stack([ndi.binary_fill_holes(s) for s in m])


def _segment(image, windowed=False, method="lungs-classic"):
    if method == "lungs-unet":
        from CovidCTAnalysis.lungs import segment_lungs_unet

        net = unet_network(OPTIONS.get("weights"), OPTIONS.get("device", "cpu"))
        t = time.perf_counter()
        labels = sitk.GetArrayFromImage(segment_lungs_unet(image, display_windowed=windowed, net=net,
                                                           device=OPTIONS.get("device", "cpu")))
        return labels, time.perf_counter() - t
    t = time.perf_counter()
    labels = sitk.GetArrayFromImage(segment_lungs_classic(image, display_windowed=windowed))
    return labels, time.perf_counter() - t


OPTIONS: dict = {}


def sides_note(labels: np.ndarray) -> str:
    """'sides ok' when label 1 (right) lies at lower x than label 2, else what is wrong."""
    if not (labels == 1).any() or not (labels == 2).any():
        return "ONE SIDE MISSING"
    ok = np.nonzero(labels == 1)[2].mean() < np.nonzero(labels == 2)[2].mean()
    return "sides ok" if ok else "SIDES SWAPPED"


def case_imlab(rows):
    from CovidCTAnalysis.io import load_ct, read_canonical

    folder = DATA / "imlab-lung3d"
    for case in ("001", "002"):
        ct = load_ct(folder / f"id{case}-128x128x64.nii.gz")
        ref = sitk.GetArrayFromImage(read_canonical(folder / f"id{case}-128x128x64-msk.nii.gz")) > 127
        for method in METHODS:
            labels, seconds = _segment(ct.image, method=method)
            r = compare(labels, ref.astype(np.uint8), ct.image.GetSpacing())
            rows.append({"case": f"imlab {case}", "method": method, **r, "seconds": seconds,
                         "note": sides_note(labels)})
        for threshold in (-400.0, -500.0):
            b = baseline(ct.image, threshold)
            rows.append({"case": f"imlab {case}", "method": f"baseline {threshold:.0f}", "dice": dice(b, ref),
                         "hd95_mm": hd95_mm(b, ref, ct.image.GetSpacing())})


def case_demo(rows, size, seeds):
    from CovidCTAnalysis.demo import make_demo_ct

    for seed in seeds:
        case = make_demo_ct(size=size, seed=seed)
        truth = sitk.GetArrayFromImage(case.lungs)
        lesions = sitk.GetArrayFromImage(case.lesions)
        pleural = sum(1 for les in case.lesion_list if les.touches_pleura and les.label == 2)
        for method in METHODS:
            labels, seconds = _segment(case.image, method=method)
            r = compare(labels, truth, case.image.GetSpacing())
            rows.append({"case": f"demo {'x'.join(map(str, size))} seed {seed}", "method": method, **r,
                         "lesions_inside": lesion_coverage(labels, lesions),
                         "consolidation_inside": lesion_coverage(labels, lesions == 2), "seconds": seconds,
                         "note": f"{pleural} pleural consolidation(s), {sides_note(labels)}"})


def case_lungmask(rows):
    from CovidCTAnalysis.io import load_ct

    ct = load_ct(DATA / "lungmask-testdata" / "tests" / "testdata")
    for method in METHODS:
        labels, seconds = _segment(ct.image, method=method)
        right, left = int((labels == 1).sum()), int((labels == 2).sum())
        rows.append({"case": "lungmask 2 slices", "method": method, "seconds": seconds,
                     "note": f"right {right} ({right / R231_COUNTS[0]:.0%} of R231), left {left} "
                             f"({left / R231_COUNTS[1]:.0%} of R231), {sides_note(labels)}"})


def _totalseg_ct_and_reference():
    from CovidCTAnalysis.io import load_ct, read_canonical

    root = DATA / "totalsegmentator"
    ct = load_ct(root / "tests" / "reference_files" / "example_ct.nii.gz")
    seg = root / "old_example_seg_d2907f6" / "tests" / "reference_files" / "example_seg"
    ref = np.zeros(sitk.GetArrayFromImage(ct.image).shape, np.uint8)
    for f in sorted(seg.glob("lung_*lobe*.nii.gz")):
        ref[sitk.GetArrayFromImage(read_canonical(f)) > 0] = 1 if "right" in f.name else 2
    return ct, ref


def case_totalseg(rows):
    ct, ref = _totalseg_ct_and_reference()
    for method in METHODS:
        labels, seconds = _segment(ct.image, method=method)
        rows.append({"case": "totalseg example_ct", "method": method,
                     **compare(labels, ref, ct.image.GetSpacing()), "seconds": seconds,
                     "note": "lung bases only; reference is a model output (lungs-unet trained on this CT's "
                             "lungs-classic mask)" if method == "lungs-unet" else
                             "lung bases only; reference is a model output"})


def case_totalseg_slices(rows, pixel_mm: float):
    """Single slices of the abdomen-and-lung-bases CT: lung found at the bases, false lung below them."""
    from CovidCTAnalysis.errors import LungsNotFoundError

    ct, ref = _totalseg_ct_and_reference()
    reference = sitk.GetImageFromArray((ref > 0).astype(np.uint8))
    reference.CopyInformation(ct.image)
    for mm in sorted({float(ct.image.GetSpacing()[0]), pixel_mm}, reverse=True):
        size = [int(round(n * s / mm)) for n, s in zip(ct.image.GetSize()[:2], ct.image.GetSpacing()[:2])]
        size.append(ct.image.GetSize()[2])
        spacing = (mm, mm, ct.image.GetSpacing()[2])
        image = sitk.Resample(ct.image, size, sitk.Transform(), sitk.sitkLinear, ct.image.GetOrigin(), spacing,
                              ct.image.GetDirection(), -1024.0, ct.image.GetPixelID())
        truth = sitk.GetArrayFromImage(sitk.Resample(reference, image, sitk.Transform(),
                                                     sitk.sitkNearestNeighbor, 0)) > 0
        cm2 = mm * mm / 100.0
        for method in METHODS:
            bases, false_cm2, start = [], [], time.perf_counter()
            for z in range(size[2]):
                try:
                    found = _segment(image[:, :, z:z + 1], method=method)[0][0] > 0
                except LungsNotFoundError:
                    found = np.zeros(truth[z].shape, bool)
                if truth[z].any():
                    bases.append((truth[z].sum() * cm2, found.sum() * cm2, dice(found, truth[z])))
                else:
                    false_cm2.append(found.sum() * cm2)
            seconds = (time.perf_counter() - start) / size[2]
            under = sorted(bases)[:6]
            rows.append({"case": f"totalseg slices {mm:g} mm", "method": method, "seconds": seconds,
                         "note": f"{len(false_cm2)} slices without lung: {sum(a > 0 for a in false_cm2)} get a "
                                 f"lung ({sum(false_cm2):.1f} cm2 in all); smallest base slices (reference cm2 "
                                 "-> found cm2, Dice): " + ", ".join(f"{r:.1f}->{f:.1f} ({d:.2f})"
                                                                      for r, f, d in under)})


def _picture_lungs(path: Path, method: str, turn=None) -> tuple[np.ndarray | None, float]:
    """A picture's lung labels (None when none is found) and the seconds taken; ``turn``: a function applied to the
    gray image first (written to a temporary PNG, read as a user's file is)."""
    import tempfile

    from PIL import Image

    from CovidCTAnalysis.errors import LungsNotFoundError
    from CovidCTAnalysis.io import load_ct

    with tempfile.TemporaryDirectory() as tmp:
        if turn is not None:
            with Image.open(path) as im:
                gray = turn(np.asarray(im.convert("L")), path.name)
            path = Path(tmp) / "picture.png"
            Image.fromarray(gray).save(path)
        ct = load_ct(path)
        t = time.perf_counter()
        try:
            labels, _ = _segment(ct.image, ct.display_windowed, method)
        except LungsNotFoundError:
            return None, time.perf_counter() - t
        return labels[0], time.perf_counter() - t


def case_pictures(rows):
    from PIL import Image

    from CovidCTAnalysis.evaluation import covid_ct_split
    from CovidCTAnalysis.lesions.semiseg import DOCTOR_LABEL, FOLDER, to_display

    figures = [p for split in ("train", "val") for p, _ in covid_ct_split(DATA / "covid-ct", split)]
    slices = sorted((DATA / FOLDER / DOCTOR_LABEL / "Imgs").iterdir())
    for method in METHODS:
        found = [_picture_lungs(p, method) for p in figures]
        held = [labels for labels, _ in found if labels is not None]
        both = sum(set(np.unique(a)) >= {1, 2} for a in held)
        rows.append({"case": f"COVID-CT {len(figures)} figs", "method": method,
                     "seconds": float(np.median([s for _, s in found])),
                     "note": f"lungs found in {len(held)}, both lungs in {both} (no reference masks; seconds: median "
                             "per figure)"})
        for orientation, turn in (("display", to_display), ("stored", None)):
            inside, both = [], 0
            for path in slices:
                with Image.open(DATA / FOLDER / DOCTOR_LABEL / "GT" / (path.stem + ".png")) as im:
                    truth = np.asarray(im.convert("L")) > 127
                if turn is not None:
                    truth = turn(truth, path.name)
                labels, _ = _picture_lungs(path, method, turn)
                inside.append(0.0 if labels is None else float((labels[truth] > 0).mean()))
                both += labels is not None and set(np.unique(labels)) >= {1, 2}
            rows.append({"case": f"SemiSeg {len(slices)} ({orientation})", "method": method,
                         "lesions_inside": float(np.mean(inside)),
                         "note": f"infection inside the lungs: mean {np.mean(inside):.3f}, median "
                                 f"{np.median(inside):.3f}; both lungs in {both}", "per_slice": inside})


def case_pair(rows, image_path, reference_path, threshold):
    from CovidCTAnalysis.io import load_ct, read_canonical

    ct = load_ct(image_path)
    ref = sitk.GetArrayFromImage(read_canonical(reference_path))
    if threshold is not None:
        ref = (ref > threshold).astype(np.uint8)
    for method in METHODS:
        labels, seconds = _segment(ct.image, ct.display_windowed, method)
        rows.append({"case": Path(image_path).name, "method": method,
                     **compare(labels, ref.astype(np.uint8), ct.image.GetSpacing()), "seconds": seconds,
                     "note": sides_note(labels)})


def print_table(rows):
    cols = [("case", 24, "{}"), ("method", 14, "{}"), ("dice", 7, "{:.4f}"), ("dice_right", 7, "{:.4f}"),
            ("dice_left", 7, "{:.4f}"), ("hd95_mm", 8, "{:.1f}"), ("lesions_inside", 8, "{:.3f}"),
            ("consolidation_inside", 8, "{:.3f}"), ("seconds", 7, "{:.2f}"), ("note", 0, "{}")]
    heads = {"dice_right": "right", "dice_left": "left", "hd95_mm": "HD95mm", "lesions_inside": "lesions",
             "consolidation_inside": "consol."}
    print("  ".join(f"{heads.get(c, c):<{w}}" for c, w, _ in cols))
    for r in rows:
        print("  ".join(f"{(f.format(r[c]) if c in r else '-'):<{w}}" for c, w, f in cols))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="imlab,demo,lungmask,totalseg")
    parser.add_argument("--demo-size", default="96,96,48")
    parser.add_argument("--demo-seeds", default="0,1,2")
    parser.add_argument("--slice-mm", type=float, default=0.75,
                        help="totalseg-slices: the finer in-plane pixel size to resample to (default 0.75 mm)")
    parser.add_argument("--image", type=Path, help="evaluate one CT against --reference instead")
    parser.add_argument("--reference", type=Path, help="reference lung mask on the image's grid (labels 1/2 or binary)")
    parser.add_argument("--reference-threshold", type=float, default=None,
                        help="binarize the reference with > this value (e.g. 127 for 0..255 float masks)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--model", default="lungs-classic",
                        help="comma-separated methods: lungs-classic, lungs-unet (default lungs-classic)")
    parser.add_argument("--weights", type=Path, help="lungs-unet weights file (default: registry or shipped file)")
    parser.add_argument("--device", default="cpu", help="lungs-unet device: cpu, cuda or auto")
    args = parser.parse_args()
    methods = [m.strip() for m in args.model.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ("lungs-classic", "lungs-unet")]
    if unknown or not methods:
        parser.error(f"--model: unknown method(s) {unknown}; use lungs-classic and/or lungs-unet")
    METHODS[:] = methods
    OPTIONS.update({"weights": args.weights, "device": args.device})

    rows: list[dict] = []
    if args.image:
        if not args.reference:
            parser.error("--image needs --reference")
        case_pair(rows, args.image, args.reference, args.reference_threshold)
    else:
        wanted = set(args.cases.split(","))
        if "demo" in wanted:
            case_demo(rows, tuple(int(s) for s in args.demo_size.split(",")),
                      [int(s) for s in args.demo_seeds.split(",")])
        for name, fn, need in (("imlab", case_imlab, "imlab-lung3d"), ("lungmask", case_lungmask, "lungmask-testdata"),
                               ("totalseg", case_totalseg, "totalsegmentator"),
                               ("totalseg-slices", lambda r: case_totalseg_slices(r, args.slice_mm),
                                "totalsegmentator"), ("pictures", case_pictures, "covid-ct")):
            if name in wanted:
                if (DATA / need).is_dir():
                    fn(rows)
                else:
                    print(f"({name}: {DATA / need} is absent, skipped)", file=sys.stderr)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
