#!/usr/bin/env python3
"""cohort.html with ROC curves on real 3-D cases (issue 21's done-when): `covidct batch --labels` over the
Radiopaedia COVID-19 slice stacks (label COVID-19) and the two imlab whole-thorax CTs (normal lungs: non-COVID).

    python scripts/cohort_roc_radiopaedia.py -o /tmp/cohort-radiopaedia                 # both classifiers, 2 workers
    python scripts/cohort_roc_radiopaedia.py -o OUT --models slice-resnet --workers 1

One case per patient: 75329_2 is a second stack of case 75329 and is left out (two stacks of one patient would count
twice in the ROC). 74560 and 75349 are mostly abdomen; a stack whose lungs are not found goes to failures.csv like in
any batch. The labels file is written outside OUTDIR (it names the inputs' paths); OUTDIR gets case ids only. A rerun
into the same OUTDIR skips the finished cases and only redraws the page. Exits 0 with "skipped: ..." when the data
folder is absent (a fresh clone), else with `covidct batch`'s status. With 11 cases this is minutes per case on a
CPU: a script, not a unit test (Testing/test_pipeline_batch.py checks the same path on 2-D slices).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("COVIDCT_DATA", REPO.parent / "shared" / "data"))
SECOND_STACKS = {"75329_2"}  # a second stack of an included patient


def cohort(data: Path) -> list[tuple[Path, int]]:
    """(input, label): the Radiopaedia stacks (1) and the imlab CTs (0)."""
    stacks = sorted(p for p in (data / "radiopaedia-stacks").iterdir() if p.is_dir() and p.name not in SECOND_STACKS)
    normals = sorted(p for p in (data / "imlab-lung3d").glob("*.nii.gz") if "-msk" not in p.name)
    return [(p, 1) for p in stacks] + [(p, 0) for p in normals]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, help="the batch's OUTDIR")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", default="all")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if not (args.data / "radiopaedia-stacks").is_dir() or not (args.data / "imlab-lung3d").is_dir():
        print(f"skipped: {args.data} has no radiopaedia-stacks/ and imlab-lung3d/ (a fresh clone has no data)")
        return 0
    cases = cohort(args.data)
    with tempfile.TemporaryDirectory(prefix="cohort-labels-") as tmp:
        labels = Path(tmp) / "labels.csv"
        with open(labels, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label"])
            writer.writerows((str(p), "COVID-19" if y else "non-COVID") for p, y in cases)
        command = [sys.executable, "-m", "CovidCTAnalysis", "batch", *(str(p) for p, _ in cases), "-o", str(args.out),
                   "--labels", str(labels), "--models", args.models, "--workers", str(args.workers),
                   "--device", args.device]
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        status = subprocess.run(command, env={**os.environ, "PYTHONPATH": path}).returncode
    if status == 0:
        print(f"{sum(y for _, y in cases)} COVID-19 stacks, {sum(1 - y for _, y in cases)} normal CTs: "
              f"open {args.out / 'cohort.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
