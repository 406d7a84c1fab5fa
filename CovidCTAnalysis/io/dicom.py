"""DICOM through SimpleITK/GDCM only: one file, or the series of a folder (the series with most slices wins).

GDCM applies Rescale Slope/Intercept (0028,1053/1052), so pixel values come out in HU; the real-data test checks it
against the raw stored integers of a TotalSegmentator file (intercept -1024).

Modality: (0008,0060) must be CT. When it is missing (lungmask's test slices), the SOP Class UID (0008,0016) decides
(CT Image Storage and its enhanced/legacy variants count as CT); with neither, the file is accepted as CT and a note
says so. Anything else is refused by name ("modality MR, not CT").

Damaged files: GDCM's series scan silently skips every file it cannot parse, so a truncated last slice would vanish
from the volume. A folder's DICOM-looking files (DICM marker, or a DICOM extension) that no series took are refused by
name, unless their file meta says they are DICOM objects without a CT image (a report, a key object selection, a
parametric map): those are no slices and are ignored, with a note.
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from . import validate
from .slices import DEFAULT_SLICE_MM
from .sniff import SIDECAR_NAMES, classify, is_dicom, natural_key, read_head
from .volume import strip_metadata

MODALITY = "0008|0060"
SOP_CLASS = "0008|0016"
SLICE_THICKNESS = "0018|0050"
SPACING_BETWEEN_SLICES = "0018|0088"
GANTRY_TILT = "0018|1120"
PIXEL_SPACING = "0028|0030"
POSITION = "0020|0032"
ORIENTATION = "0020|0037"
SERIES_DESCRIPTION = "0008|103e"
CT_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image Storage",
}
# Storage classes of single images that may be slices of a CT series: a file of one of them that GDCM skipped is a
# damaged slice, never an object to ignore (Secondary Capture carries converted or anonymised CT slices).
SLICE_SOP_CLASSES = set(CT_SOP_CLASSES) | {"1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1",
                                           "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3",
                                           "1.2.840.10008.5.1.4.1.1.7.4"}
# File meta elements (explicit VR little endian) whose length takes 4 bytes after 2 reserved ones.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
# Largest tolerated deviation of slice gaps from their mean, as a fraction of the mean gap (rounding in positions).
UNEVEN_TOLERANCE = 0.1
# Largest angle (degrees) between the line through the slice positions and the slices' normal: beyond it the series
# is sheared (gantry tilt), not a stack of parallel slices along their normal.
MAX_SHEAR_DEG = 0.5


@contextlib.contextmanager
def quiet_itk() -> Iterator[None]:
    """Silence ITK/GDCM warnings on stderr while reading (the CLI promises one clean line on errors)."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _tag(reader: sitk.ImageFileReader, key: str) -> str | None:
    if not reader.HasMetaDataKey(key):
        return None
    value = reader.GetMetaData(key).strip().strip("\x00").strip()
    return value or None


def _explain_unreadable(path: Path) -> InputError:
    """Why GDCM could not read a file, in one sentence."""
    head = read_head(path)
    if not is_dicom(head):
        return InputError(path, "is not a DICOM file (no DICM marker at byte 128); it may be text or another format")
    data = path.read_bytes()
    if b"\xe0\x7f\x10\x00" not in data:
        return InputError(path, "is a DICOM file without pixel data (a report or structure set, not an image)")
    return InputError(path, "is a DICOM file whose image could not be decoded (truncated, or an unsupported "
                            "compression)")


