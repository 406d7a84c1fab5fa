"""Choosing the lung segmenter: ``covidct segment-lungs --model`` and the lungs stage of ``covidct analyze``.

Issue 3 asks for the better-validated model as the default. The choice rests on the model cards
(Resources/Models/cards/lungs-classic.md, lungs-unet.md): Dice and HD95 on the two imlab-lung3d references and
pleural-consolidation coverage on the demo CT.
"""

from __future__ import annotations

from typing import Callable

import SimpleITK as sitk

LUNG_MODELS = ("lungs-classic", "lungs-unet")
#: the model that validated better (see the module docstring); a registered model only
DEFAULT_LUNG_MODEL = "lungs-classic"


def segment_lungs(image: sitk.Image, model: str = DEFAULT_LUNG_MODEL, *, display_windowed: bool = False,
                  device="cpu", progress: Callable[[float, str], None] | None = None) -> sitk.Image:
    """Right (1) / left (2) lung label map of a canonical CT with the lung model ``model``."""
    return segment_lungs_and_pleura(image, model, display_windowed=display_windowed, device=device,
                                    progress=progress)[0]


def segment_lungs_and_pleura(image: sitk.Image, model: str = DEFAULT_LUNG_MODEL, *, display_windowed: bool = False,
                             device="cpu", progress: Callable[[float, str], None] | None = None
                             ) -> tuple[sitk.Image, sitk.Image | None]:
    """The lung label map and, from lungs-classic, the dense pleural tissue it counted as lung (classic.ClassicLungs;
    the lesion segmentation labels it consolidation). lungs-unet has no such mask: None."""
    if model == "lungs-classic":
        from .classic import classic_lungs

        found = classic_lungs(image, display_windowed=display_windowed, progress=progress)
        return found.labels, found.pleural
    if model == "lungs-unet":
        from .unet import segment_lungs_unet

        return segment_lungs_unet(image, display_windowed=display_windowed, device=device, progress=progress), None
    raise ValueError(f"unknown lung model {model!r}; one of {', '.join(LUNG_MODELS)}")
