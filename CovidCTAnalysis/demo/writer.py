"""Writing a demo case to disk for users: the CT and its truth label maps as plain NRRD files."""

from __future__ import annotations

from pathlib import Path

from ..io import write_label_map, write_volume
from ..labels import LESION_SEGMENTS, LUNG_SEGMENTS
from .phantom import DemoCase

IMAGE_NAME = "demo-ct.nrrd"
LUNGS_NAME = "demo-truth-lungs.nrrd"
LESIONS_NAME = "demo-truth-lesions.nrrd"


def write_demo_case(case: DemoCase, folder) -> Path:
    """Write demo-ct.nrrd (float32 HU) and the truth maps demo-truth-lungs.nrrd / demo-truth-lesions.nrrd (uint8).

    The folder is created if needed; each file is written atomically by the io writers (complete or absent).
    Returns the path of the CT image.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_label_map(case.lungs, folder / LUNGS_NAME, LUNG_SEGMENTS)
    write_label_map(case.lesions, folder / LESIONS_NAME, LESION_SEGMENTS)
    return write_volume(case.image, folder / IMAGE_NAME)
