"""The truth of a cohort for `covidct batch --labels` (issue 21): which cases are COVID-19, matched to case ids.

The labels file is a CSV with a header row and two columns:

- the case: ``path`` (the input as given to batch or in ``--list``; a relative path is relative to the labels file's
  folder, as in ``--list``, so a case list with a ``label`` column serves as both) or ``case_id`` (``case-0001``...,
  the folder batch gives the case); a row may fill either;
- ``label``: ``1`` or ``COVID-19`` (positive), ``0`` or ``non-COVID`` (negative); case and spaces are ignored.

Labels are matched to cases in memory and only case ids go further: no patient path reaches OUTDIR. Rows that name an
input outside this batch are ignored (a cohort's labels file may cover more cases than one run); cases without a row
are unlabelled. A file that cannot be read, lacks the columns, has an unknown label, gives one case two labels, or
matches no case at all is refused with one line naming the file and the row (InputError, exit 2), before anything
is written.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

#: accepted label spellings (lower case) -> 1 COVID-19, 0 non-COVID
LABEL_WORDS = {"1": 1, "covid-19": 1, "0": 0, "non-covid": 0}


@dataclass(frozen=True)
class CohortLabels:
    """case id -> 1 (COVID-19) / 0 (non-COVID); ``ignored``: rows naming no input of this batch."""

    by_case: dict
    ignored: int = 0


def _key(path: str | Path, base: Path) -> Path:
    p = Path(path)
    return (p if p.is_absolute() else base / p).resolve()


def read_labels(path: Path, cases) -> CohortLabels:
    """The labels of ``cases`` (``batch.Case``: case_id and input path) from the CSV at ``path`` (module doc)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
                    for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(path, f"cannot be read as a labels file: {e}") from None
    if "label" not in columns or not {"path", "case_id"} & set(columns):
        raise InputError(path, "needs a header row with a 'label' column and a 'path' or 'case_id' column")
    by_path = {Path(c.path).resolve(): c.case_id for c in cases}
    ids = {c.case_id for c in cases}
    labels: dict[str, int] = {}
    ignored = 0
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        where = f"row {number}"
        word = row.get("label", "").lower()
        if word not in LABEL_WORDS:
            raise InputError(path, f"{where}: label {row.get('label', '')!r} is not 1, 0, COVID-19 or non-COVID")
        case_id, given = row.get("case_id", ""), row.get("path", "")
        if not case_id and not given:
            raise InputError(path, f"{where}: names no case (fill 'path' or 'case_id')")
        if case_id not in ids:
            case_id = by_path.get(_key(given, path.parent)) if given else None
        if case_id is None:
            ignored += 1
            continue
        if labels.get(case_id, LABEL_WORDS[word]) != LABEL_WORDS[word]:
            raise InputError(path, f"{where}: gives {case_id} a second, different label")
        labels[case_id] = LABEL_WORDS[word]
    if not labels:
        raise InputError(path, f"none of its {len(rows)} rows names an input of this batch (by path or case id)")
    return CohortLabels(labels, ignored)
