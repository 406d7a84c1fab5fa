#!/usr/bin/env python
"""Time segment_lesions on a 512 x 512 x 300 chest CT (the demo phantom at that size; lungs by lungs-classic).

    python scripts/benchmark_lesions.py [--size 512,512,300] [--threads 2] [--repeat 3] [--weights FILE]

Prints the time of segment_lesions alone (the lung mask and its pleural fill are inputs, made by lungs-classic
before the clock starts, as `covidct analyze` does; scripts/benchmark_lungs.py times that step), the number of
slices it segmented and the time per slice, and the process CPU time (on a machine shared with other jobs the wall
time grows with the load average printed; CPU time / threads is about what an idle machine would take); each run
includes loading the weights. The median of the runs is printed last. Target (issue 4): <= 20 s on the project's
2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from CovidCTAnalysis.lesions import segment_lesions  # noqa: E402
from CovidCTAnalysis.lesions.network import load_network  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="512,512,300")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--weights", type=Path, help="weights file (default: the registered lesions-unet)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.split(","))

    from CovidCTAnalysis.demo import make_demo_ct

    t0 = time.time()
    case = make_demo_ct(size=size)
    print(f"demo CT {size} generated in {time.time() - t0:.1f} s (not timed below)")
    from CovidCTAnalysis.lungs import classic_lungs

    found = classic_lungs(case.image)
    lung = sitk.GetArrayViewFromImage(found.labels) > 0
    n_slices = int(lung.any(axis=(1, 2)).sum())
    walls, cpus = [], []
    for i in range(args.repeat):
        t0, c0 = time.time(), time.process_time()
        net = load_network("cpu", weights=args.weights)
        result = segment_lesions(case.image, found.labels, net=net, pleural=found.pleural)
        seconds, cpu = time.time() - t0, time.process_time() - c0
        walls.append(seconds)
        cpus.append(cpu)
        voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(result)))
        print(f"run {i + 1}: segment_lesions {seconds:.1f} s for {n_slices} lung slices "
              f"({1000 * seconds / max(1, n_slices):.0f} ms per slice), CPU time {cpu:.1f} s, "
              f"{voxels} lesion voxels, "
              f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}")
    print(f"median of {len(walls)} runs: {float(np.median(walls)):.1f} s wall, {float(np.median(cpus)):.1f} s CPU "
          f"({args.threads} threads; load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
