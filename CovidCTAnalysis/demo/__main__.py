"""``python -m CovidCTAnalysis.demo OUTDIR [--size X,Y,Z] [--seed N] [--no-lesions]``: write a demo case.

Writes demo-ct.nrrd and its truth label maps into OUTDIR and prints the lesion list and the generation time.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import make_demo_ct, write_demo_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m CovidCTAnalysis.demo", description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--size", default="256,256,96", help="voxels x,y,z (default 256,256,96)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-lesions", action="store_true", help="the same patient without lesions")
    args = parser.parse_args(argv)
    try:
        size = tuple(int(v) for v in args.size.split(","))
        start = time.perf_counter()
        case = make_demo_ct(size, seed=args.seed, lesions=not args.no_lesions)
        elapsed = time.perf_counter() - start
    except ValueError as e:
        parser.error(str(e))
    path = write_demo_case(case, args.outdir)
    print(f"{path}  size {case.image.GetSize()}  spacing {tuple(round(s, 3) for s in case.image.GetSpacing())} mm"
          f"  generated in {elapsed:.2f} s")
    for les in case.lesion_list:
        kind = "GGO" if les.label == 1 else "consolidation"
        print(f"  {kind:13s} {les.side:5s} {les.volume_ml:6.1f} mL at {tuple(round(c, 1) for c in les.centre_mm)}"
              f"{'  pleural' if les.touches_pleura else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
