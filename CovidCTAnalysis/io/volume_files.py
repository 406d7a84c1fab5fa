"""NIfTI, NRRD and MetaImage files: header checks first (ImageFileReader.ReadImageInformation), then pixels.

ITK quietly replaces some invalid header spacings with 1 mm (NIfTI pixdim 0 or NaN, NRRD "spacings: nan"), so those
two headers are also looked at directly (a few bytes or text lines). It also gives 1 mm, without a word, to a NRRD
header with neither a ``spacings`` nor a ``space directions`` field and to a MetaImage header with neither
``ElementSpacing`` nor ``ElementSize``: such a file is read with 1 mm assumed and a warning (``missing_spacing``),
as a 2-D image without a slice thickness is read at an assumed 5 mm with a note (load.py). A file that states 1 mm
is not warned about: the header's fields decide, not the value.

ITK's NIfTI reader is also silent about two data faults (checked with SimpleITK 2.5): a truncated file (.nii or
.nii.gz) is padded, and NaN/inf voxels come back as 0. So for NIfTI we check the data length ourselves - the file size
for .nii, the gzip trailer (uncompressed length mod 2**32) for .nii.gz, falling back to a full streaming
decompression when the trailer disagrees (multi-member gzip) - and, for float data types only, scan the raw values
for NaN/inf in one streaming pass. NRRD and MetaImage readers report both faults themselves.
"""

from __future__ import annotations

import gzip
import math
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from . import validate
from .dicom import quiet_itk

IMAGE_IO = {"nifti": "NiftiImageIO", "nrrd": "NrrdImageIO", "mha": "MetaImageIO"}
LABEL = {"nifti": "NIfTI", "nrrd": "NRRD", "mha": "MetaImage"}


def _nifti_head(path: Path) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read(540)
        with open(path, "rb") as f:
            return f.read(540)
    except (OSError, EOFError, zlib.error):
        raise InputError(path, "is not a valid gzip-compressed NIfTI file (corrupt or truncated)") from None


# NIfTI datatype code -> numpy dtype (float types are scanned for NaN/inf)
_NIFTI_FLOATS = {16: "f4", 64: "f8"}
_CHUNK = 1 << 24


