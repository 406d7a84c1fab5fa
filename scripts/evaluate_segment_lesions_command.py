#!/usr/bin/env python
"""Lesion Dice of the `covidct segment-lesions` command itself on the 50 labelled COVID-SemiSeg slices.

    python scripts/evaluate_segment_lesions_command.py [-o OUT.json] [--data ../shared/data] [--limit N]

scripts/evaluate_lesions.py measures lesions-unet on slices prepared as in training (rotated so that the spine is at
the bottom, mapped to HU by lesions.semiseg). A user instead hands the JPEG to the command, which reads it as it is
stored (io: no rotation, the lung window's HU mapping), finds the lungs (issue 18: a figure whose lungs touch its edge
is no longer refused) and segments it. This script runs that command, one process per slice as a user would, reads
the label map it writes and compares it with the radiologists' GT (0/1 GGO/2 consolidation). Reported: Dice per
class, mean over the slices where the class is present (Inf-Net's convention), on the fixed validation slices
(lesions.constants.VALIDATION_SLICES, never trained on) and on all 50 (37 of them trained on: not a held-out
number), plus refusals, warnings and median seconds per slice (process start included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.lesions.constants import VALIDATION_SLICES  # noqa: E402
from CovidCTAnalysis.lesions.metrics import CLASSES  # noqa: E402
from CovidCTAnalysis.lesions.semiseg import FOLDER, LABELLED as LABELLED_IN_FOLDER  # noqa: E402

LABELLED = FOLDER / LABELLED_IN_FOLDER


def dice_per_class(pred: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Dice of each class of lesions.metrics.CLASSES; None where the class is absent from the truth."""
    out = {}
    for name, label in CLASSES.items():
        p = pred > 0 if label is None else pred == label
        t = truth > 0 if label is None else truth == label
        out[name] = None if not t.any() else float(2 * np.count_nonzero(p & t) / (p.sum() + t.sum()))
    return out


def run_command(image: Path, out: Path, env: dict | None = None) -> tuple[int, str, float]:
    """(exit status, stderr, seconds) of `covidct segment-lesions IMAGE -o OUT` in its own process; ``env``: its
    environment (scripts/cv_lesions.py points COVIDCT_MODELS at a fold's weights)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "segment-lesions", str(image), "-o", str(out),
                           "--device", "cpu"], cwd=REPO, capture_output=True, text=True, env=env)
    return proc.returncode, proc.stderr.strip(), time.perf_counter() - start


def dice_against_truth(out: Path, gt: Path) -> dict[str, float | None]:
    """Dice per class of the label map the command wrote against the radiologists' GT (palette PNG: 0/1/2)."""
    pred = sitk.GetArrayFromImage(sitk.ReadImage(str(out))).reshape(-1)
    with Image.open(gt) as im:
        truth = np.asarray(im)
    return dice_per_class(pred.reshape(truth.shape), truth)


def mean_dice(rows: list[dict], name: str) -> float | None:
    values = [r["dice"][name] for r in rows if r.get("dice") and r["dice"][name] is not None]
    return round(float(np.mean(values)), 3) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=0, help="first N slices only (0: all 50)")
    args = parser.parse_args(argv)
    folder = args.data / LABELLED
    if not (folder / "Imgs").is_dir():
        parser.error(f"{folder} is absent (COVID-SemiSeg)")
    images = sorted((folder / "Imgs").glob("*.jpg"), key=lambda p: int(p.stem))
    images = images[: args.limit] if args.limit > 0 else images

    rows = []
    with tempfile.TemporaryDirectory(prefix="segment-lesions-") as tmp:
        for image in images:
            out = Path(tmp) / f"{image.stem}.nrrd"
            code, stderr, seconds = run_command(image, out)
            row = {"slice": int(image.stem), "validation": int(image.stem) in VALIDATION_SLICES, "exit": code,
                   "seconds": round(seconds, 2), "warning": stderr if code == 0 and stderr else None}
            if code == 0:
                row["dice"] = dice_against_truth(out, folder / "GT" / f"{image.stem}.png")
            else:
                row["message"] = stderr.splitlines()[-1] if stderr else ""
            rows.append(row)
            print(f"{image.name:>7}  exit {code}  {seconds:5.1f} s  "
                  + (" ".join(f"{k} {v:.3f}" for k, v in row.get("dice", {}).items() if v is not None)
                     or row.get("message", "")), flush=True)

    result = {"slices": len(rows), "refused": sum(r["exit"] == 2 for r in rows),
              "failed": sum(r["exit"] not in (0, 2) for r in rows), "warned": sum(bool(r["warning"]) for r in rows),
              "median_s": round(statistics.median(r["seconds"] for r in rows), 1) if rows else None}
    for subset, chosen in (("validation", [r for r in rows if r["validation"]]), ("all", rows)):
        result[subset] = {"slices": len(chosen), **{name: mean_dice(chosen, name) for name in CLASSES}}
    result["rows"] = rows
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    if args.output:
        tmp_out = args.output.with_name(args.output.name + ".part")
        tmp_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        tmp_out.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
