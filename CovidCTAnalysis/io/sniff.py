"""What kind of file is this? File-name extensions checked against the first bytes of the content.

Extensions decide between formats that carry the same magic (NIfTI vs. any gzip file), the content decides where
names lie: COVID-CT ships JPEG data named ``.png`` and DICOM series often have no extension at all
(``CT.1.3.12...``), so a DICOM preamble (``DICM`` at byte 128) wins over any name.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..errors import InputError

# Compound suffixes first: Path.suffix alone would see ".gz" / ".nrrd".
VOLUME_SUFFIXES = {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "mha", ".mhd": "mha"}
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Harmless companions of slice folders (Radiopaedia stacks carry an Untitled.txt): ignored, with a note.
SIDECAR_SUFFIXES = (".txt", ".md", ".csv", ".tsv", ".json", ".xml", ".html", ".htm", ".pdf", ".log", ".ini", ".yaml",
                    ".yml", ".db")
SIDECAR_NAMES = ("thumbs.db", "desktop.ini", "dicomdir", "license", "readme", "version")
SUPPORTED_INPUTS = ".nii/.nii.gz, .nrrd/.nhdr, .mha/.mhd, DICOM (a file or a series folder), .png/.jpg"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
HEAD_BYTES = 132


def compound_suffix(path: str | os.PathLike) -> str:
    """Lower-case extension, keeping the two-part ones this package knows (.nii.gz, .seg.nrrd)."""
    name = Path(path).name.lower()
    for two in (".seg.nrrd", ".nii.gz"):
        if name.endswith(two) and len(name) > len(two):
            return two
    return Path(name).suffix


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    """First ``n`` bytes; an unreadable file becomes an InputError naming it."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except PermissionError:
        raise InputError(path, "cannot be read: permission denied") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file") from None
    except OSError as e:
        raise InputError(path, f"cannot be read: {e.strerror or e}") from None


def is_dicom(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def is_png_or_jpeg(head: bytes) -> bool:
    return head.startswith(PNG_MAGIC) or head.startswith(JPEG_MAGIC)


def classify(path: Path, head: bytes | None = None) -> str:
    """One of "dicom", "nifti", "nrrd", "mha", "image", "sidecar", "unknown" (no validation beyond the name/magic)."""
    head = read_head(path) if head is None else head
    suffix = compound_suffix(path)
    if suffix == ".seg.nrrd":
        suffix = ".nrrd"
    if is_dicom(head):
        return "dicom"
    if suffix in VOLUME_SUFFIXES:
        return VOLUME_SUFFIXES[suffix]
    if suffix in IMAGE_SUFFIXES or is_png_or_jpeg(head):
        return "image"
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    name = path.name.lower()
    if suffix in SIDECAR_SUFFIXES or name in SIDECAR_NAMES or Path(name).stem in SIDECAR_NAMES:
        return "sidecar"
    return "unknown"


def check_regular_file(path: Path) -> None:
    """Exists, is a regular readable file, is not empty; otherwise one clear InputError."""
    if not path.exists():
        if os.path.lexists(path):
            raise InputError(path, "is a broken link (its target does not exist)")
        raise InputError(path, "does not exist")
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise InputError(path, "is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise InputError(path, "is not a regular file (a device, pipe or socket)")
    if path.stat().st_size == 0:
        raise InputError(path, "is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise InputError(path, "cannot be read: permission denied")


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders 1, 2, ..., 10 (not 1, 10, 2): digit runs compare as numbers, text case-insensitively."""
    parts = _DIGITS.split(name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")
