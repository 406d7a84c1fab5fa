"""Corrected lesion masks saved as training data ("save correction" of the lesion segmentation module).

Layout: the corrected-masks folder that the lesion training script reads
(``scripts/train_lesions.py --corrected DATASET``; reader: CovidCTAnalysis.lesions.corrected)::

    DATASET/
      images/CASE.nii.gz   the CT in HU, on its own grid (LPS on disk, as every NIfTI writer does)
      masks/CASE.nii.gz    uint8 lesion labels of docs/CONTRACTS.md on the same grid (0 none, 1 GGO, 2 consolidation,
                           3 crazy paving)

An annotator corrects a pseudo-mask in Segment Editor and saves: the image and the mask are written (the same CT
saved again under its case id: its mask is replaced). A segment counts as a lesion class by its terminology, else by
its name (also "Ground glass opacity", "GGO", "Crazy paving pattern"...); a painted segment that is neither is
refused rather than dropped. Case ids are checked to be plain file names; patient names are never used (nothing is
read from the image's metadata). The volume and segmentation nodes are not modified.

Refused with InputError, the dataset left as it was: a case id that holds another CT (or names files of another
extension or letter case, which the trainer would read as a second case), a dataset path that is a file, a
segmentation whose source representation is not voxels (a closed surface), a failed write. Both files go to
temporary files first and are published together (CovidCTAnalysis.io.writers.atomic_path), so an interrupted save
leaves no image without its mask.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..labels import LESION_SEGMENTS, LUNG_SEGMENTS
from ..lesions.corrected import IMAGE_SUFFIXES, MASK_SUFFIXES, case_name
from .segmentations import label_array, labelmap_representation_name, segment_class, segment_classes, segment_mask
from .volumes import array_from_volume, ijk_to_ras

IMAGES, MASKS = "images", "masks"
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LPS = np.diag([-1.0, -1.0, 1.0])
#: names Windows reserves, with any extension (Slicer runs there too)
_RESERVED = {"con", "prn", "aux", "nul", *(f"{p}{n}" for p in ("com", "lpt") for n in range(1, 10))}


def sitk_image(array: np.ndarray, ijk_to_ras_matrix: np.ndarray) -> sitk.Image:
    """A SimpleITK image (LPS physical space) from a [k, j, i] array and its grid's IJK-to-RAS matrix."""
    image = sitk.GetImageFromArray(array)
    axes = ijk_to_ras_matrix[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (_LPS @ (axes / spacing)).ravel()))
    image.SetOrigin(tuple(float(v) for v in _LPS @ ijk_to_ras_matrix[:3, 3]))
    return image


def save_correction(volume_node, segmentation_node, dataset_dir: str | Path, case_id: str) -> tuple[Path, Path]:
    """Write the CT and the lesion label map of ``segmentation_node`` (on the CT's grid) into the dataset.

    Segments are matched to docs/CONTRACTS.md's lesion labels by terminology, else by name (``segment_class``). Refused,
    with nothing written: a segment with voxels that is neither a lesion class nor a lung (its voxels would be lost),
    a segmentation without any lesion segment or without any lesion voxel, and the cases of the module docstring.
    Returns (image path, mask path).
    """
    case_id = case_id.strip()
    if not _CASE_ID.match(case_id):
        raise InputError(None, f"case id {case_id!r} must be a plain name (letters, digits, '_', '-', '.')")
    if case_id.split(".")[0].casefold() in _RESERVED:
        raise InputError(None, f"case id {case_id!r} is a name Windows reserves for a device; choose another")
    dataset = Path(dataset_dir)
    image_path = dataset / IMAGES / f"{case_id}.nii.gz"
    mask_path = dataset / MASKS / f"{case_id}.nii.gz"
    _check_folders(dataset)
    _refuse_surface_source(segmentation_node)
    classes = segment_classes(segmentation_node, LESION_SEGMENTS)
    _refuse_unknown_painted_segments(segmentation_node, volume_node, classes)
    if not any(classes.values()):
        raise InputError(None, f"segmentation {segmentation_node.GetName()!r} has no lesion segment "
                               f"({', '.join(s.name for s in LESION_SEGMENTS)})")
    labels = label_array(segmentation_node, volume_node, LESION_SEGMENTS)
    if not labels.any():
        raise InputError(None, f"segmentation {segmentation_node.GetName()!r} has no lesion voxel to train on")
    matrix = ijk_to_ras(volume_node)
    image = sitk_image(array_from_volume(volume_node), matrix)
    same_ct = _check_existing_case(dataset, case_id, image)
    _write_pair(dataset, None if same_ct else (image, image_path), (sitk_image(labels, matrix), mask_path))
    return image_path, mask_path


def _check_folders(dataset: Path) -> None:
    """InputError when the dataset folder, its images/ or masks/ is a file, or when the folder cannot be written."""
    for folder in (dataset, dataset / IMAGES, dataset / MASKS):
        if folder.exists() and not folder.is_dir():
            raise InputError(folder, "is a file, not a folder: choose another dataset folder")
    existing = dataset
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(existing, "is a file, not a folder: choose another dataset folder")
    for folder in (existing, dataset / IMAGES, dataset / MASKS):
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(folder, "cannot be written (no permission): choose another dataset folder")


