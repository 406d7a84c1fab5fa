"""The DICOM files behind a CT, as pydicom datasets for DICOM outputs, and the patient identifiers they carry.

DICOM outputs (Segmentation, Parametric Map) must reference the images they were derived from: highdicom takes the
source datasets and copies their patient, study and frame-of-reference attributes. Headers are enough (no pixel
data is read); the datasets come in the order of the input's own third axis (``CTVolume.input_files``), which is the
order of the frames of a mask written back with ``to_input_grid``.

De-identification (issue 22): by default no patient name, ID or birth date may reach an output file name, a report
or a log. ``identifiers`` collects them from the input's headers so text can be checked or scrubbed, and
``remove_identifiers`` blanks them (and their aliases) in a dataset a writer is about to save. They are type 2
attributes of the Patient module: present and empty is valid DICOM.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .volume import CTVolume

#: Attributes blanked in DICOM outputs unless identifiers are kept (--keep-identifiers).
IDENTIFYING_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate")
#: Optional attributes that repeat them: deleted rather than blanked.
IDENTIFYING_ALIASES = ("OtherPatientIDs", "OtherPatientNames", "OtherPatientIDsSequence", "PatientBirthName",
                       "PatientMotherBirthName", "IssuerOfPatientID", "PatientBirthTime")
REMOVED = "[removed]"


def is_dicom_input(ct: CTVolume) -> bool:
    """Whether the CT was read from DICOM files whose headers are known (outputs can reference them)."""
    return ct.kind in ("dicom-series", "dicom-file") and bool(ct.input_files)


#: Type 2 attributes highdicom copies from the source into a derived object; absent in some real files (lungmask's
#: test slices have no patient or study module): added empty to the in-memory headers, never to the input files.
TYPE2_DEFAULTS = {"PatientName": "", "PatientID": "", "PatientBirthDate": "", "PatientSex": "", "StudyDate": "",
                  "StudyTime": "", "ReferringPhysicianName": "", "StudyID": "", "AccessionNumber": "",
                  "Modality": "CT", "SeriesNumber": None, "PositionReferenceIndicator": ""}


def source_datasets(ct: CTVolume, keep_identifiers: bool = False) -> list:
    """The input's DICOM headers (pydicom datasets without pixel data), in the order of the input's third axis,
    completed where a derived object needs them: missing type 2 attributes empty, and a missing Frame of Reference
    UID made from the series UID (so every output of one input shares it). Without ``keep_identifiers`` the patient
    name, ID and birth date are blanked here already, so no library warning or derived object can repeat them."""
    import pydicom
    from pydicom.uid import generate_uid

    datasets = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in ct.input_files]
    for ds in datasets:
        for keyword, value in TYPE2_DEFAULTS.items():
            if keyword not in ds:
                setattr(ds, keyword, value)
        if "FrameOfReferenceUID" not in ds:
            ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[str(datasets[0].get("SeriesInstanceUID", "")),
                                                                "frame of reference"])
        if not keep_identifiers:
            remove_identifiers(ds)
    return datasets


def remove_identifiers(dataset) -> None:
    """Blank patient name, ID and birth date in ``dataset`` (type 2: kept, empty); delete their optional aliases."""
    for keyword in IDENTIFYING_ATTRIBUTES:
        if keyword in dataset:
            setattr(dataset, keyword, "")
    for keyword in IDENTIFYING_ALIASES:
        if keyword in dataset:
            delattr(dataset, keyword)


def identifiers(files: Iterable[Path]) -> tuple[str, ...]:
    """Patient name (whole and each part of 3+ characters), ID and birth date (as stored and as YYYY-MM-DD) found
    in the headers of ``files``; unreadable files give nothing (reading errors are load_ct's to report)."""
    files = list(files)
    if not files:  # not a DICOM input: pydicom is not even imported
        return ()
    import pydicom

    found: set[str] = set()
    for f in files:
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True,
                                 specific_tags=["PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs"])
        except Exception:  # noqa: BLE001 - any unreadable header: nothing to protect in it
            continue
        name = str(ds.get("PatientName", "") or "")
        found.update(p for p in [name, *re.split(r"[\^=\s]+", name)] if len(p.strip()) >= 3)
        for keyword in ("PatientID", "OtherPatientIDs"):
            value = ds.get(keyword, "")
            values = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
            found.update(str(v).strip() for v in values if len(str(v).strip()) >= 3)
        birth = str(ds.get("PatientBirthDate", "") or "").strip()
        if re.fullmatch(r"\d{8}", birth):
            found.update({birth, f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"})
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (case-insensitive) replaced by "[removed]". A secret made of
    letters only (a part of a name) is replaced as a whole word ("Doe" but not "does"); IDs and dates anywhere."""
    for secret in secrets:
        if secret:
            pattern = re.escape(secret)
            if secret.isalpha():
                pattern = rf"(?<![A-Za-z0-9]){pattern}(?![A-Za-z0-9])"
            text = re.sub(pattern, REMOVED, text, flags=re.IGNORECASE)
    return text
