"""The lungs stage of ``covidct analyze`` and ``covidct segment-lesions``: a 2-D image without a lung found goes on.

Issue 18: a chest image is never refused just because the lung finder failed. Tightly cropped figures (lungs
touching the image border, as many COVID-SemiSeg slices) defeat the lung finder, yet the lesion network was trained
on exactly such crops. So for a 2-D image a ``LungsNotFoundError`` gives an empty lung mask and a warning; the
lesion network then runs over the whole image and the lung-based numbers (lung volumes, % involvement, severity
band) are left out. A volume with no lungs (an abdominal CT) is still refused (exit status 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import SimpleITK as sitk

from ..errors import LungsNotFoundError


@dataclass
class FoundLungs:
    """The lung label map on the canonical grid (all 0 when none was found), the pleural fill of lungs-classic
    (or None), and, when no lung was found in a 2-D image, the warning for the report (else None)."""

    labels: sitk.Image
    pleural: sitk.Image | None
    warning: str | None = None

    @property
    def found(self) -> bool:
        return self.warning is None


def lung_warning(problem: str) -> str:
    """The report's warning for a 2-D image in which the lung finder found no lung."""
    return (f"lung mask not found: {problem}; the lesion network ran over the whole image, and lung volumes, "
            "% involvement and the severity band are missing")


def find_lungs(ct, model: str, device="cpu", progress: Callable[[float, str], None] | None = None) -> FoundLungs:
    """Lungs of ``ct`` (a CTVolume) with lung model ``model``; raises LungsNotFoundError for a volume without them."""
    from ..lungs.select import segment_lungs_and_pleura

    try:
        labels, pleural = segment_lungs_and_pleura(ct.image, model, display_windowed=ct.display_windowed,
                                                   device=device, progress=progress)
    except LungsNotFoundError as exc:
        if not ct.is_2d:
            raise
        empty = sitk.Image(ct.image.GetSize(), sitk.sitkUInt8)
        empty.CopyInformation(ct.image)
        if progress is not None:
            progress(1.0, f"no lung found ({exc.problem}); going on without a lung mask")
        return FoundLungs(empty, None, lung_warning(exc.problem))
    return FoundLungs(labels, pleural)
