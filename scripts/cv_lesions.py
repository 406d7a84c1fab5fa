#!/usr/bin/env python
"""5-fold cross-validation of lesions-unet training recipes on the 50 labelled COVID-SemiSeg slices, scored through
the `covidct segment-lesions` command.

    python scripts/cv_lesions.py folds
    python scripts/cv_lesions.py train --arch lite0-unet,basic-unet --models DIR [--device cuda] [--jobs N] \
        [--final ARCH]
    python scripts/cv_lesions.py evaluate --arch lite0-unet,basic-unet --models DIR [--baseline FILE] [--compare FILE] \
        -o cv.json

Folds: slices of one scan must not be split between training and test. As for the fixed validation split
(lesions.constants.VALIDATION_SLICES), consecutive slice numbers whose crops have nearly the same size (within
``SAME_SCAN`` in both dimensions) form one group; groups sorted by consolidation fraction are dealt to the five folds
in a snake order (stratified by consolidation). Each fold's model is trained with scripts/train_lesions.py
(``--holdout`` = the fold; the same self-training recipe, seed and iterations for every architecture: the Semi-Inf-Net
recipe of Fan et al., IEEE TMI 2020, as lesions/training.py runs it), and scored on its held-out slices by the real
command (scripts/evaluate_segment_lesions_command.py: one process per slice, the JPEG as stored, lungs-classic)
with a temporary model registry that points lesions-unet at the fold's weights.

Reported per architecture and class (infection, GGO, consolidation): Dice per fold (mean over the fold's slices with
the class present), the mean over folds with a bootstrap 95 % CI (slices resampled within each fold, 2000 times),
and the mean over all 50 out-of-fold slices. ``--baseline FILE`` (the JSON of
scripts/evaluate_segment_lesions_command.py for the shipped model) adds a paired comparison on the slices the
shipped model never trained on (its fixed validation split): mean Dice of both on those slices and a bootstrap 95 %
CI of the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import evaluate_segment_lesions_command as command_eval  # noqa: E402

from CovidCTAnalysis.lesions.metrics import CLASSES  # noqa: E402

FOLDS = 5
#: two consecutive slices are one scan when their crop sizes differ by at most this fraction in both dimensions
SAME_SCAN = 0.05
SEED = 0


def slice_table(data: Path) -> list[tuple[int, tuple[int, int], float]]:
    """(slice number, (width, height), consolidation fraction) of the 50 labelled slices, by number."""
    folder = data / command_eval.LABELLED
    rows = []
    for path in sorted((folder / "Imgs").glob("*.jpg"), key=lambda p: int(p.stem)):
        with Image.open(path) as im:
            size = im.size
        with Image.open(folder / "GT" / f"{path.stem}.png") as gt:
            consolidation = float((np.asarray(gt) == 2).mean())
        rows.append((int(path.stem), size, consolidation))
    return rows


def make_folds(rows, folds: int = FOLDS, tolerance: float = SAME_SCAN) -> list[list[int]]:
    """Slice numbers of each fold (module docstring): scan groups, sorted by consolidation, dealt in a snake order."""
    groups = []
    for number, size, cons in rows:
        if groups:
            prev_number, prev_size = groups[-1][-1][:2]
            if number == prev_number + 1 and all(abs(a - b) <= tolerance * b for a, b in zip(size, prev_size)):
                groups[-1].append((number, size, cons))
                continue
        groups.append([(number, size, cons)])
    groups.sort(key=lambda g: (-float(np.mean([r[2] for r in g])), g[0][0]))
    out = [[] for _ in range(folds)]
    for i, group in enumerate(groups):
        k = i % folds if (i // folds) % 2 == 0 else folds - 1 - i % folds
        out[k].extend(r[0] for r in group)
    return [sorted(f) for f in out]


def weights_path(models: Path, arch: str, fold: int) -> Path:
    return models / f"{arch}-fold{fold + 1}.pt"


def train(args, folds) -> int:
    """Train every (architecture, fold) model with scripts/train_lesions.py, ``--jobs`` processes at a time."""
    args.models.mkdir(parents=True, exist_ok=True)
    runs = [(arch, ",".join(map(str, fold)), weights_path(args.models, arch, k))
            for arch in args.arch for k, fold in enumerate(folds)]
    if args.final:
        runs.append((args.final, "none", args.models / f"{args.final}-all.pt"))
    jobs = []
    for arch, holdout, out in runs:
        cmd = [sys.executable, str(REPO / "scripts" / "train_lesions.py"), "--arch", arch, "--method", "self-training",
               "--holdout", holdout, "--seed", str(SEED), "--threads", "1", "--device", args.device,
               "--data", str(args.data / "covid-semiseg"), "--out", str(out), "--scale", str(args.scale)]
        if args.pretrained and arch.startswith("lite"):
            cmd += ["--pretrained", str(args.pretrained)]
        jobs.append((cmd, out.with_suffix(".log")))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    running, failed = [], 0
    while jobs or running:
        while jobs and len(running) < args.jobs:
            cmd, log = jobs.pop(0)
            print(" ".join(cmd), flush=True)
            running.append(subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env))
        time.sleep(2)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            failed += proc.returncode != 0
            print(f"exit {proc.returncode}: {' '.join(proc.args[-8:])}", flush=True)
    return 1 if failed else 0


def temporary_registry(weights: Path, folder: Path) -> Path:
    """A copy of the registry in ``folder`` whose lesions-unet is ``weights`` (other models: the shipped files)."""
    from CovidCTAnalysis.models.registry import default_registry_path, sha256_file

    data = json.loads(default_registry_path().read_text(encoding="utf-8"))
    shipped = default_registry_path().parent
    for entry in data["models"]:
        if entry.get("weights"):
            entry["weights"] = str((shipped / entry["weights"]).resolve())
        if entry["name"] == "lesions-unet":
            entry["weights"], entry["sha256"] = str(weights.resolve()), sha256_file(weights)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return folder


def fold_bootstrap(per_fold: list[np.ndarray], n: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile CI of the mean over folds of per-fold mean Dice, slices resampled within each fold."""
    rng = np.random.default_rng(seed)
    per_fold = [v[~np.isnan(v)] for v in per_fold]
    per_fold = [v for v in per_fold if v.size]
    means = np.mean([v[rng.integers(0, v.size, (n, v.size))].mean(axis=1) for v in per_fold], axis=0)
    return [round(float(np.percentile(means, 2.5)), 3), round(float(np.percentile(means, 97.5)), 3)]


