#!/usr/bin/env python
"""Run `covidct analyze` over the real chest images in ../shared/data: which are refused, which crash, how long.

    python scripts/check_inputs.py -o check-out [--limit 5] [--sources semiseg-doctor,radiopaedia] [--device cpu]

Issue 18 asks that no chest image is refused. Each case goes through ``pipeline.analyze``, the function behind
`covidct analyze`, in this process (the models load once), with the CLI's defaults (lesions-unet, every runnable
classifier). Per case: ``ok``, ``refused`` (an InputError: what the command answers with exit status 2, and its
message) or ``crashed`` (any other exception: exit status 1), the seconds it took and the report's warnings. Per
source: cases, refused, crashed, cases with a warning, median seconds per case. Written to OUT/check_inputs.json and
OUT/check_inputs.md; outputs of each case are deleted after it.

Sources (``--limit N`` picks N cases spread evenly over each source's sorted list; 0 takes all):
covid-ct (COVID-CT PNG/JPEG figures, COVID and NonCOVID alternating), semiseg-doctor (the 50 radiologist-labelled
COVID-SemiSeg slices), semiseg-pseudo (COVID-SemiSeg Pseudo-label slices), radiopaedia (each JPEG stack folder),
ny-sbu (single DICOM slices, axial first), lungmask (its two DICOM slices and its figure), imlab (the two thorax
CTs), totalsegmentator (its CTs, crops and DICOM series; its 40 mm upper-abdomen DICOM series holds no lung and goes
on as a thin stack with a warning).
A volume deeper than 40 mm without lungs refused with "no lungs found" would be the expected answer, not a failure
of this check.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _files(folder: Path, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes) if folder.is_dir() else []


def _interleave(*lists: list[Path]) -> list[Path]:
    out = []
    for k in range(max((len(x) for x in lists), default=0)):
        out += [x[k] for x in lists if k < len(x)]
    return out


def _covid_ct(data: Path) -> list[Path]:
    return _interleave(_files(data / "covid-ct" / "images" / "COVID"), _files(data / "covid-ct" / "images" / "NonCOVID"))


def _semiseg(kind: str) -> Callable[[Path], list[Path]]:
    return lambda data: _files(data / "covid-semiseg" / "TrainingSet" / "LungInfection-Train" / kind / "Imgs")


def _radiopaedia(data: Path) -> list[Path]:
    root = data / "radiopaedia-stacks"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _ny_sbu(data: Path) -> list[Path]:
    root = data / "ny-sbu-slices"
    if not root.is_dir():
        return []
    views = [sorted(root.glob(f"*/{view}/*.dcm")) for view in ("axial", "coronal", "sagittal")]
    return views[0] + views[1] + views[2]


def _lungmask(data: Path) -> list[Path]:
    root = data / "lungmask-testdata"
    return sorted((root / "tests" / "testdata").glob("*.dcm")) + _files(root / "figures")


def _imlab(data: Path) -> list[Path]:
    return sorted(p for p in (data / "imlab-lung3d").glob("*.nii.gz") if not p.name.endswith("-msk.nii.gz"))


def _totalsegmentator(data: Path) -> list[Path]:
    ref = data / "totalsegmentator" / "tests" / "reference_files"
    found = [ref / "example_ct.nii.gz", ref / "example_ct_sm.nii.gz", ref / "example_ct_dicom",
             ref / "aorta_report" / "test_result" / "models" / "ct_cropped.nii.gz",
             ref / "pulmonary_report" / "models" / "ct_cropped.nii.gz"]
    return [p for p in found if p.exists()]


SOURCES: dict[str, Callable[[Path], list[Path]]] = {
    "covid-ct": _covid_ct,
    "semiseg-doctor": _semiseg("Doctor-label"),
    "semiseg-pseudo": _semiseg("Pseudo-label"),
    "radiopaedia": _radiopaedia,
    "ny-sbu": _ny_sbu,
    "lungmask": _lungmask,
    "imlab": _imlab,
    "totalsegmentator": _totalsegmentator,
}


def spread(cases: list[Path], limit: int) -> list[Path]:
    """``limit`` cases spread evenly over the sorted list (all of them for 0 or a short list)."""
    if limit <= 0 or len(cases) <= limit:
        return list(cases)
    step = len(cases) / limit
    return [cases[int(k * step)] for k in range(limit)]


def check_case(path: Path, options, workdir: Path) -> dict:
    from CovidCTAnalysis.errors import InputError
    from CovidCTAnalysis.pipeline import analyze

    out = workdir / "out"
    start = time.perf_counter()
    row = {"path": str(path)}
    try:
        report = analyze(path, out, options)
        row.update(outcome="ok", warnings=report.get("warnings", []))
    except InputError as exc:
        row.update(outcome="refused", message=str(exc))
    except Exception as exc:  # noqa: BLE001 - what the command would answer with exit status 1
        row.update(outcome="crashed", message=f"{type(exc).__name__}: {exc}",
                   where=traceback.format_exc().strip().splitlines()[-3:])
    row["seconds"] = round(time.perf_counter() - start, 2)
    shutil.rmtree(out, ignore_errors=True)
    return row


def summarize(rows: list[dict]) -> dict:
    seconds = [r["seconds"] for r in rows]
    return {
        "cases": len(rows),
        "refused": sum(r["outcome"] == "refused" for r in rows),
        "crashed": sum(r["outcome"] == "crashed" for r in rows),
        "warned": sum(bool(r.get("warnings")) for r in rows),
        "median_s": round(statistics.median(seconds), 1) if seconds else None,
    }


def markdown(results: dict) -> str:
    lines = ["| source | cases | refused (exit 2) | crashed | ok with a warning | median s per case |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, res in results["sources"].items():
        s = res["summary"]
        lines.append(f"| {name} | {s['cases']} | {s['refused']} | {s['crashed']} | {s['warned']} | "
                     f"{'-' if s['median_s'] is None else s['median_s']} |")
    problems = [(name, r) for name, res in results["sources"].items() for r in res["cases"] if r["outcome"] != "ok"]
    if problems:
        lines += ["", "| source | case | outcome | message |", "|---|---|---|---|"]
        for name, r in problems:
            lines.append(f"| {name} | {Path(r['path']).name} | {r['outcome']} | {r['message'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for check_inputs.json and .md")
    parser.add_argument("--limit", type=int, default=5, help="cases per source, spread evenly (0: all; default 5)")
    parser.add_argument("--sources", default="all", help=f"all, or a comma-separated list of {', '.join(SOURCES)}")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)

    names = list(SOURCES) if args.sources.strip() == "all" else [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        parser.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    if not args.data.is_dir():
        parser.error(f"data folder {args.data} is absent")

    from CovidCTAnalysis.pipeline import AnalyzeOptions

    options = AnalyzeOptions(device=args.device)
    args.output.mkdir(parents=True, exist_ok=True)
    results = {"limit": args.limit, "device": args.device, "data": str(args.data), "sources": {}}
    with tempfile.TemporaryDirectory(prefix="check-inputs-") as tmp:
        for name in names:
            rows = []
            for path in spread(SOURCES[name](args.data), args.limit):
                rows.append(check_case(path, options, Path(tmp)))
                r = rows[-1]
                print(f"{name:<17} {r['outcome']:<8} {r['seconds']:7.1f} s  {path.name}"
                      + (f"  ({r['message']})" if "message" in r else ""), flush=True)
            results["sources"][name] = {"summary": summarize(rows), "cases": rows}
            (args.output / "check_inputs.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            (args.output / "check_inputs.md").write_text(markdown(results), encoding="utf-8")
    print("\n" + markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
