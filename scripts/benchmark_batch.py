#!/usr/bin/env python3
"""Benchmark `covidct batch`: cases per minute with 1 and with 2 (or --workers) Dask workers on the same cases.

    python scripts/benchmark_batch.py                       # the Radiopaedia stacks of ../shared/data
    python scripts/benchmark_batch.py CT1 CT2 ... --workers 1,2,4

Each run is a fresh `covidct batch` process into a fresh folder (so nothing is skipped), wall time from start to
exit (cluster start and model loading included, as a user sees them). Prints, per worker count, the speed-up over
1 worker, the CPU seconds the run used and the cores it kept busy on average (CPU s / seconds); then each stage's
seconds summed over the cases (the reports' timings_s).

Reading it: N workers get cores // N torch threads each. If 1 worker keeps C cores busy, N workers on N free cores
can at best be N / C times faster (the CPU seconds per case staying equal); a stage whose summed seconds grow with
the worker count is one that used the threads a lone worker had. Cores that other processes take (the load
average printed first) are missing from both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("COVIDCT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--models", default="all")
    parser.add_argument("--limit", type=int, default=0, help="use the first N inputs only")
    args = parser.parse_args()
    inputs = args.inputs or sorted(p for p in (DATA / "radiopaedia-stacks").iterdir() if p.is_dir())
    inputs = inputs[: args.limit] if args.limit else inputs
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{len(inputs)} cases, {os.cpu_count()} CPU cores, load average before {os.getloadavg()[0]:.2f}")
    print(f"{'workers':>7} {'seconds':>9} {'cases/min':>10} {'speed-up':>9} {'CPU s':>8} {'cores busy':>10}")
    base = None
    stages: dict[int, dict[str, float]] = {}
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
            cmd = [sys.executable, "-m", "CovidCTAnalysis", "batch", *map(str, inputs), "-o", str(Path(tmp) / "out"),
                   "--workers", str(n), "--device", "cpu", "--models", args.models]
            start = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the batch process and its reaped workers
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            stages[n] = {}
            for report in (Path(tmp) / "out").glob("case-*/report.json"):
                for stage, s in json.loads(report.read_text()).get("timings_s", {}).items():
                    stages[n][stage] = stages[n].get(stage, 0.0) + s
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        rate = len(inputs) / seconds * 60
        base = base or rate
        print(f"{n:>7} {seconds:>9.1f} {rate:>10.2f} {rate / base:>8.2f}x {cpu:>8.0f} {cpu / seconds:>10.2f}",
              flush=True)
    names = sorted({k for per in stages.values() for k in per})
    print("stage seconds summed over the cases (per worker count):")
    print(f"{'workers':>7} " + " ".join(f"{k:>11}" for k in names))
    for n, per in stages.items():
        print(f"{n:>7} " + " ".join(f"{per.get(k, 0.0):>11.1f}" for k in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