def _file_chunks(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _gunzip_chunks(path: Path):
    """Decompressed chunks of a (possibly multi-member) gzip file; zlib directly is ~1.6x faster than gzip.open.

    Raises InputError when the data are corrupt or end inside a member (truncated). Trailing NUL padding is ignored.
    """
    inflater, pending = zlib.decompressobj(31), False
    try:
        for raw in _file_chunks(path):
            while raw:
                if not pending and not raw.strip(b"\0"):
                    break  # padding after the last member
                out = inflater.decompress(raw)
                pending = True
                if out:
                    yield out
                if inflater.eof:
                    raw, inflater, pending = inflater.unused_data, zlib.decompressobj(31), False
                else:
                    raw = b""
    except zlib.error:
        raise InputError(path, "is corrupt: its gzip data cannot be decompressed") from None
    if pending:
        raise InputError(path, "is truncated: its gzip data end early")


def check_nifti_header(path: Path) -> None:
    """NIfTI-1/2 header and data: signature, dimensions, pixdim of the spatial axes, data length, finite floats."""
    head = _nifti_head(path)
    for endian in ("<", ">"):
        if len(head) >= 348 and struct.unpack(endian + "i", head[:4])[0] == 348 and head[344:347] in (b"n+1", b"ni1"):
            dims = struct.unpack(endian + "8h", head[40:56])
            pixdim = struct.unpack(endian + "8f", head[76:108])
            datatype, bitpix = struct.unpack(endian + "2h", head[70:74])
            offset = int(struct.unpack(endian + "f", head[108:112])[0])
            single_file = head[344:347] == b"n+1"
            qform_code, sform_code = struct.unpack(endian + "2h", head[252:256])
            quatern = struct.unpack(endian + "6f", head[256:280])
            srow = struct.unpack(endian + "12f", head[280:328])
            break
        if len(head) >= 540 and struct.unpack(endian + "i", head[:4])[0] == 540 and head[4:7] in (b"n+2", b"ni2"):
            datatype, bitpix = struct.unpack(endian + "2h", head[12:16])
            dims = struct.unpack(endian + "8q", head[16:80])
            pixdim = struct.unpack(endian + "8d", head[104:168])
            offset = int(struct.unpack(endian + "q", head[168:176])[0])
            single_file = head[4:7] == b"n+2"
            qform_code, sform_code = struct.unpack(endian + "2i", head[344:352])
            quatern = struct.unpack(endian + "6d", head[352:400])
            srow = struct.unpack(endian + "12d", head[400:496])
            break
    else:
        raise InputError(path, "is not a NIfTI file (its header has no NIfTI signature)")
    ndim = int(dims[0])
    if not 1 <= ndim <= 7 or any(int(d) < 1 for d in dims[1:ndim + 1]):
        raise InputError(path, f"has a corrupt NIfTI header (dimensions {list(dims[:ndim + 1])})")
    spatial = [float(p) for p in pixdim[1:1 + min(ndim, 3)]]
    validate.check_spacing(path, spatial)
    size = [int(d) for d in dims[1:ndim + 1]]
    validate.check_size(path, (size + [1, 1, 1])[:3])
    # ITK's reader would print a matrix of NaN on stderr before failing (issue 24): refuse from the header
    for code, values, name in ((sform_code, srow, "sform"), (qform_code, quatern, "qform")):
        if code > 0 and not all(math.isfinite(v) for v in values):
            raise InputError(path, f"has an invalid orientation in its NIfTI header (the {name} holds NaN or "
                                   "infinity)")
    if single_file:
        voxels = math.prod(size)
        _check_nifti_data(path, offset, voxels, bitpix, _NIFTI_FLOATS.get(datatype), endian)


def _check_nifti_data(path: Path, offset: int, voxels: int, bitpix: int, float_type: str | None, endian: str) -> None:
    """Data long enough (ITK pads truncated NIfTI silently) and, for float data, finite (ITK turns NaN into 0)."""
    expected = offset + voxels * max(bitpix, 8) // 8
    gz = path.name.lower().endswith(".gz")
    if not gz and float_type is None:
        if path.stat().st_size < expected:
            raise InputError(path, f"is truncated: {path.stat().st_size} bytes, the header needs {expected}")
        return
    if gz and float_type is None:
        with open(path, "rb") as f:
            f.seek(-4, 2)
            if struct.unpack("<I", f.read(4))[0] == expected % 2**32:
                return
    dtype = np.dtype(endian + float_type) if float_type else None
    total, bad, carry = 0, 0, b""
    for chunk in (_gunzip_chunks(path) if gz else _file_chunks(path)):
        start = max(0, offset - total)
        if dtype is not None and start < len(chunk):
            data = carry + chunk[start:]
            usable = len(data) - len(data) % dtype.itemsize
            values = np.frombuffer(data[:usable], dtype=dtype)
            bad += int(np.count_nonzero(~np.isfinite(values)))
            carry = data[usable:]
        total += len(chunk)
    if total < expected:
        raise InputError(path, f"is truncated: {total} bytes of data, the header needs {expected}")
    if bad:
        validate.raise_non_finite(path, bad)


def _text_head(path: Path) -> str:
    """The first 64 KiB of a text header (NRRD, MetaImage), as latin-1."""
    try:
        with open(path, "rb") as f:
            return f.read(65536).decode("latin-1")
    except OSError as e:
        raise InputError(path, f"cannot be read: {e.strerror or e}") from None


def check_nrrd_header(path: Path, head: str) -> None:
    """NRRD text header: no NaN/inf in spacings, space directions or origin (ITK would replace them by 1)."""
    if not head.startswith("NRRD"):
        raise InputError(path, "is not a NRRD file (no NRRD signature)")
    for line in head.split("\n\n", 1)[0].lower().splitlines():
        key = line.split(":", 1)[0].strip()
        value = line.split(":", 1)[1] if ":" in line else ""
        if key in ("spacings", "space directions", "space origin") and ("nan" in value or "inf" in value):
            raise InputError(path, f"has an invalid voxel spacing or origin in its header ({line.strip()})")


def _header_lines(head: str, kind: str) -> list[str]:
    """The header lines of a NRRD (up to its blank line) or MetaImage (up to ``ElementDataFile``) text header."""
    lines = []
    for line in head.splitlines():
        if kind == "nrrd" and not line.strip():
            break
        lines.append(line)
        if kind == "mha" and line.partition("=")[0].strip() == "ElementDataFile":
            break
    return lines


def missing_spacing(path: Path, kind: str, head: str) -> str | None:
    """The warning for a NRRD or MetaImage header that states no voxel spacing (ITK then reads 1 mm silently), else
    None. NRRD field names are case-insensitive and ``key:=value`` lines are key/value pairs, not fields; MetaImage
    keys are case-sensitive, and ``ElementSize`` stands in for a missing ``ElementSpacing`` (as ITK reads them)."""
    if kind == "nrrd":
        fields = set()
        for line in _header_lines(head, kind)[1:]:  # the first line is the NRRD0004 magic
            key, colon, value = line.partition(":")
            if colon and not line.startswith("#") and not value.startswith("="):
                fields.add(key.strip().lower())
        if fields & {"spacings", "space directions"}:
            return None
        absent = "no spacings or space directions field"
    elif kind == "mha":
        keys = {line.partition("=")[0].strip() for line in _header_lines(head, kind) if "=" in line}
        if keys & {"ElementSpacing", "ElementSize"}:
            return None
        absent = "no ElementSpacing or ElementSize"
    else:
        return None
    return (f"the {LABEL[kind]} header of {path.name} states no voxel spacing ({absent}): 1 mm assumed along each of "
            "its axes, so lengths and volumes in mL rest on that assumption")


def detached_data_file(head: str, kind: str) -> str | None:
    """The data file a NRRD or MetaImage header names (None when the data follow the header)."""
    if kind == "nrrd":
        for line in head.split("\n\n", 1)[0].splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("data file", "datafile"):
                return value.strip()
        return None
    for line in head.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ElementDataFile":
            value = value.strip()
            return None if value.upper() == "LOCAL" else value
    return None


def check_detached_data(path: Path, kind: str, head: str) -> None:
    """A header may name its data file: only one regular file in the header's folder (or below it) is read, never a
    FIFO (the run would hang), a device (/dev/urandom) or a file elsewhere on the machine (issue 24)."""
    name = detached_data_file(head, kind)
    if name is None:
        return
    if not name or name.upper().startswith("LIST") or "%" in name or len(name.split()) > 1:
        raise InputError(path, f"names several data files ({name!r}); this version reads volumes whose data lie "
                               "in one file")
    folder = path.parent.resolve()
    try:
        data = (folder / name).resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(path, f"names a data file {name!r} that does not exist") from None
    if not data.is_relative_to(folder):
        raise InputError(path, f"names a data file {name!r} outside its own folder; keep the data beside the "
                               "header")
    if not stat.S_ISREG(data.stat().st_mode):
        raise InputError(path, f"names a data file {name!r} that is not a regular file (a device, pipe or "
                               "folder)")


def read(path: Path, kind: str, warnings: list[str] | None = None) -> sitk.Image:
    """Read a volume file as a 2-D or 3-D scalar image (file's own grid and pixel type), validated. ``warnings``:
    what the reader of the results must know about the reading is appended to it (a header without a voxel spacing,
    read as 1 mm)."""
    label = LABEL[kind]
    assumed = None
    if kind == "nifti":
        check_nifti_header(path)
    else:  # one read of the text header for all checks
        head = _text_head(path)
        if kind == "nrrd":
            check_nrrd_header(path, head)
        check_detached_data(path, kind, head)
        assumed = missing_spacing(path, kind, head)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(IMAGE_IO[kind])
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(path, f"is not a readable {label} file (its header is corrupt or truncated)") from None
    dim = reader.GetDimension()
    size = list(reader.GetSize())
    components = reader.GetNumberOfComponents()
    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    if components > 1:
        raise InputError(path, f"has {components} values per voxel (a colour or vector image), not a grayscale CT")
    if "complex" in pixel:
        raise InputError(path, f"has complex-valued voxels ({pixel}), not a CT")
    if dim > 4 or (dim == 4 and size[3] > 1):
        raise InputError(path, f"is a {dim}-D image ({'x'.join(map(str, size))}: several volumes, e.g. time "
                               "points); give one 3-D CT")
    if dim < 2:
        raise InputError(path, f"is a {dim}-D image, not a CT slice or volume")
    spatial = min(dim, 3)
    validate.check_size(path, size[:spatial] + [1] * (3 - spatial))
    validate.check_spacing(path, reader.GetSpacing()[:spatial])
    direction = reader.GetDirection()
    if dim == 4:
        direction = tuple(direction[r * 4 + c] for r in range(3) for c in range(3))
        reader.SetExtractIndex([0, 0, 0, 0])
        reader.SetExtractSize(size[:3] + [0])
    validate.check_direction(path, direction)
    validate.check_origin(path, reader.GetOrigin()[:spatial])
    try:
        with quiet_itk():
            image = reader.Execute()
    except RuntimeError:
        raise InputError(path, f"could not be read: the {label} data are truncated or corrupt") from None
    if any(not math.isfinite(s) or s <= 0 for s in image.GetSpacing()):  # belt and braces after extraction
        validate.check_spacing(path, image.GetSpacing())
    if assumed is not None and warnings is not None:
        warnings.append(assumed)
    return image
