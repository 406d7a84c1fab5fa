"""Reading a folder of corrected (image, mask) pairs for fine-tuning lesions-unet.

Layout (one pair per name; the mask's name is the image's, whatever the extensions)::

    FOLDER/images/NAME.nii.gz | .nii | .nrrd | .mha | .mhd | .png | .jpg | .jpeg
    FOLDER/masks/NAME.nii.gz  | .nii | .nrrd | .seg.nrrd | .mha | .mhd | .png

- 3-D images are CT in HU (as exported from Slicer: "Export visible segments to binary labelmap", or the
  lesions.seg.nrrd that `covidct analyze` wrote and an annotator corrected). Image and mask must share the grid. Both
  are reoriented to canonical LPS; the axial slices from the first to the last slice with a label become training
  slices, cropped to the lung region (air enclosed by the body, as inference does without a lung mask).
- 2-D images are 8-bit display pictures (PNG/JPEG, lung window assumed: HU = -1350 + v/255*1500) in display
  orientation; the mask is a PNG of the same width and height.
- Mask values follow docs/CONTRACTS.md: 0 none, 1 GGO, 2 consolidation, 3 crazy paving. Crazy paving (which this
  model does not predict) and binary masks (only values 0 and 255, or a single segment named like "infection",
  "lesion" or "suspected infection", e.g. the pseudo-mask of pseudo_mask.py after correction) count as infection of
  unknown class. A .seg.nrrd's segments are mapped by name (ground-glass / GGO -> 1, consolidation -> 2, crazy paving,
  infection, lesion, suspected -> infection) and otherwise by their label value.

Every problem raises InputError naming the offending file: an image without its mask or a mask without its image,
two images (or masks) of one name, a mask on another grid than its image. Hidden files (".name": the temporary file
of an interrupted save, macOS "._" files) are skipped, and so are files of other extensions (``unused`` lists them).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .constants import INFECTION_UNKNOWN_CLASS, display_to_hu
from .samples import Sample

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".jpeg")
MASK_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


def case_name(path: Path, suffixes) -> str | None:
    """The case a file belongs to: its name without the first of ``suffixes`` it ends with (None: none)."""
    name = path.name
    for suf in suffixes:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return None


def _segment_label(name: str) -> int | None:
    n = name.lower()
    if "ground" in n or re.search(r"\bggo\b", n):
        return 1
    if "consolidation" in n:
        return 2
    if any(k in n for k in ("crazy", "infection", "lesion", "suspected", "opacit")):
        return INFECTION_UNKNOWN_CLASS
    return None


def _seg_nrrd_mapping(reader_image: sitk.Image, path: Path) -> dict[int, int]:
    """{stored label value: training target} from a Slicer .seg.nrrd header (segments named per segment)."""
    keys = reader_image.GetMetaDataKeys()
    mapping = {}
    i = 0
    while f"Segment{i}_Name" in keys:
        name = reader_image.GetMetaData(f"Segment{i}_Name")
        value = int(reader_image.GetMetaData(f"Segment{i}_LabelValue")) if f"Segment{i}_LabelValue" in keys else i + 1
        layer = reader_image.GetMetaData(f"Segment{i}_Layer") if f"Segment{i}_Layer" in keys else "0"
        if layer not in ("", "0"):
            raise InputError(path, "has overlapping segments in several layers; export it as one labelmap")
        target = _segment_label(name)
        if target is None:
            target = value if value in (1, 2) else None
        if target is None:
            raise InputError(path, f"segment {name!r} is neither GGO, consolidation, crazy paving nor infection")
        mapping[value] = target
        i += 1
    return mapping


def _targets(values: np.ndarray, path: Path, mapping: dict[int, int] | None) -> np.ndarray:
    """Training targets from stored mask values."""
    present = set(np.unique(values).tolist()) - {0}
    if mapping:
        out = np.zeros(values.shape, np.uint8)
        for stored in present:
            if stored not in mapping:
                raise InputError(path, f"has label value {stored} that no segment of its header names")
            out[values == stored] = mapping[stored]
        return out
    if present <= {255}:
        return np.where(values == 255, INFECTION_UNKNOWN_CLASS, 0).astype(np.uint8)
    if not present <= {1, 2, 3}:
        raise InputError(path, f"has label values {sorted(present)}; expected 0-3 (docs/CONTRACTS.md) or a 0/255 mask")
    out = values.astype(np.uint8)
    out[out == 3] = INFECTION_UNKNOWN_CLASS
    return out


def _read_picture(path: Path, mask: bool) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            if mask:
                return np.asarray(im if im.mode in ("P", "L") else im.convert("L"), dtype=np.uint8)
            return np.asarray(im.convert("L"), dtype=np.float32)
    except OSError as exc:
        raise InputError(path, f"cannot be read as an image ({exc})") from None


def _read_volume(path: Path) -> sitk.Image:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(path, "cannot be read as a volume (NIfTI, NRRD, MetaImage expected)") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, "has several components per voxel; a scalar image or labelmap is expected")
    return image


def _grid_difference(image: sitk.Image, mask: sitk.Image) -> str:
    """How the mask's voxel grid differs from its image's ("" when the same within 1 % of a voxel)."""
    spacing = np.array(image.GetSpacing())
    if not np.allclose(mask.GetSpacing(), spacing, rtol=1e-3, atol=0):
        return f"spacing {_mm(mask.GetSpacing())} mm, its image {_mm(spacing)} mm"
    if not np.allclose(mask.GetDirection(), image.GetDirection(), atol=1e-3):
        return "other axis directions"
    if np.any(np.abs(np.array(mask.GetOrigin()) - image.GetOrigin()) > 0.01 * spacing.min()):
        return f"origin {_mm(mask.GetOrigin())} mm, its image {_mm(image.GetOrigin())} mm"
    return ""


def _mm(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in np.round(np.asarray(values, float), 3)) + ")"


def _volume_pair(image_path: Path, mask_path: Path) -> list[Sample]:
    from .inference import air_region, lung_box

    image = _read_volume(image_path)
    mask = _read_volume(mask_path)
    mapping = _seg_nrrd_mapping(mask, mask_path) if mask_path.name.lower().endswith(".seg.nrrd") else None
    if image.GetDimension() == 3:
        image = sitk.DICOMOrient(image, "LPS")
        mask = sitk.DICOMOrient(mask, "LPS")
    if image.GetSize() != mask.GetSize():
        raise InputError(mask_path, f"size {mask.GetSize()} differs from its image's {image.GetSize()}")
    if not mask_path.name.lower().endswith(PICTURE_SUFFIXES):  # a picture has no geometry to compare
        problem = _grid_difference(image, mask)
        if problem:
            raise InputError(mask_path, f"is not on its image's grid ({problem}); export it on {image_path.name}'s "
                                        "geometry")
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    targets = _targets(sitk.GetArrayFromImage(mask), mask_path, mapping)
    if hu.ndim == 2:
        hu, targets = hu[None], targets[None]
    labelled = np.flatnonzero(targets.any(axis=(1, 2)))
    if labelled.size == 0:
        raise InputError(mask_path, "has no labelled voxel")
    zs = slice(int(labelled[0]), int(labelled[-1]) + 1)
    box = lung_box(air_region(hu[zs]))
    ys, xs = (box[1], box[2]) if box is not None else (slice(None), slice(None))
    return [Sample(f"{image_path.name}#{z}", hu[z, ys, xs], targets[z, ys, xs], f"corrected {image_path.parent.parent}")
            for z in range(zs.start, zs.stop)]


def case_files(folder: Path, suffixes) -> tuple[dict[str, Path], list[Path]]:
    """({case name: file} of FOLDER's images or masks (``suffixes``), [other files]); hidden files are skipped.

    Two files of one case name (``c1.nii.gz`` and ``c1.nrrd``) raise InputError naming both.
    """
    found: dict[str, Path] = {}
    other: list[Path] = []
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith("."):
            continue
        stem = case_name(p, suffixes) if p.is_file() else None
        if stem is None:
            other.append(p)
        elif stem in found:
            raise InputError(p, f"is a second file of case {stem!r} (with {found[stem].name}); keep one")
        else:
            found[stem] = p
    return found, other


def read_corrected_folder(folder: Path, unused: list[Path] | None = None) -> list[Sample]:
    """All training slices of FOLDER/images + FOLDER/masks (see the module docstring for the layout).

    ``unused``: a list that receives the files skipped for their extension.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder; a corrected-masks folder holds images/ and masks/ (same names)")
    images_dir, masks_dir = folder / "images", folder / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise InputError(d, "is missing; a corrected-masks folder holds images/ and masks/ (same names)")
    masks, other_masks = case_files(masks_dir, MASK_SUFFIXES)
    images, other_images = case_files(images_dir, IMAGE_SUFFIXES)
    if unused is not None:
        unused.extend(other_images + other_masks)
    for stem, p in images.items():
        if stem not in masks:
            raise InputError(p, f"has no mask named {stem}.* in {masks_dir}")
    for stem, m in masks.items():
        if stem not in images:
            raise InputError(m, f"has no image named {stem}.* in {images_dir}")
    samples: list[Sample] = []
    for stem, p in images.items():
        m = masks[stem]
        if p.name.lower().endswith(PICTURE_SUFFIXES):
            hu = display_to_hu(_read_picture(p, mask=False))
            values = _read_picture(m, mask=True) if m.name.lower().endswith(".png") else sitk.GetArrayFromImage(
                _read_volume(m)).squeeze()
            if values.shape != hu.shape:
                raise InputError(m, f"is {values.shape[1]}x{values.shape[0]} pixels, its image "
                                    f"{hu.shape[1]}x{hu.shape[0]}")
            samples.append(Sample(p.name, hu.astype(np.float32), _targets(values, m, None), f"corrected {folder}"))
        else:
            samples.extend(_volume_pair(p, m))
    if not samples:
        raise InputError(images_dir, "holds no image (.nii.gz, .nrrd, .mha, .png, .jpg)")
    return samples
