"""Corrected lesion masks saved as training data ("save correction" of the lesion segmentation module).

Layout: the corrected-masks folder that the lesion training script reads
(``scripts/train_lesions.py --corrected DATASET``; reader: CovidCTAnalysis.lesions.corrected)::

    DATASET/
      images/CASE.nii.gz   the CT in HU, on its own grid (LPS on disk, as every NIfTI writer does)
      masks/CASE.nii.gz    uint8 lesion labels of docs/CONTRACTS.md on the same grid (0 none, 1 GGO, 2 consolidation,
                           3 crazy paving)

An annotator corrects a pseudo-mask in Segment Editor and saves: the image and the mask are written (a case saved
again is replaced). A segment counts as a lesion class by its terminology, else by its name (also "Ground glass
opacity", "GGO", "Crazy paving pattern"...); a painted segment that is neither is refused rather than dropped. Case
ids are checked to be plain file names; patient names are never used (nothing is read from the image's metadata).
The volume and segmentation nodes are not modified.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..labels import LESION_SEGMENTS, LUNG_SEGMENTS
from .segmentations import label_array, segment_class, segment_classes, segment_mask
from .volumes import array_from_volume, ijk_to_ras

IMAGES, MASKS = "images", "masks"
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LPS = np.diag([-1.0, -1.0, 1.0])


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
    a segmentation without any lesion segment or without any lesion voxel. Returns (image path, mask path).
    """
    if not _CASE_ID.match(case_id):
        raise InputError(None, f"case id {case_id!r} must be a plain name (letters, digits, '_', '-', '.')")
    dataset = Path(dataset_dir)
    classes = segment_classes(segmentation_node, LESION_SEGMENTS)
    _refuse_unknown_painted_segments(segmentation_node, volume_node, classes)
    if not any(classes.values()):
        raise InputError(None, f"segmentation {segmentation_node.GetName()!r} has no lesion segment "
                               f"({', '.join(s.name for s in LESION_SEGMENTS)})")
    labels = label_array(segmentation_node, volume_node, LESION_SEGMENTS)
    if not labels.any():
        raise InputError(None, f"segmentation {segmentation_node.GetName()!r} has no lesion voxel to train on")
    matrix = ijk_to_ras(volume_node)
    image_path = dataset / IMAGES / f"{case_id}.nii.gz"
    mask_path = dataset / MASKS / f"{case_id}.nii.gz"
    for path in (image_path, mask_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_image(sitk_image(array_from_volume(volume_node), matrix), image_path)
    _atomic_write_image(sitk_image(labels, matrix), mask_path)
    return image_path, mask_path


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


def _atomic_write_image(image: sitk.Image, path: Path) -> None:
    from ..io.writers import atomic_path

    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
