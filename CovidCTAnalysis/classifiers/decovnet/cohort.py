"""A user's cohort for training DeCoVNet: a folder of CTs and a labels CSV.

The paper trains on CT volumes with patient-level labels only (seed 002, §II-C, §II-G). The CSV has a header with
at least the columns ``path`` and ``label``; ``path`` is relative to the cohort folder (or absolute) and names any
INPUT that ``covidct`` reads (NIfTI/NRRD/MHA file, DICOM series folder, slice-stack folder); ``label`` is 1 / 0,
``COVID-19`` / ``non-COVID``, ``positive`` / ``negative`` (case-insensitive). An optional ``split`` column
(``train``, ``val`` or ``test``) fixes the split; without it 15 % of the rows are drawn for validation (§II-G).
Every problem is an ``InputError`` naming the CSV (or the missing file) and the row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError

POSITIVE = {"1", "covid-19", "covid", "positive", "pos", "true", "yes"}
NEGATIVE = {"0", "non-covid", "noncovid", "negative", "neg", "normal", "false", "no"}
SPLITS = {"train", "val", "test"}


@dataclass(frozen=True)
class CohortItem:
    path: Path
    label: int
    split: str | None


def parse_label(text: str) -> int | None:
    value = text.strip().lower()
    if value in POSITIVE:
        return 1
    if value in NEGATIVE:
        return 0
    return None


def read_cohort(folder: str | Path, labels_csv: str | Path) -> list[CohortItem]:
    """The rows of ``labels_csv`` as (path, label, split), paths resolved against ``folder`` and checked to exist."""
    folder, labels_csv = Path(folder), Path(labels_csv)
    if not folder.is_dir():
        raise InputError(folder, "the cohort folder does not exist or is not a folder")
    try:
        text = labels_csv.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(labels_csv, "the labels CSV does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(labels_csv, f"the labels CSV cannot be read ({e})") from None
    reader = csv.DictReader(text.splitlines())
    columns = {c.strip().lower(): c for c in (reader.fieldnames or [])}
    if "path" not in columns or "label" not in columns:
        raise InputError(labels_csv, "the labels CSV needs a header with the columns path and label")
    items, seen = [], set()
    for n, row in enumerate(reader, start=2):
        raw_path = (row.get(columns["path"]) or "").strip()
        raw_label = row.get(columns["label"]) or ""
        if not raw_path and not raw_label.strip():
            continue
        if not raw_path:
            raise InputError(labels_csv, f"row {n} has no path")
        label = parse_label(raw_label)
        if label is None:
            raise InputError(labels_csv, f"row {n} has the label {raw_label!r}; use 1/0, COVID-19/non-COVID or "
                                         "positive/negative")
        split = None
        if "split" in columns:
            split = (row.get(columns["split"]) or "").strip().lower() or None
            if split is not None and split not in SPLITS:
                raise InputError(labels_csv, f"row {n} has the split {split!r}; use train, val or test")
        path = Path(raw_path)
        path = path if path.is_absolute() else folder / path
        if not path.exists():
            raise InputError(path, f"listed in row {n} of {labels_csv.name}, but it does not exist")
        key = path.resolve()
        if key in seen:
            raise InputError(labels_csv, f"row {n} lists {raw_path} a second time")
        seen.add(key)
        items.append(CohortItem(path, label, split))
    if not items:
        raise InputError(labels_csv, "the labels CSV lists no CT")
    return items
