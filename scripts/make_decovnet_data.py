#!/usr/bin/env python
"""Generate DeCoVNet's semi-synthetic 3-D data set (see CovidCTAnalysis/classifiers/decovnet/synthetic.py).

Example (the command behind the shipped weights, recorded in Resources/Models/cards/decovnet.md):
    python scripts/make_decovnet_data.py --out /tmp/decovnet/data --threads 1   (100 volumes, ~6 min on one core)
Writes OUT/*.npz (one volume each: int16 HU, lung mask, lesion labels, instances, JSON meta with boxes) and
OUT/index.json. Reads ../shared/data only; never write the output into the repository.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.classifiers.decovnet.synthetic import DEMO_SIZE, LESION_SOURCES, build_dataset  # noqa: E402
from CovidCTAnalysis.cli import demo_size  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lesions", choices=LESION_SOURCES, default="labelled",
                   help="lesion bank: the 50 labelled SemiSeg slices (default) or the pseudo-labelled ones, for "
                        "models whose maps are scored on the labelled slices")
    p.add_argument("--demo-size", type=demo_size, default=DEMO_SIZE, metavar="X,Y,Z",
                   help=f"voxels of the generated thoraxes (default {','.join(map(str, DEMO_SIZE))}: 2.2 mm in-plane; "
                        "512,512,64 gives a clinical CT's 0.68 mm in-plane, for networks that see a CT at its own "
                        "resolution)")
    a = p.parse_args(argv)
    if a.out.resolve().is_relative_to(REPO):
        p.error("--out must lie outside the repository (generated data is never committed)")
    import torch

    torch.set_num_threads(a.threads)
    start = time.time()
    index = build_dataset(a.data, a.out, seed=a.seed, lesions=a.lesions, demo_size=a.demo_size)
    counts = {}
    for row in index:
        key = (row["split"], row["label"])
        counts[key] = counts.get(key, 0) + 1
    print(f"{len(index)} volumes in {time.time() - start:.0f} s: " +
          ", ".join(f"{s} {'pos' if l else 'neg'} {n}" for (s, l), n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
