#!/usr/bin/env python3
"""Benchmark `covidct batch`: cases per minute with 1 and with 2 (or --workers) Dask workers on the same cases.

    python scripts/benchmark_batch.py                       # the Radiopaedia stacks of ../shared/data
    python scripts/benchmark_batch.py CT1 CT2 ... --workers 1,2,4

Each run is a fresh `covidct batch` process into a fresh folder (so nothing is skipped), wall time from start to
exit (cluster start and model loading included, as a user sees them). Prints a table and the speed-up over 1 worker.
"""

from __future__ import annotations

import argparse
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
    print(f"{len(inputs)} cases, {os.cpu_count()} CPU cores")
    print(f"{'workers':>7} {'seconds':>9} {'cases/min':>10} {'speed-up':>9}")
    base = None
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
            cmd = [sys.executable, "-m", "CovidCTAnalysis", "batch", *map(str, inputs), "-o", str(Path(tmp) / "out"),
                   "--workers", str(n), "--device", "cpu", "--models", args.models]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        rate = len(inputs) / seconds * 60
        base = base or rate
        print(f"{n:>7} {seconds:>9.1f} {rate:>10.2f} {rate / base:>8.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
