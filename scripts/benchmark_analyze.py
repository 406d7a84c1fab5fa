#!/usr/bin/env python3
"""Benchmark `covidct analyze`: per-stage seconds (median of several runs) and peak resident memory.

Each run is a fresh `covidct analyze` process; its stage timings come from report.json and its peak RSS from the
kernel's accounting of that process (os.wait4). Without INPUT, a demo CT of --demo-size (default 512,512,300) is
generated once and analyzed as a file, so generation is not counted in the stages.

    python scripts/benchmark_analyze.py                  # demo CT 512x512x300, 3 runs
    python scripts/benchmark_analyze.py CT.nii.gz -n 5   # any CT
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(source: Path, out: Path, extra: list[str]) -> tuple[dict, float, float]:
    cmd = [sys.executable, "-m", "CovidCTAnalysis", "analyze", str(source), "-o", str(out), *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark: analyze failed: {proc.stderr.read().decode().strip()}")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return report["timings_s"], wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, help="CT to analyze (default: a generated demo CT)")
    parser.add_argument("-n", "--runs", type=int, default=3)
    parser.add_argument("--demo-size", default="512,512,300")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = args.input
        if source is None:
            from CovidCTAnalysis.demo import make_demo_ct, write_demo_case

            size = tuple(int(v) for v in args.demo_size.split(","))
            start = time.perf_counter()
            source = write_demo_case(make_demo_ct(size=size), tmp / "demo")
            print(f"demo CT {size} generated in {time.perf_counter() - start:.1f} s")
        runs = [run_once(source, tmp / f"run{k}", ["--device", args.device]) for k in range(args.runs)]

    stages = list(runs[0][0])
    print(f"\ninput: {source.name if args.input else 'demo CT ' + args.demo_size}; {args.runs} runs; "
          f"{os.cpu_count()} CPU cores; device {args.device}")
    print(f"{'stage':<14}{'median s':>10}{'min s':>9}{'max s':>9}")
    for stage in stages:
        values = [r[0][stage] for r in runs]
        print(f"{stage:<14}{statistics.median(values):>10.2f}{min(values):>9.2f}{max(values):>9.2f}")
    walls = [r[1] for r in runs]
    print(f"{'process wall':<14}{statistics.median(walls):>10.2f}{min(walls):>9.2f}{max(walls):>9.2f}")
    print(f"peak RSS (median of runs): {statistics.median(r[2] for r in runs):.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
