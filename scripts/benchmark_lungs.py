#!/usr/bin/env python3
"""Benchmark `lungs-classic` or `lungs-unet`: median seconds and peak resident memory of one segmentation.

Each run is a fresh process that reads the CT (an uncompressed .mha written once, so no decompression buffers),
resets the kernel's peak-RSS counter (/proc/self/clear_refs), segments, and reports wall seconds, the peak RSS
during segmentation (the CT in memory included) and the increase over the RSS before segmentation. Without INPUT a
demo CT of --demo-size (default 512,512,300) is generated once.

    python scripts/benchmark_lungs.py                       # demo CT 512x512x300, 5 runs
    python scripts/benchmark_lungs.py CT.nii.gz -n 3        # any CT readable by CovidCTAnalysis.io.load_ct
    taskset -c 0,1 python scripts/benchmark_lungs.py        # as on a 2-core machine
    python scripts/benchmark_lungs.py --model lungs-unet     # the 2-D U-Net (network loaded before the clock starts)

For lungs-unet the device is selected and the network loaded (sha256 checked when registered) before the peak counter
is reset and the clock starts, as a pipeline does once per process; that setup time is reported separately.
--threads sets torch's and SimpleITK's thread counts (default: the libraries' own).
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



def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(path: Path, display_windowed: bool, model: str = "lungs-classic", weights: Path | None = None,
          threads: int = 0) -> None:
    import SimpleITK as sitk

    from CovidCTAnalysis.lungs import lung_volumes_ml, segment_lungs_classic

    segment = segment_lungs_classic
    load_seconds = 0.0
    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    if model == "lungs-unet":
        import torch

        if threads:
            torch.set_num_threads(threads)
        from CovidCTAnalysis.lungs.unet import load_network, segment_lungs_unet
        from CovidCTAnalysis.models import select_device

        t = time.perf_counter()
        device = select_device("cpu")  # once per process (torch's deterministic mode costs ~2 s the first time)
        net = load_network("cpu", weights=weights)  # None: the registered weights, sha256 verified
        load_seconds = time.perf_counter() - t

        def segment(image, display_windowed=False):
            return segment_lungs_unet(image, display_windowed=display_windowed, net=net, device=device)

    image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    before = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    start = time.perf_counter()
    labels = segment(image, display_windowed=display_windowed)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "increase_mib": (peak - before) / 1024,
                      "peak_reset": reset, "volumes": lung_volumes_ml(labels), "load_seconds": load_seconds}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, help="CT (default: a generated demo CT)")
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--demo-size", default="512,512,300", help="x,y,z voxels of the demo CT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--display-windowed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="lungs-classic", choices=["lungs-classic", "lungs-unet"])
    parser.add_argument("--weights", type=Path, help="lungs-unet weights (default: registry, else the shipped file)")
    parser.add_argument("--threads", type=int, default=0, help="torch/SimpleITK threads (0: library default)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.display_windowed, args.model, args.weights, args.threads)
        return 0

    import SimpleITK as sitk

    with tempfile.TemporaryDirectory() as tmp:
        mha = Path(tmp) / "ct.mha"
        windowed = False
        if args.input is None:
            from CovidCTAnalysis.demo import make_demo_ct

            size = tuple(int(s) for s in args.demo_size.split(","))
            t = time.perf_counter()
            case = make_demo_ct(size=size, seed=args.seed)
            print(f"demo CT {size} generated in {time.perf_counter() - t:.1f} s")
            image, name = case.image, f"demo CT {'x'.join(map(str, size))} (seed {args.seed})"
        else:
            from CovidCTAnalysis.io import load_ct

            ct = load_ct(args.input)
            image, name, windowed = ct.image, str(args.input), ct.display_windowed
        sitk.WriteImage(image, str(mha), useCompression=False)
        size, spacing = image.GetSize(), image.GetSpacing()
        del image

        runs = []
        for i in range(args.runs):
            cmd = [sys.executable, __file__, "--child", str(mha), "--model", args.model, "--threads", str(args.threads)]
            cmd += ["--display-windowed"] if windowed else []
            cmd += ["--weights", str(args.weights)] if args.weights else []
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"benchmark: segmentation failed: {out.stderr.strip()}")
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  run {i + 1}: {runs[-1]['seconds']:.2f} s, peak {runs[-1]['peak_mib']:.0f} MiB")

    seconds = [r["seconds"] for r in runs]
    print()
    print(f"{args.model} on {name}: {size[0]}x{size[1]}x{size[2]} voxels, "
          f"{spacing[0]:.2f} x {spacing[1]:.2f} x {spacing[2]:.2f} mm")
    print(f"{'runs':<28}{len(runs)}")
    print(f"{'median seconds':<28}{statistics.median(seconds):.2f}   (min {min(seconds):.2f}, max {max(seconds):.2f})")
    print(f"{'peak RSS during run (MiB)':<28}{max(r['peak_mib'] for r in runs):.0f}"
          f"{'' if all(r['peak_reset'] for r in runs) else '   (includes reading: peak counter not resettable)'}")
    print(f"{'increase over the CT (MiB)':<28}{max(r['increase_mib'] for r in runs):.0f}")
    if args.model == "lungs-unet":
        print(f"{'device + network setup (s)':<28}{statistics.median(r['load_seconds'] for r in runs):.2f}"
              "   (once per process, not in the above)")
    v = runs[-1]["volumes"]
    print(f"{'lung volumes (ml)':<28}right {v['right_ml']:.0f}, left {v['left_ml']:.0f}, total {v['total_ml']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
