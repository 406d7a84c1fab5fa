"""A user's cohort for training DeCoVNet: a folder of CTs and a labels CSV.

The paper trains on CT volumes with patient-level labels only (seed 002, §II-C, §II-G). The CSV has a header with
at least the columns ``path`` and ``label``; ``path`` is relative to the cohort folder (or absolute) and names any
INPUT that ``covidct`` reads (NIfTI/NRRD/MHA file, DICOM series folder, slice-stack folder); ``label`` is 1 / 0,
``COVID-19`` / ``non-COVID``, ``positive`` / ``negative`` (case-insensitive). An optional ``split`` column
(``train``, ``val`` or ``test``) fixes the split; without it 15 % of the rows are drawn for validation (§II-G).
Every problem is an ``InputError`` naming the CSV (or the missing file) and the row (``models.training``'s shared
cohort reader).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InputError
from ...models.training import read_cohort_csv

SPLITS = {"train", "val", "test"}


@dataclass(frozen=True)
class CohortItem:
    path: Path
    label: int
    split: str | None
    line: int = field(default=0, compare=False)  # in the CSV




def read_cohort(folder: str | Path, labels_csv: str | Path) -> list[CohortItem]:
    """The rows of ``labels_csv`` as (path, label, split), paths resolved against ``folder`` and checked to exist."""
    folder, labels_csv = Path(folder), Path(labels_csv)
    if not folder.is_dir():
        raise InputError(folder, "the cohort folder does not exist or is not a folder")
    items = []
    for row in read_cohort_csv(labels_csv, base=folder, name="labels CSV", what="CT"):
        split = row.fields.get("split", "").lower() or None
        if split is not None and split not in SPLITS:
            raise InputError(labels_csv, f"row {row.line} has the split {split!r}; use train, val or test")
        items.append(CohortItem(row.path, row.label, split, row.line))
    return items