def read_header(path: Path) -> sitk.ImageFileReader:
    """GDCM header of one file (no pixels), or an InputError saying what is wrong with it."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("GDCMImageIO")
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError:
        raise _explain_unreadable(path) from None
    return reader


def modality_of(path: Path, reader: sitk.ImageFileReader) -> tuple[str, str | None]:
    """(modality, note): the stated modality, or CT inferred from the SOP class, or CT assumed."""
    modality = _tag(reader, MODALITY)
    if modality:
        return modality.upper(), None
    sop = _tag(reader, SOP_CLASS)
    if sop in CT_SOP_CLASSES:
        return "CT", f"no modality tag; SOP class {CT_SOP_CLASSES[sop]} says CT"
    if sop:
        return f"unknown (SOP class {sop})", None
    return "CT", "no modality or SOP class tag; assumed CT"


def check_ct(path: Path, modality: str) -> None:
    if modality != "CT":
        raise InputError(path, f"modality {modality}, not CT")


def _check_geometry(path: Path, reader_or_image) -> None:
    validate.check_spacing(path, reader_or_image.GetSpacing())
    validate.check_direction(path, reader_or_image.GetDirection())
    validate.check_origin(path, reader_or_image.GetOrigin())


def pixel_spacing_note(path: Path, reader: sitk.ImageFileReader) -> str | None:
    """GDCM replaces a zero, negative or missing Pixel Spacing (0028,0030) by 1 mm silently: refuse the first two,
    note the last."""
    value = _tag(reader, PIXEL_SPACING)
    if value is None:
        return "no Pixel Spacing (0028,0030) in the file; 1 mm assumed"
    try:
        numbers = [float(v) for v in value.split("\\")]
    except ValueError:
        raise InputError(path, f"has an unreadable Pixel Spacing (0028,0030) {value!r}") from None
    validate.check_spacing(path, numbers, what="Pixel Spacing (0028,0030)")
    return None


def check_pixels_header(path: Path, reader: sitk.ImageFileReader) -> None:
    components = reader.GetNumberOfComponents()
    if components > 1:
        raise InputError(path, f"has {components} values per pixel (a colour screenshot or vector image), not a "
                               "grayscale CT")


def read_file(path: Path, spacing_z: float | None = None) -> tuple[sitk.Image, str, list[str]]:
    """One DICOM file (one slice, or a multi-frame volume). Returns (3-D image in HU, modality, notes).

    For a single slice, the slice extent along its normal is ``spacing_z`` when given, else the Slice Thickness
    (0018,0050), else the 5 mm every 2-D image without a thickness is given (GDCM would say 1 mm, or the Spacing
    Between Slices, which is no slice's extent).
    """
    reader = read_header(path)
    modality, note = modality_of(path, reader)
    check_ct(path, modality)
    check_pixels_header(path, reader)
    size = list(reader.GetSize()) + [1] * (3 - reader.GetDimension())
    validate.check_size(path, size)
    _check_geometry(path, reader)
    notes = [n for n in (note, pixel_spacing_note(path, reader)) if n]
    try:
        with quiet_itk():
            image = reader.Execute()
    except RuntimeError:
        raise _explain_unreadable(path) from None
    if image.GetDimension() == 2:
        image = sitk.JoinSeries([image])
    if image.GetSize()[2] == 1:
        thickness = _float_tag(reader, SLICE_THICKNESS)
        z = spacing_z if spacing_z is not None else thickness
        if z is not None and z > 0:
            notes.append(f"single slice; {'stated' if spacing_z is not None else 'slice thickness'} {z:g} mm used "
                         "as its extent")
        else:  # neither given: the assumption every 2-D image without a thickness gets (load.py), said as there
            z = DEFAULT_SLICE_MM
            notes.append(f"single slice without a slice thickness: assumed {z:g} mm, so its volumes in mL rest on "
                         "that assumption")
        sp = list(image.GetSpacing())
        sp[2] = float(z)
        image.SetSpacing(sp)
    _check_geometry(path, image)
    return image, modality, notes


def _float_tag(reader: sitk.ImageFileReader, key: str) -> float | None:
    value = _tag(reader, key)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _positions(files: Sequence[str]) -> np.ndarray:
    """Image Position (Patient) of every file (header reads only)."""
    out = []
    for f in files:
        r = sitk.ImageFileReader()
        r.SetFileName(f)
        r.SetImageIO("GDCMImageIO")
        r.ReadImageInformation()
        out.append([float(v) for v in (_tag(r, POSITION) or "nan\\nan\\nan").split("\\")[:3]])
    return np.asarray(out)


def read_series(folder: Path, dicoms: Sequence[Path] | None = None
                ) -> tuple[sitk.Image, str, list[str], list[Path], list[str]]:
    """The CT series with most slices in ``folder`` (not recursive).

    ``dicoms``: the folder's files that look like DICOM (``sniff.classify`` says "dicom"; hidden files left out), as
    the caller's own listing of the folder found them (load.py), so that one listing serves both; None: the folder is
    listed here.

    Returns (3-D image in HU, modality, notes, files in the order of the image's third axis, warnings: what the
    reader of the results must know, e.g. an assumed slice spacing). Geometry is checked (issue 24): slices without
    Image Position (Patient) are stacked at their Spacing Between Slices (0018,0088) or Slice Thickness (0018,0050)
    with a warning (GDCM would say 1 mm), or refused when neither is given; a gantry-tilted (sheared) series is
    refused with a line saying how to resample it. A DICOM-looking file that no series took, or whose image does not
    decode, is refused by name (``_check_skipped_files``, ``_check_decodable``): GDCM would drop it silently.
    """
    with quiet_itk():
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        series_files = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid) for uid in series_ids}
    ignored = _check_skipped_files(folder, {Path(f).name for files in series_files.values() for f in files},
                                   dicoms)
    if not series_ids:
        raise InputError(folder, "holds DICOM files but no readable image series")
    candidates = []  # (n files, uid, files, modality, note)
    refused = []
    for uid in series_ids:
        files = series_files[uid]
        if not files:
            continue
        try:
            reader = read_header(Path(files[0]))
        except InputError:
            refused.append(("unreadable", uid))
            continue
        modality, note = modality_of(Path(files[0]), reader)
        if modality != "CT":
            refused.append((modality, uid))
            continue
        candidates.append((len(files), uid, list(files), modality, note, reader))
    if not candidates:
        if refused and refused[0][0] != "unreadable":
            kinds = ", ".join(sorted({m for m, _ in refused}))
            raise InputError(folder, f"modality {kinds}, not CT (no CT series in this folder)")
        raise InputError(folder, "holds DICOM files but no readable image series")
    candidates.sort(key=lambda c: -c[0])  # stable: equal counts keep GDCM's order
    n, uid, files, modality, note, reader = candidates[0]
    notes = [note] if note else []
    if ignored:
        notes.append("ignored DICOM files without a CT image (reports, key objects, maps): "
                     + ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else ""))
    shown_uid = uid or "(no series UID)"
    if len(series_ids) > 1:
        notes.append(f"{len(series_ids)} series in folder; used {shown_uid} ({n} slice{'' if n == 1 else 's'})")
    check_pixels_header(Path(files[0]), reader)
    width, height = reader.GetSize()[:2]
    frames = reader.GetSize()[2] if reader.GetDimension() == 3 else 1
    validate.check_size(folder, (width, height, n * frames))
    _check_geometry(Path(files[0]), reader)
    spacing_note = pixel_spacing_note(Path(files[0]), reader)
    if spacing_note:
        notes.append(spacing_note)
    series_reader = sitk.ImageSeriesReader()
    series_reader.SetFileNames(files)
    try:
        with quiet_itk():
            image = series_reader.Execute()
    except RuntimeError:
        _check_decodable(files)
        raise InputError(folder, f"series {shown_uid} could not be read: its slices differ in size or type, or a "
                                 "file is damaged") from None
    if image.HasMetaDataKey("ITK_non_uniform_sampling_deviation"):
        _check_even_slices(folder, files)
        notes.append("slice positions slightly uneven (within 10 % of the gap); mean gap used")
    if n > 1 and image.GetSpacing()[2] <= 0:
        raise InputError(folder, "has two slices at the same position (duplicate or mixed acquisitions)")
    warnings = _slice_geometry(folder, files, image, reader) if n > 1 else []
    _check_geometry(folder, image)
    return strip_metadata(image), modality, notes, [Path(f) for f in files], warnings


def _slice_geometry(folder: Path, files: Sequence[str], image: sitk.Image, reader) -> list[str]:
    """Positions present (else the stated spacing, with a warning) and along the slices' normal (no shear)."""
    ends = _positions([files[0], files[-1]])
    present = np.isfinite(ends).all(axis=1)
    if not present.all():
        if present.any() or np.isfinite(_positions(files)).all(axis=1).any():
            raise InputError(folder, "has slices with and without a position (0020,0032); cannot stack them")
        stated = [(t, v) for t, v in ((SPACING_BETWEEN_SLICES, _float_tag(reader, SPACING_BETWEEN_SLICES)),
                                      (SLICE_THICKNESS, _float_tag(reader, SLICE_THICKNESS))) if v and v > 0]
        if not stated:
            raise InputError(folder, "has no slice positions (0020,0032) and no slice spacing or thickness; the "
                                     "distance between its slices is unknown")
        tag, z = stated[0]
        spacing = list(image.GetSpacing())
        spacing[2] = z
        image.SetSpacing(spacing)
        name = "Spacing Between Slices" if tag == SPACING_BETWEEN_SLICES else "Slice Thickness"
        return [f"the slices carry no position (0020,0032): stacked in file order at their {name} ({z:g} mm); "
                "volumes are right only if the slices are contiguous"]
    gap = ends[1] - ends[0]
    d = np.asarray(image.GetDirection(), float).reshape(3, 3)
    normal = d[:, 2]  # the stacking axis GDCM chose: the slices' normal
    length = float(np.linalg.norm(gap))
    if length > 0:
        shear = math.degrees(math.acos(min(1.0, abs(float(gap @ normal)) / length)))
        if shear > MAX_SHEAR_DEG:
            tilt = _float_tag(reader, GANTRY_TILT)
            stated = f", Gantry/Detector Tilt (0018,1120) {tilt:g} degrees" if tilt else ""
            raise InputError(folder, f"is a gantry-tilted series: its slices are sheared by {shear:.1f} degrees"
                                     f"{stated}; resample it to a plain axial grid first (e.g. dcm2niix, which "
                                     "corrects tilt)")
    return []


def _check_even_slices(folder: Path, files: Sequence[str]) -> None:
    pos = _positions(files)
    if not np.all(np.isfinite(pos)):
        raise InputError(folder, "has slices without a position (0020,0032); cannot stack them")
    gaps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    mean = float(np.mean(gaps)) if len(gaps) else 0.0
    if mean <= 0 or np.min(gaps) <= 1e-6:
        raise InputError(folder, "has two slices at the same position (duplicate or mixed acquisitions)")
    if np.max(np.abs(gaps - mean)) > UNEVEN_TOLERANCE * mean:
        raise InputError(folder, f"has unevenly spaced slices (gaps {np.min(gaps):.3g} to {np.max(gaps):.3g} mm): "
                                 "missing slices?")


def _damaged(path: Path, n: int, total: int, others: Sequence[str], where: str = "DICOM files in the folder",
             what: str = "is a damaged or unreadable DICOM file") -> InputError:
    """One line naming the first damaged file, how many there are, and what to do (a volume missing a slice is no
    CT to measure)."""
    them = "it" if n == 1 else "them"
    also = f", and so {'is' if len(others) == 1 else 'are'} {', '.join(others[:3])}" if others else ""
    more = " ..." if len(others) > 3 else ""
    return InputError(path, f"{what}{also}{more} ({n} of the {total} {where}); restore {them} from the source, or "
                            f"remove {them}")


def _media_sop_class(head: bytes) -> str | None:
    """Media Storage SOP Class UID (0002,0002) of the file meta (explicit VR little endian after the DICM marker)."""
    at = 132
    while at + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, at)
        if group != 0x0002 or element > 0x0002:
            return None
        if head[at + 4:at + 6] in _LONG_VRS:
            if at + 12 > len(head):
                return None
            length, start = struct.unpack_from("<I", head, at + 8)[0], at + 12
        else:
            length, start = struct.unpack_from("<H", head, at + 6)[0], at + 8
        if element == 0x0002:
            value = head[start:start + length]
            text = value.rstrip(b"\x00 ").decode("ascii", "replace") if len(value) == length else ""
            return text or None
        at = start + length
    return None


