"""Reading COVID-SemiSeg (Fan et al., Inf-Net, IEEE TMI 2020) into display-oriented HU training samples.

Folders used (under ``covid-semiseg/TrainingSet``):

- ``MultiClassInfection-Train/Imgs`` + ``GT``: the 50 radiologist-labelled slices (MedSeg), labels 0/1 GGO/2
  consolidation. Split by slice into train/validation with the fixed list ``constants.VALIDATION_SLICES``.
- ``LungInfection-Train/Pseudo-label/Imgs`` + ``GT``: 1600 slices of 20 COVID-19-CT-Seg volumes with binary
  infection masks produced by Inf-Net's semi-supervised procedure (model output, not ground truth). They enter training
  as "infection of unknown class" targets.

Orientation normalization (checked by eye on montages): the labelled MedSeg slices and the Radiopaedia-derived pseudo
slices lie with the spine on the image's right; the ``coronacases`` pseudo slices with the spine on the left. Each is
rotated by 90 degrees (clockwise, resp. counter-clockwise) so that the spine is at the bottom, as in radiological
display and in canonical LPS arrays. Whether that also puts the patient's right on the image's left cannot be told
reliably on these crops, so training flips left-right at random (see augment.py).

Intensity: the 8-bit values are mapped to approximate HU with the lung window, exactly as io does for 2-D slices
(``constants.display_to_hu``). The Inf-Net JPEGs were exported with different windows per source; the intensity
augmentation covers that spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from .constants import INFECTION_UNKNOWN_CLASS, VALIDATION_SLICES, display_to_hu
from .samples import Sample

#: COVID-SemiSeg's folder in the data root (../shared/data, docs/DATA.md); the paths below are inside it
FOLDER = Path("covid-semiseg")
LABELLED = Path("TrainingSet/MultiClassInfection-Train")
PSEUDO = Path("TrainingSet/LungInfection-Train/Pseudo-label")
#: the radiologist-labelled slices with binary infection masks (where the heatmap harness scores explanations)
DOCTOR_LABEL = Path("TrainingSet/LungInfection-Train/Doctor-label")


def to_display(array: np.ndarray, name: str) -> np.ndarray:
    """Rotate a COVID-SemiSeg slice (image or mask) into display orientation (spine at the bottom)."""
    spine_left = "coronacases" in name
    return np.ascontiguousarray(np.rot90(array, k=1 if spine_left else -1))


def _read_gray(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32)


def _read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        # palette PNGs keep their indices (0/1/2); others are gray 0/255
        return np.asarray(im if im.mode in ("P", "L") else im.convert("L"), dtype=np.uint8)


def _check(root: Path, sub: Path) -> Path:
    folder = root / sub
    if not (folder / "Imgs").is_dir():
        raise InputError(folder, "is not a COVID-SemiSeg folder (no Imgs/ inside)")
    return folder


def labelled_slices(root: Path, subset: str = "all", holdout=VALIDATION_SLICES) -> list[Sample]:
    """The 50 radiologist-labelled multi-class slices; subset 'train', 'val' or 'all'.

    ``holdout``: the slice numbers of 'val' (default the fixed split; a cross-validation fold passes its own).
    """
    folder = _check(Path(root), LABELLED)
    samples = []
    for path in sorted((folder / "Imgs").glob("*.jpg"), key=lambda p: int(p.stem)):
        number = int(path.stem)
        in_val = number in holdout
        if (subset == "train" and in_val) or (subset == "val" and not in_val):
            continue
        image = display_to_hu(_read_gray(path))
        target = _read_mask(folder / "GT" / f"{path.stem}.png")
        if target.max() > 2:
            raise InputError(folder / "GT" / f"{path.stem}.png", "has labels above 2 (expected 0/1/2)")
        samples.append(Sample(f"semiseg-{number}", to_display(image, path.stem).astype(np.float32),
                              to_display(target, path.stem), "covid-semiseg labelled"))
    return samples


def pseudo_labelled_slices(root: Path, limit: int | None = None) -> list[Sample]:
    """The 1600 Inf-Net pseudo-labelled slices, targets INFECTION_UNKNOWN_CLASS where the pseudo mask is set."""
    folder = _check(Path(root), PSEUDO)
    paths = sorted((folder / "Imgs").glob("*.jpg"))
    if limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    samples = []
    for path in paths:
        image = display_to_hu(_read_gray(path))
        mask = _read_mask(folder / "GT" / f"{path.stem}.png")
        target = np.where(mask > 127, INFECTION_UNKNOWN_CLASS, 0).astype(np.uint8)
        samples.append(Sample(path.stem, to_display(image, path.stem).astype(np.float32),
                              to_display(target, path.stem), "covid-semiseg pseudo-label"))
    return samples
