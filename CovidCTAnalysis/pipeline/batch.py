"""`covidct batch`: the analyze pipeline over a cohort, on Dask (issue 21).

One Dask task per case, each running ``analyze`` into ``OUTDIR/<case-id>/`` (atomically, outfolder.py). Dask's
``LocalCluster`` by default (``--workers`` processes, one thread each, and torch's threads set so that the workers
share the cores without oversubscribing them); ``--scheduler tcp://host:port`` runs on an existing Dask scheduler
instead, e.g. one started by dask-jobqueue on a cluster (README); an address of another form, or a scheduler that
does not answer within SCHEDULER_TIMEOUT_S, is refused (exit 2) before OUTDIR is created. Each worker process loads
the models once and keeps them (every system caches what it loads).

- Resumable: a case whose folder holds a report.json and every file that report lists is done and is skipped on a
  rerun. A case interrupted midway has no report.json: it runs again (its killed run's staging goes, outfolder.py).
- Failures: a case that fails (bad input, exit-2 problems, internal errors) is written to ``failures.csv`` with its
  error and never stops the others; it leaves no case folder.
- Case ids carry no patient name or ID: ``case-0001``... in the order given; ``batch-inputs.json`` keeps a hash of
  each case's input path, and a rerun whose ids would stand for other inputs is refused (never mixed).
  ``--id-map`` writes ``ids.csv`` (case id -> input path) on request; without it no path is written in OUTDIR.
- Cohort table: ``cohort.csv``, one row per done case (lung and lesion volumes, % involvement, severity band, each
  classifier's P(COVID-19); with ``--labels`` a ``label`` column, 1/0), rewritten atomically after every finished
  case. ``cohort.html`` (cohort_html.py): distributions and, with ``--labels`` (cohort_labels.py), ROC curves with
  bootstrap CIs and the threshold table per classifier; written atomically at the end of every run (a rerun with
  labels after a finished batch only rewrites the tables and the page).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..io.writers import atomic_path, write_csv
from .analyze import AnalyzeOptions
from .cohort_html import write_cohort_html
from .outfolder import listed_files

FAILURES = "failures.csv"
#: case id -> a sha256 of the input's resolved path: a rerun with other inputs must not take their results as done
INPUTS_FILE = "batch-inputs.json"
COHORT = "cohort.csv"
COHORT_PAGE = "cohort.html"
ID_MAP = "ids.csv"


@dataclass(frozen=True)
class Case:
    case_id: str
    path: Path


def read_case_list(path: Path) -> list[Path]:
    """Inputs from a CSV with a ``path`` column (relative paths are relative to the CSV's folder)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(path, f"cannot be read as a case list: {e}") from None
    if not rows or "path" not in rows[0]:
        raise InputError(path, "needs a header row with a 'path' column and one row per case")
    return [(path.parent / r["path"]).resolve() if not Path(r["path"]).is_absolute() else Path(r["path"])
            for r in rows if (r.get("path") or "").strip()]


def make_cases(inputs: list[Path]) -> list[Case]:
    """Running-number case ids, in the order given; the same input twice is one case."""
    seen: dict[Path, None] = {}
    for p in inputs:
        seen.setdefault(Path(p), None)
    return [Case(f"case-{k + 1:04d}", p) for k, p in enumerate(seen)]


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(str(Path(path).resolve()).encode("utf-8")).hexdigest()


def checked_inputs(outdir: Path, cases: list[Case]) -> dict[str, str]:
    """Which input each case id stands for (hashed: no path in OUTDIR), as ``batch-inputs.json`` is to hold it after
    this run; refuses a rerun whose case ids would stand for other inputs, so that one CT's results are never taken
    for another's. Reads only (``record_inputs`` writes)."""
    recorded_file = outdir / INPUTS_FILE
    current = {c.case_id: _fingerprint(c.path) for c in cases}
    recorded: dict = {}
    if recorded_file.is_file():
        try:
            recorded = json.loads(recorded_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(recorded_file, "is not readable; it records which input each case folder holds") from None
    changed = sorted(k for k in current if k in recorded and recorded[k] != current[k])
    if changed:
        raise InputError(outdir, f"holds a batch of other inputs ({changed[0]} was another file); give the same "
                                 "inputs in the same order to resume, or use a new output folder")
    return {**recorded, **current}


def record_inputs(outdir: Path, inputs: dict[str, str]) -> None:
    with atomic_path(outdir / INPUTS_FILE) as tmp:
        tmp.write_text(json.dumps(inputs, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def is_done(folder: Path) -> bool:
    """A finished case: report.json and every file it lists are there."""
    listed = listed_files(folder)
    return listed is not None and all((folder / n).is_file() for n in listed)


def input_bytes(path: Path) -> int:
    """Bytes of an input (a file, or every file below a folder): a cheap stand-in for its analysis time."""
    path = Path(path)
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def largest_first(cases: list[Case]) -> list[Case]:
    """Cases in the order to submit them: largest input first (longest-processing-time-first scheduling), so the
    last cases running while other workers idle are short ones; ties keep the given order."""
    return sorted(cases, key=lambda c: -input_bytes(c.path))


#: schemes of a Dask scheduler's address (``inproc`` only reaches a scheduler inside this process)
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss")
#: seconds to wait for ``--scheduler`` to answer (Dask's own default is 30)
SCHEDULER_TIMEOUT_S = 5


def check_scheduler_address(address: str) -> str:
    """``address`` if it has the form of a Dask scheduler's address, ``[tcp://]host:port``; an InputError naming
    --scheduler otherwise (checked before anything is written or connected to)."""
    def bad(why: str) -> InputError:
        return InputError("--scheduler", f"{address!r} is not a Dask scheduler address (tcp://host:port): {why}")

    scheme, sep, location = address.strip().rpartition("://")
    if sep and scheme.lower() not in SCHEDULER_SCHEMES:
        raise bad(f"unknown scheme {scheme!r} (one of {', '.join(SCHEDULER_SCHEMES)})")
    host, colon, port = location.rpartition(":")
    if not colon:
        raise bad("it has no port number")
    if not host.strip("[]") or any(c in host for c in "/?#@ "):
        raise bad("it has no host name")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise bad(f"the port {port!r} is not a number from 1 to 65535")
    return address.strip()


def _os_reason(exc: BaseException) -> str | None:
    """What the innermost OSError among the causes says, e.g. 'Connection refused'; None without one."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
        cause = cause.__cause__
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect(scheduler: str | None, workers: int):
    """A Dask client and the LocalCluster it runs on (None with ``scheduler``); an unusable or unreachable
    ``scheduler`` is an InputError after at most SCHEDULER_TIMEOUT_S seconds."""
    from dask.distributed import Client, LocalCluster

    if not scheduler:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=50)
        try:
            return Client(cluster), cluster
        except BaseException:
            cluster.close()
            raise
    address = check_scheduler_address(scheduler)
    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT_S), None
    except ValueError as exc:
        raise InputError("--scheduler", f"{address!r} is not a Dask scheduler address: {_first_line(exc)}") from None
    except TypeError as exc:
        if not address.lower().startswith(("tls://", "wss://")):
            raise
        # Dask's TLS settings (certificates) are missing from its configuration
        raise InputError("--scheduler", f"{address} needs TLS settings: {_first_line(exc)}") from None
    except (OSError, asyncio.TimeoutError) as exc:
        raise InputError(None, f"cannot reach the scheduler at {address}: {_os_reason(exc) or 'no answer'} (tried "
                               f"for {SCHEDULER_TIMEOUT_S} s; is a Dask scheduler running there?)") from None


def run_case(path: str, outdir: str, options: AnalyzeOptions, threads: int) -> dict:
    """One case on a worker: analyze into ``outdir``; returns the report (raises on failure). ``threads``: torch and
    ITK threads of this worker (0: the worker's own defaults, for a cluster's workers, whose cores we do not know)."""
    import SimpleITK as sitk
    import torch

    from ..heap import keep_freed_memory
    from .analyze import analyze

    keep_freed_memory()  # the worker's next case reuses this one's memory (heap.py)
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    return analyze(Path(path), Path(outdir), options)


def cohort_row(case_id: str, report: dict) -> dict:
    lungs = report.get("lungs") or {}
    lesions = report.get("lesions") or {}
    involvement = lesions.get("percent_involvement") or {}
    row = {"case_id": case_id, "right_lung_ml": lungs.get("right_ml"), "left_lung_ml": lungs.get("left_ml"),
           "lung_ml": lungs.get("total_ml"), "ggo_ml": lesions.get("ggo_ml"),
           "consolidation_ml": lesions.get("consolidation_ml"), "lesion_ml": lesions.get("total_ml"),
           "involvement_percent": involvement.get("total"),
           "severity": (lesions.get("severity") or {}).get("band"), "warnings": len(report.get("warnings") or [])}
    for name, result in sorted((report.get("classifiers") or {}).items()):
        row[f"p_covid_{name}"] = result.get("probability")
    return row


@dataclass
class BatchResult:
    done: list[str]
    skipped: list[str]
    failed: dict[str, str]


def run_batch(cases: list[Case], outdir: Path, options: AnalyzeOptions, *, workers: int = 1,
              scheduler: str | None = None, id_map: bool = False, labels: dict[str, int] | None = None,
              report: Callable[[str], None] = lambda line: None) -> BatchResult:
    """Analyze every case not yet done into ``outdir/<case-id>/``; writes cohort.csv, failures.csv and, at the end,
    cohort.html. ``labels``: case id -> 1 (COVID-19) / 0 (``cohort_labels.read_labels``), for the ROC section."""
    from dask.distributed import as_completed

    inputs = checked_inputs(outdir, cases)  # a refused rerun stops here, before anything starts or is written
    skipped = [c.case_id for c in cases if is_done(outdir / c.case_id)]
    todo = [c for c in cases if c.case_id not in skipped]
    rows: dict[str, dict] = {}  # the cohort table, in memory: a thousand-case rerun reads each report once
    for case_id in skipped:
        rows[case_id] = cohort_row(case_id, json.loads((outdir / case_id / "report.json").read_text(encoding="utf-8")))
    # the scheduler answers (or the command is refused) before OUTDIR is created or written into
    client, cluster = connect(scheduler, workers) if todo else (None, None)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        record_inputs(outdir, inputs)
        if id_map:
            write_csv(outdir / ID_MAP, [{"case_id": c.case_id, "path": str(c.path)} for c in cases])
        for case_id in skipped:
            report(f"{case_id}: done before, skipped")
        failed: dict[str, str] = {}
        done: list[str] = []

        def write_tables() -> None:
            ordered = [rows[c.case_id] for c in cases if c.case_id in rows]
            if labels is not None:
                ordered = [{**row, "label": labels.get(row["case_id"])} for row in ordered]
            if ordered:
                write_csv(outdir / COHORT, ordered)
            write_csv(outdir / FAILURES, [{"case_id": k, "error": v} for k, v in sorted(failed.items())],
                       ["case_id", "error"])

        if client is not None:
            # a LocalCluster shares this machine's cores; a cluster's workers keep their own settings
            threads = 0 if scheduler else max(1, (os.cpu_count() or 1) // max(workers, 1))
            futures = {client.submit(run_case, str(c.path), str(outdir / c.case_id), options, threads,
                                     key=f"covidct-{c.case_id}-{os.getpid()}", pure=False, priority=-k): c
                       for k, c in enumerate(largest_first(todo))}
            for future in as_completed(futures):
                case = futures[future]
                try:
                    rows[case.case_id] = cohort_row(case.case_id, future.result())
                    done.append(case.case_id)
                    report(f"{case.case_id}: done ({len(done) + len(failed)}/{len(todo)})")
                except Exception as exc:  # noqa: BLE001 - a failed case never stops the others
                    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    if not isinstance(exc, InputError):
                        message = f"{type(exc).__name__}: {message}"
                    failed[case.case_id] = message.replace(str(case.path), "INPUT") if not id_map else message
                    report(f"{case.case_id}: failed ({message})")
                write_tables()
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    write_tables()
    write_cohort_html(outdir / COHORT_PAGE, [rows[c.case_id] for c in cases if c.case_id in rows], labels,
                      failed=len(failed))
    return BatchResult(done, skipped, failed)