def class_summary(rows: list[dict], folds: int) -> dict:
    """Per class: Dice per fold (mean over the fold's slices with the class present), the mean over folds with its
    ``fold_bootstrap`` CI, the mean over all slices; ``rows``: {"fold": 1.., "dice": {class: Dice or None}}."""
    summary = {}
    for name in CLASSES:
        per_fold = [np.array([r["dice"][name] if r.get("dice") and r["dice"][name] is not None else np.nan
                              for r in rows if r["fold"] == k + 1], float) for k in range(folds)]
        fold_means = [float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for v in per_fold]
        summary[name] = {"per_fold": [round(v, 3) for v in fold_means],
                         "mean_over_folds": round(float(np.nanmean(fold_means)), 3),
                         "ci95": fold_bootstrap(per_fold),
                         "mean_over_slices": round(float(np.nanmean(np.concatenate(per_fold))), 3),
                         "slices_with_class": int(np.isfinite(np.concatenate(per_fold)).sum())}
    return summary


def paired(rows: list[dict], baseline: list[dict], n: int = 2000, seed: int = 0, held_out_only: bool = True) -> dict:
    """Per class: mean Dice of the CV models and of the baseline on the slices both scored - the baseline's held-out
    slices only (rows with ``validation`` true) when ``held_out_only`` - and a bootstrap 95 % CI of the mean paired
    difference (CV minus baseline)."""
    ours = {r["slice"]: r.get("dice") for r in rows}
    theirs = {r["slice"]: r.get("dice") for r in baseline if r.get("validation") or not held_out_only}
    rng = np.random.default_rng(seed)
    out = {"slices": sorted(theirs)}
    for name in CLASSES:
        pairs = np.array([(ours[k][name], theirs[k][name]) for k in theirs
                          if ours.get(k) and theirs[k] and ours[k][name] is not None and theirs[k][name] is not None])
        diff = pairs[:, 0] - pairs[:, 1]
        boot = diff[rng.integers(0, diff.size, (n, diff.size))].mean(axis=1)
        out[name] = {"cv": round(float(pairs[:, 0].mean()), 3), "baseline": round(float(pairs[:, 1].mean()), 3),
                     "difference": round(float(diff.mean()), 3),
                     "difference_ci95": [round(float(np.percentile(boot, q)), 3) for q in (2.5, 97.5)],
                     "slices": int(diff.size)}
    return out


