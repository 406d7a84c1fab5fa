#!/usr/bin/env python3
"""Benchmark `covidct batch`: cases per minute with 1 and with 2 (or --workers) Dask workers on the same cases.

    python scripts/benchmark_batch.py                       # the Radiopaedia stacks of ../shared/data
    python scripts/benchmark_batch.py CT1 CT2 ... --workers 1,2,4

Each run is a fresh `covidct batch` process into a fresh folder (so nothing is skipped), wall time from start to
exit (cluster start and model loading included, as a user sees them). Prints a table and the speed-up over 1 worker,
then where the time went: each stage's seconds summed over the cases (the reports' timings_s), so a stage that
scales badly with fewer torch threads per worker shows as a larger sum. N workers get cores // N torch threads each:
the ideal speed-up of N workers is N x (one thread's share of the work) / (N threads' speed-up inside one process);
other processes on the machine (the load average printed first) take their share of the cores.
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
    print(f"{'workers':>7} {'seconds':>9} {'cases/min':>10} {'speed-up':>9}")
    base = None
    stages: dict[int, dict[str, float]] = {}
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
            cmd = [sys.executable, "-m", "CovidCTAnalysis", "batch", *map(str, inputs), "-o", str(Path(tmp) / "out"),
                   "--workers", str(n), "--device", "cpu", "--models", args.models]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            stages[n] = {}
            for report in (Path(tmp) / "out").glob("case-*/report.json"):
                for stage, s in json.loads(report.read_text()).get("timings_s", {}).items():
                    stages[n][stage] = stages[n].get(stage, 0.0) + s
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        rate = len(inputs) / seconds * 60
        base = base or rate
        print(f"{n:>7} {seconds:>9.1f} {rate:>10.2f} {rate / base:>8.2f}x", flush=True)
    names = sorted({k for per in stages.values() for k in per})
    print("stage seconds summed over the cases (per worker count):")
    print(f"{'workers':>7} " + " ".join(f"{k:>11}" for k in names))
    for n, per in stages.items():
        print(f"{n:>7} " + " ".join(f"{per.get(k, 0.0):>11.1f}" for k in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
