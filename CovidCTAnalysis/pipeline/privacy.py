"""De-identification by default (issue 22): no patient name, ID or birth date in the outputs, reports or progress
messages of ``covidct analyze``; ``--keep-identifiers`` keeps them (and adds them to the report).

What is protected is what the input's DICOM headers say identifies the patient (``io.dicom_source.identifiers``):
the analysis never puts those values into a file name (output names are fixed), the DICOM outputs carry them blank,
and every text derived from the input (its path in report.json/html/pdf, reading notes, warnings, progress messages)
has them replaced by "[removed]" - a hospital folder named after the patient's ID does not leak through the report.
The output folder's own name is the user's choice and is not changed. Error lines (exit status 2) still name the
file the user gave: that line goes only to the person who typed the path.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..io.dicom_source import REMOVED, identifiers, scrub
from ..io.sniff import is_dicom, read_head
from .progress import Emit

#: At most this many files of an input folder are read for identifiers (a series has one patient; mixed folders
#: beyond this size are rare, and the chosen series' files are read again after loading).
MAX_PEEK = 2000


def dicom_files(source: Path) -> list[Path]:
    """The DICOM files of an input (a file, or the files directly in a folder), found by their DICM marker."""
    source = Path(source)
    try:
        candidates = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())[:MAX_PEEK]
    except OSError:
        return []
    out = []
    for path in candidates:
        try:
            if is_dicom(read_head(path)):
                out.append(path)
        except OSError:
            continue
    return out


class Privacy:
    """The identifiers of one input and the scrubbing of every text the run derives from it."""

    def __init__(self, source: Path | None, keep: bool = False):
        self.keep = keep
        self.secrets: tuple[str, ...] = () if keep or source is None else identifiers(dicom_files(source))

    def add(self, files) -> None:
        """Identifiers of the files the reader actually used (a series chosen among several, for example)."""
        if not self.keep:
            self.secrets = tuple(sorted(set(self.secrets) | set(identifiers(files)), key=len, reverse=True))

    def text(self, value: str) -> str:
        """``value`` with every identifier replaced by "[removed]" (also in its HTML-escaped spelling)."""
        if not self.secrets:
            return value
        return scrub(value, [*self.secrets, *{html.escape(s) for s in self.secrets} - set(self.secrets)])

    def data(self, value):
        """A JSON-like structure with every string (keys included) scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def emit(self, emit: Emit | None) -> Emit | None:
        """A progress callback that scrubs every message before passing it on."""
        if emit is None:
            return None
        return lambda stage, fraction, message: emit(stage, fraction, self.text(message))


def patient_section(files) -> dict:
    """{"name", "id", "birth_date"} from the first readable DICOM header: the report's ``patient`` entry under
    --keep-identifiers (empty strings where the header has none)."""
    import pydicom

    for f in files:
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True,
                                 specific_tags=["PatientName", "PatientID", "PatientBirthDate"])
        except Exception:  # noqa: BLE001 - an unreadable header gives nothing
            continue
        return {"name": str(ds.get("PatientName", "") or ""), "id": str(ds.get("PatientID", "") or ""),
                "birth_date": str(ds.get("PatientBirthDate", "") or "")}
    return {"name": "", "id": "", "birth_date": ""}


__all__ = ["MAX_PEEK", "Privacy", "REMOVED", "dicom_files", "patient_section"]