def _refuse_surface_source(segmentation_node) -> None:
    """InputError when the segments are kept as another representation than voxels (their voxels would be a lossy
    conversion the annotator never saw)."""
    segmentation = segmentation_node.GetSegmentation()
    source = (segmentation.GetSourceRepresentationName() if hasattr(segmentation, "GetSourceRepresentationName")
              else segmentation.GetMasterRepresentationName())  # Slicer < 5.4
    if source != labelmap_representation_name():
        raise InputError(None, f"segmentation {segmentation_node.GetName()!r} keeps its segments as {source!r}, not as "
                               "voxels: make 'Binary labelmap' its source representation (Segment Editor offers it "
                               "when you start editing), check the segments, then save; nothing was saved")


def _check_existing_case(dataset: Path, case_id: str, image: sitk.Image) -> bool:
    """Whether images/CASE.nii.gz already holds this very CT (only the mask is then replaced).

    InputError when it holds another CT (another annotator's case), or when images/ or masks/ has a file of this case
    under another extension or letter case (the trainer would read two cases, or refuse the folder).
    """
    expected = f"{case_id}.nii.gz"
    for sub, suffixes in ((IMAGES, IMAGE_SUFFIXES), (MASKS, MASK_SUFFIXES)):
        if not (dataset / sub).is_dir():
            continue
        for path in sorted((dataset / sub).iterdir()):
            stem = None if path.name.startswith(".") else case_name(path, suffixes)
            if stem is not None and stem.casefold() == case_id.casefold() and path.name != expected:
                raise InputError(path, f"is case {stem!r} already: choose another case id than {case_id!r} (or "
                                       "remove that file)")
    path = dataset / IMAGES / expected
    if not path.exists():
        return False
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        same_grid = (reader.GetSize() == image.GetSize()
                     and np.allclose(reader.GetSpacing(), image.GetSpacing(), rtol=1e-5)
                     and np.allclose(reader.GetOrigin(), image.GetOrigin(), atol=1e-3)
                     and np.allclose(reader.GetDirection(), image.GetDirection(), atol=1e-5))
        same = same_grid and np.array_equal(sitk.GetArrayFromImage(reader.Execute()),
                                            sitk.GetArrayViewFromImage(image))
    except RuntimeError:
        raise InputError(path, "is damaged: delete it and its mask, or choose another case id") from None
    if not same:
        raise InputError(path, f"holds another CT than this one: choose another case id than {case_id!r} (or delete "
                               "that case's image and mask to replace it)")
    return True


def _write_pair(dataset: Path, image_item, mask_item) -> None:
    """Write (image, path) (None: keep the image there) and (mask, path) to temporary files, then publish both; on
    any failure (an interruption too) nothing is published and the folders this call created are removed."""
    from ..io.writers import atomic_path

    created = [d for d in (dataset, dataset / IMAGES, dataset / MASKS) if not d.exists()]
    items = [item for item in (image_item, mask_item) if item is not None]
    try:
        with contextlib.ExitStack() as stack:  # publishes in reverse order: the mask first, the image last
            for image, path in items:
                tmp = stack.enter_context(atomic_path(path))
                try:
                    sitk.WriteImage(image, str(tmp), useCompression=True)
                except RuntimeError:
                    raise InputError(path, "could not be written (disk full, or no permission to write there?); "
                                           "nothing was saved") from None
    except OSError as exc:
        _remove_empty(created)
        raise InputError(exc.filename or dataset, f"could not be written ({exc.strerror or exc}); nothing was saved") \
            from None
    except BaseException:
        _remove_empty(created)
        raise


def _remove_empty(folders) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _refuse_unknown_painted_segments(segmentation_node, volume_node, classes) -> None:
    """InputError naming the segments with voxels that are no lesion class (lungs aside): saving would drop them."""
    segmentation = segmentation_node.GetSegmentation()
    unknown = [segmentation.GetSegment(segment_id).GetName() for segment_id, found in classes.items()
               if found is None and segment_class(segmentation.GetSegment(segment_id), LUNG_SEGMENTS) is None
               and segment_mask(segmentation_node, segment_id, volume_node).any()]
    if unknown:
        s_, has, it = ("s", "have", "them") if len(unknown) > 1 else ("", "has", "it")
        names = ", ".join(repr(name) for name in unknown)
        classes_text = ", ".join(repr(s.name) for s in LESION_SEGMENTS[:-1]) + f" or {LESION_SEGMENTS[-1].name!r}"
        raise InputError(None, f"segment{s_} {names} of {segmentation_node.GetName()!r} {has} painted voxels but no "
                               f"lesion class: rename {it} to {classes_text} (or set its terminology to one of these), "
                               f"or delete {it}; nothing was saved")