def evaluate(args, folds) -> int:
    """Each fold's held-out slices through `covidct segment-lesions` with that fold's weights; Dice table."""
    folder = args.data / command_eval.LABELLED
    result = {"folds": folds, "architectures": {}}
    for arch in args.arch:
        rows = []
        for k, fold in enumerate(folds):
            weights = weights_path(args.models, arch, k)
            with tempfile.TemporaryDirectory(prefix="cv-lesions-") as tmp:
                env = dict(os.environ, OMP_NUM_THREADS="1",
                           COVIDCT_MODELS=str(temporary_registry(weights, Path(tmp) / "models")))
                for number in fold:
                    image = folder / "Imgs" / f"{number}.jpg"
                    out = Path(tmp) / f"{number}.nrrd"
                    code, stderr, seconds = command_eval.run_command(image, out, env)
                    row = {"slice": number, "fold": k + 1, "exit": code, "seconds": round(seconds, 2)}
                    if code == 0:
                        row["dice"] = command_eval.dice_against_truth(out, folder / "GT" / f"{number}.png")
                    else:
                        row["message"] = stderr.splitlines()[-1] if stderr else ""
                    rows.append(row)
                    print(f"{arch} fold {k + 1} slice {number:>2} exit {code} {seconds:4.1f} s "
                          + " ".join(f"{c} {v:.3f}" for c, v in row.get("dice", {}).items() if v is not None),
                          flush=True)
        summary = {"failed": sum(r["exit"] != 0 for r in rows), **class_summary(rows, len(folds))}
        if args.baseline:
            summary["versus_baseline"] = paired(rows, json.loads(args.baseline.read_text(encoding="utf-8"))["rows"])
        if args.compare:
            summary["versus_compare"] = paired(rows, json.loads(args.compare.read_text(encoding="utf-8"))["rows"],
                                               held_out_only=False)
        result["architectures"][arch] = {"summary": summary, "rows": rows}
        print(arch, json.dumps(summary), flush=True)
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("folds", "train", "evaluate"))
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                    help="folder holding covid-semiseg/ (default ../shared/data)")
    ap.add_argument("--arch", default="lite0-unet,basic-unet", help="comma list of train_lesions.py --arch values")
    ap.add_argument("--models", type=Path, help="folder of the fold weights (ARCH-foldK.pt)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1, help="train: training processes at a time (one thread each)")
    ap.add_argument("--scale", type=float, default=1.0, help="train: train_lesions.py --scale")
    ap.add_argument("--pretrained", type=Path, help="train: train_lesions.py --pretrained")
    ap.add_argument("--final", help="train: also train this architecture on all 50 labelled slices (ARCH-all.pt)")
    ap.add_argument("--baseline", type=Path, help="evaluate: evaluate_segment_lesions_command.py JSON of the shipped "
                                                   "model, for a paired comparison on its held-out slices")
    ap.add_argument("--compare", type=Path, help="evaluate: a JSON whose 'rows' are another recipe's out-of-fold Dice "
                                                  "on the same folds, for a paired comparison on every slice")
    ap.add_argument("-o", "--output", type=Path, help="evaluate: write the results as JSON here")
    args = ap.parse_args(argv)
    args.arch = args.arch.split(",")
    folds = make_folds(slice_table(args.data))
    if args.action == "folds":
        for k, fold in enumerate(folds):
            print(f"fold {k + 1}: {len(fold)} slices: {','.join(map(str, fold))}")
        return 0
    if args.models is None:
        ap.error("--models is required")
    return train(args, folds) if args.action == "train" else evaluate(args, folds)


if __name__ == "__main__":
    raise SystemExit(main())
