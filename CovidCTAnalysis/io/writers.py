"""Writers for volumes, label maps (.nii.gz/.nii/.nrrd/.mha, Slicer .seg.nrrd, 8-bit .png) - all atomic.

Atomic: the data go to a hidden temporary file in the destination folder (same file system), which then replaces the
destination with ``os.replace``; on any failure the temporary file is removed, so a destination is either the old
file, the complete new one, or absent - never a partial file (CONTRACTS: "no partial output").
Every metadata key of the image is dropped before writing: DICOM tags carried by an image may identify the patient.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..labels import Segment
from . import segnrrd
from .sniff import compound_suffix
from .volume import as_3d, strip_metadata

VOLUME_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha")
#: gzip level of compressed outputs. Level 1 writes a 512 x 512 x 300 float heatmap in 1.4 s instead of 2.1 s at the
#: library's default, for a file 15 % larger (130 vs 113 MB); `covidct analyze` writes eight such maps (README, speed).
COMPRESSION_LEVEL = 1
LABEL_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".seg.nrrd", ".mha", ".png")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same extension, so ITK picks the same writer); publish on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(path, f"cannot be written: its folder cannot be created ({e.strerror or e})") from None
    suffix = compound_suffix(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Rows to a CSV file atomically; columns as given, else every key in first-seen order (missing or None: empty)."""
    import csv
    import io

    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue(), encoding="utf-8")


def _clean_copy(image: sitk.Image) -> sitk.Image:
    return strip_metadata(sitk.Image(image))


def _itk_write(image: sitk.Image, path: Path, compress: bool) -> None:
    with atomic_path(path) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=compress, compressionLevel=COMPRESSION_LEVEL)
        except RuntimeError:
            raise InputError(path, "could not be written (disk full, or no permission to write there?)") from None


def write_volume(image: sitk.Image, path: str | Path) -> Path:
    """Write a CT or heatmap volume; the format follows the extension (.nii.gz, .nii, .nrrd, .mha), compressed."""
    path = Path(path)
    ext = compound_suffix(path)
    if ext not in VOLUME_EXTENSIONS:
        raise InputError(path, f"unknown volume extension {ext or '(none)'}; use one of {', '.join(VOLUME_EXTENSIONS)}")
    _itk_write(_clean_copy(image), path, compress=ext != ".nii")
    return path


def _as_labels(labels: sitk.Image, segments: Sequence[Segment]) -> sitk.Image:
    """uint8 copy of an integer label map whose values are 0 or a segment's label."""
    if labels.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("a label map must have one component per voxel")
    arr = sitk.GetArrayViewFromImage(labels)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"a label map must have an integer pixel type, not {labels.GetPixelIDTypeAsString()}")
    low, high = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    if low < 0 or high > 255:
        raise ValueError(f"label values must lie in 0..255 (found {low}..{high})")
    out = labels if labels.GetPixelID() == sitk.sitkUInt8 else sitk.Cast(labels, sitk.sitkUInt8)
    known = {0} | {int(s.label) for s in segments}
    # only values up to the maximum that no segment owns need a look (usually none; a histogram of a 512 x 512 x 300
    # map would take 0.6 s)
    unknown = [v for v in range(low, high + 1) if v not in known and bool((arr == v).any())]
    if unknown:
        raise ValueError(f"label values {unknown} have no segment (segments: {sorted(known - {0})})")
    return _clean_copy(out)


def write_label_map(labels: sitk.Image, path: str | Path, segments: Sequence[Segment]) -> Path:
    """Write a label map (on the input's grid: see ``to_input_grid``) in the format of the extension.

    .nii.gz/.nii/.nrrd/.mha: plain uint8 label map. .seg.nrrd: Slicer segmentation with named, coloured segments
    (``segnrrd``), every segment listed even when empty. .png: 8-bit label image of the input's width x height,
    pixel value = label value (single-slice inputs only; otherwise InputError).
    """
    path = Path(path)
    ext = compound_suffix(path)
    if ext not in LABEL_EXTENSIONS:
        raise InputError(path, f"unknown label-map extension {ext or '(none)'}; use one of "
                               f"{', '.join(LABEL_EXTENSIONS)}")
    image = _as_labels(labels, segments)
    if ext == ".png":
        return write_png_label(image, path)
    if ext == ".seg.nrrd":
        # a 2-D input's labels on the grid a reader gives that 2-D file (1 mm deep, as ITK and Slicer load it), so
        # they overlay it; the 5 mm assumed for its mL (load.py) is no property of the file
        image3 = as_3d(image, 1.0)
        for key, value in segnrrd.header(segments, image3.GetSize()).items():
            image3.SetMetaData(key, value)
        _itk_write(image3, path, compress=True)
        return path
    _itk_write(image, path, compress=ext != ".nii")
    return path


def write_png_label(labels2d: sitk.Image | np.ndarray, path: str | Path) -> Path:
    """8-bit PNG of a single-slice label map (2-D image, 3-D image with one z slice, or a 2-D array).

    Rows and columns are the image's own (y, x) index order: pass the label map on the input's grid.
    """
    from PIL import Image

    path = Path(path)
    if isinstance(labels2d, sitk.Image):
        if labels2d.GetDimension() == 3 and labels2d.GetSize()[2] != 1:
            raise InputError(path, f"a .png output holds one slice, but the result has {labels2d.GetSize()[2]} "
                                   "slices; use .nii.gz, .nrrd or .seg.nrrd")
        arr = sitk.GetArrayFromImage(labels2d)
    else:
        arr = np.asarray(labels2d)
    arr = arr.reshape(arr.shape[-2:]) if arr.ndim == 3 and arr.shape[0] == 1 else arr
    if arr.ndim != 2:
        raise InputError(path, f"a .png output holds one 2-D slice, not an array of shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError("label values must lie in 0..255 for an 8-bit PNG")
    if compound_suffix(path) != ".png":
        raise InputError(path, "a label image must be written as .png")
    with atomic_path(path) as tmp:
        try:
            Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(tmp, format="PNG")
        except OSError as e:
            raise InputError(path, f"could not be written ({e.strerror or e})") from None
    return path
