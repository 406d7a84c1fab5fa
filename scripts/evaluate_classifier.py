#!/usr/bin/env python
"""Evaluate a COVID-19 classifier on a labelled split with the shared harness (CovidCTAnalysis.evaluation).

Scores come either from a `covidct classify` CSV (--scores; any classifier) or from running the model here
(--model: through `covidct classify`, or in this process with --in-process). Truth comes from the COVID-CT split
lists (--split train|val) matched by file name.

    python scripts/evaluate_classifier.py --model slice-resnet --in-process --split val -o /tmp/eval-slice-resnet
    python scripts/evaluate_classifier.py --scores val.csv --split val -o /tmp/eval-decovnet --title decovnet

Writes OUT/metrics.json (every metric with its bootstrap 95 % CI, threshold table, calibration, per-case scores),
OUT/roc.png, OUT/pr.png, OUT/calibration.png, and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.evaluation import covid_ct_split, evaluate, format_summary, read_scores  # noqa: E402


def in_process_scores(model: str, paths: list[Path], registry: Path | None, device: str, threads: int
                      ) -> list[float]:
    """P(COVID-19) of each 2-D figure from classifier ``model`` run in this process (through the classifier table)."""
    import torch

    from CovidCTAnalysis.classifiers.table import load_classifier
    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.models.device import select_device

    torch.set_num_threads(threads)
    classifier = load_classifier(model, select_device(device), registry)
    return [classifier.run(load_ct(p), None).probability for p in paths]


def cli_scores(model: str, paths: list[Path], device: str) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.csv"
        subprocess.run([sys.executable, "-m", "CovidCTAnalysis", "classify", "--model", model, "--device", device,
                        *map(str, paths), "-o", str(out)], check=True)
        scores = read_scores(out)
    return [scores[str(p)] for p in paths]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="classifier to run (through `covidct classify`, or --in-process)")
    src.add_argument("--scores", type=Path, help="a `covidct classify` CSV")
    ap.add_argument("--split", default="val", choices=("train", "val"))
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--registry", type=Path, help="registry.json to load weights from (default: the shipped one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--in-process", action="store_true",
                    help="run --model in this process (faster for 2-D figures; honours --registry and --threads)")
    ap.add_argument("--title", default=None)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for single images on 2 cores)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args(argv)

    items = covid_ct_split(a.data / "covid-ct", a.split)
    paths, labels = [p for p, _ in items], [y for _, y in items]
    t0 = time.time()
    if a.scores:
        by_name = {Path(k).name: v for k, v in read_scores(a.scores).items()}
        missing = [p.name for p in paths if p.name not in by_name]
        if missing:
            ap.error(f"{len(missing)} images of the {a.split} split have no score in {a.scores} (e.g. {missing[0]})")
        scores = [by_name[p.name] for p in paths]
    elif a.in_process:
        scores = in_process_scores(a.model, paths, a.registry, a.device, a.threads)
    else:
        scores = cli_scores(a.model, paths, a.device)
    seconds = time.time() - t0
    title = a.title or f"{a.model or a.scores.stem} on COVID-CT {a.split}"
    result = evaluate(labels, scores, a.out, title=title, names=[p.name for p in paths], n_boot=a.bootstrap)
    print(f"{title}: {len(paths)} images, scored in {seconds:.0f} s")
    print(format_summary(result))
    with open(a.out / "threshold_table.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["threshold", "accuracy", "ppv", "npv", "sensitivity", "specificity"])
        for row in result["threshold_table"]:
            w.writerow([row["threshold"]] + [("" if row[k] is None else f"{row[k]:.3f}")
                                             for k in ("accuracy", "ppv", "npv", "sensitivity", "specificity")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
