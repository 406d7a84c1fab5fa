#!/usr/bin/env python3
"""Train `lungs-unet` on lungs-classic masks of the real CTs in ../shared/data (seed 002 §II-D, §II-F1).

Training data (never the imlab-lung3d volumes: they are the evaluation reference; never demo seeds 0-2: evaluated):
  radiopaedia  ../shared/data/radiopaedia-stacks, display-windowed JPEG stacks (io.load_ct on the folder), targets
               = segment_lungs_classic(display_windowed=True). Failure cases removed, as DeCoVNet did by hand
               (checked on a montage, see FAILURES): 74867 (severe consolidation: the classic mask leaves most of it
               out), 75349 slices 37-88 (bowel gas labelled lung). Slices outside the classic mask's main z run
               (e.g. a table edge labelled lung above the apex) are kept as negatives (empty target). Stack 74880 is
               held out for validation (agreement with lungs-classic).
  totalseg     ../shared/data/totalsegmentator example_ct.nii.gz (real HU, 3 mm, abdomen with lung bases): targets
               from lungs-classic; mostly negatives.
  demo         generated demo phantoms, seeds --demo-seeds (exact truth, pleural lesions).
Not used: COVID-SemiSeg slices (lung-centred crops: lungs-classic finds no lung on 19 of 20 sampled crops, the lungs
touch the crop's edge and read as outside air), ny-sbu-slices and lungmask-testdata (single slices kept for checks).

    python scripts/train_lungs_unet.py --iterations 900 --threads 1
    python scripts/train_lungs_unet.py --cache /tmp/lungs-unet-data.npz ...   # reuse the prepared slices
--out (a folder: lungs-unet.pt and training-log.json) and --cache are checked before any work (one line, exit status
2); every file is written atomically, so an interrupted run leaves none half-written.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("COVIDCT_DATA", REPO.parent / "shared" / "data"))
#: Failure cases of lungs-classic, found on a montage of 7 slices per stack (z ranges are inclusive, canonical z).
FAILURES = {"74867": "all", "75349": (37, 88)}
VALIDATION_STACK = "74880"
TOTALSEG_CT = "totalsegmentator/tests/reference_files/example_ct.nii.gz"


def _main_run(area: np.ndarray) -> tuple[int, int] | None:
    """Inclusive z range of the contiguous run of slices with lung that holds the largest slice."""
    if not area.any():
        return None
    z = int(np.argmax(area))
    lo, hi = z, z
    while lo > 0 and area[lo - 1] > 0:
        lo -= 1
    while hi < len(area) - 1 and area[hi + 1] > 0:
        hi += 1
    return lo, hi


def _sanity(name: str, labels: np.ndarray, spacing) -> dict:
    ml = float(np.prod(spacing)) / 1000.0
    right, left = float((labels == 1).sum() * ml), float((labels == 2).sum() * ml)
    xr = np.nonzero(labels == 1)[2].mean() if right else np.nan
    xl = np.nonzero(labels == 2)[2].mean() if left else np.nan
    return {"name": name, "right_ml": round(right), "left_ml": round(left),
            "right_left_ratio": round(right / left, 2) if left else None,
            "sides_ok": bool(xr < xl) if right and left else None,
            "slices_with_lung": int(labels.any(axis=(1, 2)).sum()), "slices": int(labels.shape[0])}


def build_data(demo_seeds: list[int], log) -> tuple[dict, dict]:
    import SimpleITK as sitk

    from CovidCTAnalysis.io import load_ct
    from CovidCTAnalysis.lungs import segment_lungs_classic
    from CovidCTAnalysis.lungs.unet_train import volume_to_slices

    parts: dict[str, list] = {"radiopaedia": [], "totalseg": [], "demo": [], "validation": []}
    checks = []
    root = DATA / "radiopaedia-stacks"
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name
        if FAILURES.get(name) == "all":
            checks.append({"name": name, "dropped": "lungs-classic failure (montage)"})
            continue
        ct = load_ct(folder)
        hu = sitk.GetArrayFromImage(ct.image)
        labels = sitk.GetArrayFromImage(segment_lungs_classic(ct.image, display_windowed=True))
        check = _sanity(name, labels, ct.image.GetSpacing())
        area = (labels > 0).sum(axis=(1, 2))
        run = _main_run(area)
        keep = np.ones(len(area), bool)
        if isinstance(FAILURES.get(name), tuple):
            a, b = FAILURES[name]
            keep[a:b + 1] = False
        labels = labels.copy()
        outside = np.ones(len(area), bool)
        if run is not None:
            outside[run[0]:run[1] + 1] = False
        labels[outside] = 0  # outside the main run: failures -> negatives
        check.update({"main_run": run, "negatives_from_outside_run": int((outside & (area > 0) & keep).sum()),
                      "slices_used": int(keep.sum())})
        checks.append(check)
        log(f"radiopaedia {name}: {check}")
        part = "validation" if name == VALIDATION_STACK else "radiopaedia"
        parts[part].append(volume_to_slices(hu, labels, np.flatnonzero(keep)))

    path = DATA / TOTALSEG_CT
    if path.is_file():
        ct = load_ct(path)
        hu = sitk.GetArrayFromImage(ct.image)
        labels = sitk.GetArrayFromImage(segment_lungs_classic(ct.image))
        checks.append(_sanity("totalseg example_ct", labels, ct.image.GetSpacing()))
        log(f"totalseg: {checks[-1]}")
        parts["totalseg"].append(volume_to_slices(hu, labels))

    from CovidCTAnalysis.demo import make_demo_ct

    for k, seed in enumerate(demo_seeds):
        size = (192, 192, 64) if k % 2 == 0 else (256, 256, 80)
        case = make_demo_ct(size=size, seed=seed)
        hu = sitk.GetArrayFromImage(case.image)
        parts["demo"].append(volume_to_slices(hu, sitk.GetArrayFromImage(case.lungs)))
        log(f"demo seed {seed} {size}")

    arrays = {}
    for key, items in parts.items():
        if items:
            arrays[f"{key}_images"] = np.concatenate([i for i, _ in items])
            arrays[f"{key}_targets"] = np.concatenate([t for _, t in items])
    return arrays, {"checks": checks}


def augmentation_settings() -> dict:
    from CovidCTAnalysis.lungs import unet_train as t

    return {"pleural_lesion_p": t.LESION_P, "lesion_radius_px": list(t.LESION_RADIUS_PX),
            "costal_depth_px": t.COSTAL_DEPTH_PX, "dense_fraction": t.DENSE_FRACTION, "saturate_p": t.SATURATE_P,
            "blur_p": t.BLUR_P,
            "affine": "rotation 10 deg, scale 20 %, translation 10 %, shear 10 deg (seed 002 II-F3)",
            "intensity": "gain 0.85-1.15 around -600 HU, offset +-60 HU, noise sigma 0-30 HU", "lr_flip": 0.5}


def validate(net, images: np.ndarray, targets: np.ndarray) -> float:
    """Dice of the network (2-D, on the network grid) against targets, pooled over slices."""
    import torch

    from CovidCTAnalysis.lungs.unet import normalize_hu

    inter = total = 0
    with torch.inference_mode():
        for s in range(0, len(images), 16):
            x = torch.from_numpy(images[s:s + 16].astype(np.float32))[:, None]
            p = (net(normalize_hu(x))[:, 0] > 0).numpy()
            t = targets[s:s + 16] > 0
            inter += int((p & t).sum())
            total += int(p.sum() + t.sum())
    return 2.0 * inter / max(total, 1)


def main(argv=None) -> int:
    from CovidCTAnalysis.models.training import run_script

    return run_script(lambda: _main(argv), "train_lungs_unet")


def _main(argv=None) -> int:
    from CovidCTAnalysis.errors import InputError, UsageParser
    from CovidCTAnalysis.io.outputs import check_output_path
    from CovidCTAnalysis.io.writers import atomic_path

    parser = UsageParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=900)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--crop", type=int, default=160)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--demo-seeds", default="3,4,5,6,7,8,9,10")
    parser.add_argument("--weights", nargs=3, type=float, default=(0.55, 0.15, 0.30),
                        metavar=("RADIOPAEDIA", "TOTALSEG", "DEMO"), help="sampling weights of the sources")
    parser.add_argument("--cache", type=Path, help="prepared slices (.npz): read when present, else written")
    parser.add_argument("--out", type=Path, default=REPO / "Resources" / "Models" / "lungs-unet")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        raise InputError(DATA, "the data folder is absent (set COVIDCT_DATA)")
    check_output_path(args.out, [], expect="dir")
    if args.cache is not None:
        if args.cache.is_dir():
            raise InputError(args.cache, "--cache is a folder; it names an .npz file")
        if not args.cache.exists():
            check_output_path(args.cache, [], extensions=(".npz",))

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import SimpleITK as sitk
    import torch

    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    torch.manual_seed(args.seed)
    from CovidCTAnalysis.lungs.unet import (FEATURES, HU_WINDOW, INPUT_SIZE, build_network, save_weights)
    from CovidCTAnalysis.lungs.unet_train import Source, train

    t_start = time.time()
    lines: list[str] = []

    def log(msg):
        print(msg, flush=True)
        lines.append(msg)

    demo_seeds = [int(s) for s in args.demo_seeds.split(",")]
    if args.cache and args.cache.is_file():
        try:
            data = dict(np.load(args.cache))
            meta = json.loads(str(data.pop("meta")))
        except Exception as e:  # noqa: BLE001 - any unreadable file is not a cache of this script
            raise InputError(args.cache, f"--cache is not a cache of this script ({type(e).__name__}); remove it "
                                         "or name another file") from None
        log(f"prepared slices read from {args.cache}")
    else:
        data, meta = build_data(demo_seeds, log)
        if args.cache:
            with atomic_path(args.cache) as tmp, open(tmp, "wb") as f:
                np.savez(f, meta=json.dumps(meta), **data)
    t_data = time.time() - t_start
    counts = {k[:-7]: int(v.shape[0]) for k, v in data.items() if k.endswith("_images")}
    positives = {k[:-8]: int(v.any(axis=(1, 2)).sum()) for k, v in data.items() if k.endswith("_targets")}
    log(f"slices: {counts}; with lung: {positives}; data prepared in {t_data:.0f} s")

    sources = [Source(name, data[f"{name}_images"], data[f"{name}_targets"], w)
               for name, w in zip(("radiopaedia", "totalseg", "demo"), args.weights) if f"{name}_images" in data]
    net = build_network()
    t_train = time.time()
    stats = train(net, sources, args.iterations, lr=args.lr, batch=args.batch, crop=args.crop, seed=args.seed, log=log)
    t_train = time.time() - t_train
    val = validate(net, data["validation_images"], data["validation_targets"]) if "validation_images" in data else None
    log(f"validation (stack {VALIDATION_STACK}, agreement with lungs-classic, network grid): Dice {val}")

    weights = args.out / "lungs-unet.pt"
    with atomic_path(weights) as tmp:
        save_weights(net, tmp)
    from CovidCTAnalysis.models.registry import sha256_file

    record = {
        "model": "lungs-unet", "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "wall_seconds": round(time.time() - t_start, 1), "data_seconds": round(t_data, 1),
        "train_seconds": round(t_train, 1), "threads": args.threads, "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "network": {"arch": "monai BasicUNet 2-D", "features": list(FEATURES), "input_size": INPUT_SIZE,
                    "hu_window": list(HU_WINDOW), "output": "1 logit (lung)"},
        "sources": {s.name: {"slices": int(len(s.images)), "with_lung": int(s.targets.any(axis=(1, 2)).sum()),
                             "weight": s.weight} for s in sources},
        "validation_slices": counts.get("validation", 0), "validation_dice_vs_classic": val,
        "demo_seeds": demo_seeds, "failures_removed": {k: (v if v == "all" else list(v)) for k, v in FAILURES.items()},
        "sanity_checks": meta["checks"], "training": stats, "augmentation": augmentation_settings(),
        "weights": {"path": "lungs-unet/lungs-unet.pt", "bytes": weights.stat().st_size,
                    "sha256": sha256_file(weights)},
    }
    with atomic_path(args.out / "training-log.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    log(f"weights {weights} ({weights.stat().st_size} bytes) sha256 {record['weights']['sha256']}")
    log(f"wall time {record['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