def _not_looked_at(name: str) -> bool:
    """A hidden file or a harmless companion (DICOMDIR, README, ...), whatever its content."""
    name = name.lower()
    return name.startswith(".") or name in SIDECAR_NAMES or Path(name).stem in SIDECAR_NAMES


def _dicom_looking_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that look like DICOM (DICM marker, or a DICOM extension), companions left out."""
    return [p for p in folder.iterdir() if not _not_looked_at(p.name) and p.is_file() and classify(p) == "dicom"]


def _check_skipped_files(folder: Path, placed: set[str], listed: Sequence[Path] | None = None) -> list[str]:
    """Refuse the folder when a file that looks like DICOM was left out of every series by GDCM (it skips what it
    cannot parse: a truncated slice would silently be missing from the volume). ``listed``: the folder's
    DICOM-looking files from the caller's listing (``read_series``); None: listed here. Hidden files and the names
    of harmless companions (DICOMDIR, README, ...) are not looked at, as in the folder listing of load.py; a skipped
    file whose file meta names a storage class other than a CT slice's (a dose report, a parametric map) is no slice
    and is returned, to be ignored with a note."""
    found = _dicom_looking_files(folder) if listed is None else listed
    dicoms = sorted((p for p in found if not _not_looked_at(p.name)), key=lambda q: natural_key(q.name))
    skipped = [p for p in dicoms if p.name not in placed]
    damaged, ignored = [], []
    for p in skipped:
        head = read_head(p, 512)
        sop = _media_sop_class(head) if is_dicom(head) else None
        if sop is None or sop in SLICE_SOP_CLASSES:
            damaged.append(p)
        else:
            ignored.append(p.name)
    if damaged:
        raise _damaged(damaged[0], len(damaged), len(dicoms), [p.name for p in damaged[1:]])
    return ignored


def _check_decodable(files: Sequence[str]) -> None:
    """After a series failed to read: name the first file whose image cannot be decoded on its own (a corrupted
    compressed stream passes GDCM's series scan). Returns when every file decodes (the slices then differ)."""
    bad = []
    for f in files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(f)
        reader.SetImageIO("GDCMImageIO")
        try:
            with quiet_itk():
                reader.Execute()
        except RuntimeError:
            bad.append(Path(f))
    if bad:
        raise _damaged(bad[0], len(bad), len(files), [p.name for p in bad[1:]], "files of the series",
                       "is a DICOM file whose image could not be decoded: corrupted, or an unsupported compression")
