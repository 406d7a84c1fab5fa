"""``load_ct``: every INPUT kind of docs/CONTRACTS.md -> one canonical ``CTVolume``; ``read_canonical`` for masks.

Inputs are only read, never written. Every problem becomes ``InputError(path, one sentence)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from . import dicom, slices, validate, volume_files
from .sniff import (IMAGE_SUFFIXES, SUPPORTED_INPUTS, VOLUME_SUFFIXES, check_regular_file, classify,
                    compound_suffix, read_head)
from .volume import (AIR_HU, CTVolume, as_3d, canonical_to_picture, canonicalize, orientation_code, picture_plane,
                     slice_order)


def load_ct(path: str | Path, *, spacing: Sequence[float] | None = None,
            window: Sequence[float] | None = None) -> CTVolume:
    """Read one CT from any INPUT of docs/CONTRACTS.md and return it on the canonical grid in HU.

    path: a NIfTI/NRRD/MHA file, a DICOM file, a DICOM series folder, a PNG/JPEG slice or a folder of slices.
    spacing: (x, y, z) mm for sources without geometry (PNG/JPEG); for a single DICOM slice or a 2-D NIfTI/NRRD/MHA
        image only z (its extent) is used; ignored, with a note, for sources that state their own spacing. A 2-D
        image without a slice thickness is ``slices.DEFAULT_SLICE_MM`` thick, as a PNG/JPEG slice, with a note.
    window: (width, level) used to map 8-bit display values to HU (default lung window 1500, -600); ignored, with a
        note, for sources in HU.
    Raises InputError naming the file and the problem for anything that is not a usable CT.
    """
    path = Path(path).expanduser()
    spacing = validate.check_spacing_option(path, spacing)
    window = validate.check_window(path, window)
    try:
        return _load(path, spacing, window)
    except OSError as e:  # e.g. a folder on the way that may not be searched, an I/O error of the disk
        raise InputError(path, f"cannot be read: {e.strerror or e}") from None


def _load(path: Path, spacing, window) -> CTVolume:
    if path.is_dir():
        return _load_folder(path, spacing, window)
    check_regular_file(path)
    head = read_head(path)
    kind = classify(path, head)
    if kind in volume_files.IMAGE_IO:
        return _load_volume_file(path, kind, spacing, window)
    if kind == "dicom":
        return _load_dicom_file(path, spacing, window)
    if kind == "image":
        return _load_slices(path, [path], spacing, window)
    ext = compound_suffix(path) or "(none)"
    raise InputError(path, f"has an unsupported file type (extension {ext}); supported: {SUPPORTED_INPUTS}")


# ---------------------------------------------------------------------------------------------- per input kind


def _load_volume_file(path, kind, spacing, window) -> CTVolume:
    warnings: list[str] = []  # a header without a voxel spacing: 1 mm assumed (volume_files.py)
    image = volume_files.read(path, kind, warnings)
    if image.GetDimension() == 2 and spacing is not None:  # a 2-D file states its pixel spacing, not its thickness
        notes = _ignored_options(None, window)
        notes.append(f"2-D image; stated slice thickness {spacing[2]:g} mm used as its extent (only the z value of "
                     "the stated spacing is used: the file states its pixel spacing)")
        return _finish(path, kind, image, notes=notes, thickness=spacing[2], warnings=warnings)
    notes = _ignored_options(spacing, window)
    return _finish(path, kind, image, notes=notes, warnings=warnings)


def _load_dicom_file(path, spacing, window) -> CTVolume:
    image, modality, notes = dicom.read_file(path, spacing_z=None if spacing is None else spacing[2])
    notes += _ignored_options(None, window)
    if spacing is not None:
        notes.append("only the z value of the stated spacing is used (the file states its pixel spacing)")
    return _finish(path, "dicom-file", image, notes=notes, modality=modality, files=[path])


def _load_folder(folder: Path, spacing, window) -> CTVolume:
    if compound_suffix(folder) in VOLUME_SUFFIXES or compound_suffix(folder) in IMAGE_SUFFIXES:
        raise InputError(folder, f"is a folder, but its name ends in {compound_suffix(folder)} like a file")
    try:
        entries = sorted(folder.iterdir())
    except PermissionError:
        raise InputError(folder, "cannot be read: permission denied") from None
    visible = [p for p in entries if not p.name.startswith(".")]
    files = [p for p in visible if p.is_file()]
    subfolders = [p for p in visible if p.is_dir()]
    if not files:
        if subfolders:
            names = ", ".join(p.name for p in subfolders[:3]) + (", ..." if len(subfolders) > 3 else "")
            raise InputError(folder, f"holds no files, only sub-folders ({names}); give the folder of one DICOM "
                                     "series or one slice stack")
        raise InputError(folder, "is an empty folder")
    groups: dict[str, list[Path]] = {}
    for f in files:
        if f.stat().st_size == 0:
            raise InputError(f, "is empty (0 bytes)")
        groups.setdefault(classify(f), []).append(f)
    notes = []
    if groups.get("sidecar"):
        notes.append("ignored: " + ", ".join(p.name for p in groups["sidecar"][:5])
                     + (" ..." if len(groups["sidecar"]) > 5 else ""))
    if subfolders:
        notes.append("sub-folders ignored: " + ", ".join(p.name for p in subfolders[:5]))
    volumes = [p for k in volume_files.IMAGE_IO for p in groups.get(k, [])]
    if groups.get("unknown"):
        odd = groups["unknown"][0]
        raise InputError(odd, f"is not a DICOM, PNG or JPEG file, so the folder {folder.name} mixes unrelated files")
    if volumes:
        raise InputError(folder, f"holds volume files ({volumes[0].name}{', ...' if len(volumes) > 1 else ''}); "
                                 "pass the file itself, not its folder")
    dicoms, images = groups.get("dicom", []), groups.get("image", [])
    if dicoms and images:
        raise InputError(folder, f"mixes DICOM files ({len(dicoms)}) and PNG/JPEG images ({len(images)}); keep one "
                                 "kind per folder")
    if dicoms:
        return _load_dicom_series(folder, spacing, window, notes, dicoms)
    if images:
        return _load_slices(folder, images, spacing, window, notes)
    raise InputError(folder, "holds no CT images (only " + ", ".join(p.name for p in files[:3]) + ")")


def _load_dicom_series(folder: Path, spacing, window, notes: list[str], dicoms: list[Path]) -> CTVolume:
    """``dicoms``: the folder's DICOM files as ``_load_folder`` listed them; the series reader checks them against
    the series GDCM found, without listing the folder again."""
    image, modality, series_notes, files, warnings = dicom.read_series(folder, dicoms)
    notes = notes + series_notes + _ignored_options(spacing, window)
    return _finish(folder, "dicom-series", image, notes=notes, modality=modality, files=files, warnings=warnings)


def _load_slices(path: Path, files: list[Path], spacing, window, notes: list[str] | None = None) -> CTVolume:
    notes = list(notes or [])
    window = window or slices.DEFAULT_WINDOW
    stack = path.is_dir()
    if stack:
        gray, slice_notes, ordered = slices.read_stack(path, files)
    else:
        g, slice_notes = slices.read_gray(path)
        gray, ordered = g[None], [path]
    notes += slice_notes
    hu = slices.display_to_hu(gray, window)
    sp, sp_note = slices.default_spacing(gray.shape[2], spacing)
    notes.append(sp_note)
    notes.append(f"display values mapped to approximate HU with window width {window[0]:g}, level {window[1]:g}"
                 + ("" if window != slices.DEFAULT_WINDOW else " (assumed lung window)"))
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing(sp)
    if stack:
        image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0))  # file 1 = most superior (module doc)
        notes.append(f"{len(ordered)} slices in numeric name order, first file taken as the most superior")
    return _finish(path, "slice-stack" if stack else "slice-2d", image, notes=notes, window=window,
                   files=ordered)


# ---------------------------------------------------------------------------------------------- shared steps


def _ignored_options(spacing, window) -> list[str]:
    notes = []
    if spacing is not None:
        notes.append("stated spacing ignored: the file states its own spacing")
    if window is not None:
        notes.append("stated window ignored: the file holds HU values")
    return notes


def _finish(path: Path, kind: str, image: sitk.Image, *, notes: list[str], modality: str | None = None,
            window: tuple[float, float] | None = None, files: Sequence[Path] = (),
            warnings: Sequence[str] = (), thickness: float | None = None) -> CTVolume:
    """Validate values, canonicalize, and record the input grid.

    thickness: the extent (mm) of a 2-D ``image``, stated by the caller; None: assumed as for PNG/JPEG slices, with a
    note (volumes in mL depend on it)."""
    input_size = tuple(int(s) for s in image.GetSize())
    input_spacing = tuple(float(s) for s in image.GetSpacing())
    input_origin = tuple(float(o) for o in image.GetOrigin())
    input_direction = tuple(float(d) for d in image.GetDirection())
    image3 = as_3d(image, thickness)
    notes = list(notes)
    if image.GetDimension() == 2 and thickness is None:
        notes.append(f"2-D image without a slice thickness: assumed {slices.DEFAULT_SLICE_MM:g} mm (as for PNG/JPEG "
                     "slices), so its volumes in mL rest on that assumption")
    lo, hi = validate.check_values(path, image3)  # before canonicalize casts: 1e300 would become infinity
    canonical, oriented_direction, obliquity = canonicalize(image3)
    if obliquity > 0:
        notes.append(f"oblique by {obliquity:.1f} degrees: treated as axis-aligned, outputs mapped back voxel "
                     "for voxel")
    display_windowed = window is not None
    if not display_windowed and lo > AIR_HU:  # CTVolume.hu_doubt says the same when no lungs are found
        notes.append(f"no voxel below {AIR_HU:g} (lowest {lo:g}): no air in the image; are the values HU?")
    order = slice_order(tuple(image3.GetDirection()), oriented_direction, image3.GetSize()[2])
    slice_files = tuple(files[i] for i in order) if order is not None and len(files) == image3.GetSize()[2] else ()
    plane = picture_plane(tuple(canonical.GetSize()))
    if plane is not None:  # one coronal or sagittal slice: analysed as a picture of its plane (issue 18)
        canonical = canonical_to_picture(canonical, plane)
        notes.append(f"one {plane} slice: analysed as a 2-D picture, head at the top; the lesion network and the "
                     "classifiers were trained on axial slices")
    return CTVolume(
        image=canonical, source=path, kind=kind, display_windowed=display_windowed, window=window,
        is_2d=canonical.GetSize()[2] == 1, picture_plane=plane,
        input_size=input_size, input_spacing=input_spacing, input_origin=input_origin,
        input_direction=input_direction, input_orientation=orientation_code(image3.GetDirection()),
        oriented_direction=oriented_direction, notes=tuple(n for n in notes if n), slice_files=slice_files,
        modality=modality,
        value_range=(lo, hi), warnings=tuple(warnings),
        input_files=tuple(Path(f) for f in files) if kind.startswith("dicom") else ())


# ---------------------------------------------------------------------------------------------- masks


def read_canonical(path: str | Path, *, spacing: Sequence[float] | None = None) -> sitk.Image:
    """A reference mask or label file on the canonical grid, pixel type and values untouched (no HU mapping).

    NIfTI/NRRD/MHA (e.g. imlab-lung3d ``*-msk.nii.gz``, float with lung ~255: binarize > 127 yourself) or a PNG
    label image (L or P: palette indices are the labels, as in COVID-SemiSeg GT masks; PNG geometry as for
    ``load_ct`` slices, ``spacing`` optional; a 2-D NIfTI/NRRD/MHA mask uses only its z, as ``load_ct`` does). Same
    canonicalization as ``load_ct``, so a mask read here lies on the grid of the CT read by ``load_ct`` from the
    matching file (given the same ``spacing``).
    """
    path = Path(path).expanduser()
    try:
        if path.is_dir():
            raise InputError(path, "is a folder; give a mask file (.nii.gz, .nrrd, .mha or .png)")
        check_regular_file(path)
        kind = classify(path)
        spacing = validate.check_spacing_option(path, spacing)
        if kind in volume_files.IMAGE_IO:
            image = volume_files.read(path, kind)
        elif kind == "image":
            image = _read_png_labels(path, spacing)
        else:
            raise InputError(path, "has an unsupported mask file type; use .nii.gz, .nii, .nrrd, .mha or .png")
    except OSError as e:
        raise InputError(path, f"cannot be read: {e.strerror or e}") from None
    # a 2-D mask gets the slice thickness load_ct gives the matching 2-D CT
    canonical, _, _ = canonicalize(as_3d(image, None if spacing is None else spacing[2]), dtype=None)
    return canonical


def _read_png_labels(path: Path, spacing) -> sitk.Image:
    from PIL import Image

    size = slices.header_size(path)
    with Image.open(path) as im:
        if im.mode in ("L", "P", "I", "I;16"):
            arr = np.asarray(im)
        elif im.mode == "1":
            arr = np.asarray(im).astype(np.uint8)
        else:
            raise InputError(path, f"is a {im.mode} image; a label mask must be single-channel (L or P)")
    image = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    image.SetSpacing(slices.default_spacing(size[0], None if spacing is None else spacing)[0][:2])
    return image
