#!/usr/bin/env python
"""How well lobe-patch's "lobes" (seed 001 §2.3: right and left lung regions from k-means and morphology, found in
every slice on its own) match reference lungs, for its model card.

- TotalSegmentator's example CT (lung bases in its top slices) against its five lobe masks merged per side (model
  outputs used as references, not manual truth): Dice of the right and of the left region.
- The two imlab thoraxes against their lung masks (no sides): Dice of both regions together.
- The generated demo CT (seeds 0 and 1) against its exact right and left lungs.

Only slices where the reference has lung are scored (§2.3 runs on lung slices), over the whole scored volume.

    python scripts/evaluate_lobe_regions.py -o Resources/Models/cards/lobe-patch/lobe-regions.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def regions(hu: np.ndarray, zs) -> np.ndarray:
    """lobe-patch's lobe labels of slices ``zs`` of canonical HU (z, y, x), on the input grid (0 elsewhere)."""
    from CovidCTAnalysis.classifiers.lobe_patch import lobes as lb
    from CovidCTAnalysis.classifiers.lobe_patch.inputs import paper_values
    from skimage.transform import resize

    out = np.zeros(hu.shape, np.uint8)
    values = paper_values(hu[zs])
    for k, z in enumerate(zs):
        labels = lb.detect_lobes(values[k])
        out[z] = resize(labels, hu.shape[1:], order=0, preserve_range=True, anti_aliasing=False).astype(np.uint8)
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    total = int(a.sum()) + int(b.sum())
    return round(2.0 * float((a & b).sum()) / total, 4) if total else None


def canonical(path: Path):
    import SimpleITK as sitk

    from CovidCTAnalysis.io import load_ct

    ct = load_ct(path)
    return ct, sitk.GetArrayFromImage(ct.image)


def on_grid(mask_path: Path, ct) -> np.ndarray:
    """A reference mask resampled (nearest) onto the CT's canonical grid."""
    import SimpleITK as sitk

    mask = sitk.ReadImage(str(mask_path))
    mask = sitk.Resample(mask, ct.image, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0, mask.GetPixelID())
    return sitk.GetArrayFromImage(mask)


def main(argv=None) -> int:
    from CovidCTAnalysis.labels import LEFT_LUNG, RIGHT_LUNG

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args(argv)
    cases = []
    ts = a.data / "totalsegmentator" / "tests" / "reference_files"
    seg = a.data / "totalsegmentator" / "old_example_seg_d2907f6" / "tests" / "reference_files" / "example_seg"
    if (ts / "example_ct.nii.gz").is_file() and seg.is_dir():
        ct, hu = canonical(ts / "example_ct.nii.gz")
        right = sum(on_grid(seg / f"lung_{lobe}_right.nii.gz", ct) > 0 for lobe in ("upper_lobe", "middle_lobe",
                                                                                    "lower_lobe"))
        left = sum(on_grid(seg / f"lung_{lobe}_left.nii.gz", ct) > 0 for lobe in ("upper_lobe", "lower_lobe"))
        right, left = right > 0, left > 0
        zs = np.flatnonzero((right | left).any(axis=(1, 2)))
        found = regions(hu, zs)
        cases.append({"case": "TotalSegmentator example CT (lung bases)", "slices": int(len(zs)),
                      "dice_right": dice(found == RIGHT_LUNG, right), "dice_left": dice(found == LEFT_LUNG, left)})
    for path in sorted((a.data / "imlab-lung3d").glob("id*[0-9].nii.gz")):
        ct, hu = canonical(path)
        lung = on_grid(Path(str(path).replace(".nii.gz", "-msk.nii.gz")), ct) > 127
        zs = np.flatnonzero(lung.any(axis=(1, 2)))
        cases.append({"case": f"imlab {path.name.split('-')[0]}", "slices": int(len(zs)),
                      "dice_both": dice(regions(hu, zs) > 0, lung)})
    import SimpleITK as sitk

    from CovidCTAnalysis.demo import make_demo_ct

    for seed in (0, 1):
        case = make_demo_ct(seed=seed)
        hu, truth = sitk.GetArrayFromImage(case.image), sitk.GetArrayFromImage(case.lungs)
        zs = np.flatnonzero(truth.any(axis=(1, 2)))
        found = regions(hu, zs)
        cases.append({"case": f"demo seed {seed}", "slices": int(len(zs)),
                      "dice_right": dice(found == RIGHT_LUNG, truth == RIGHT_LUNG),
                      "dice_left": dice(found == LEFT_LUNG, truth == LEFT_LUNG)})
    for c in cases:
        print(json.dumps(c), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"command": "python scripts/evaluate_lobe_regions.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "cases": cases}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
