"""The lungs stage of ``covidct analyze`` and ``covidct segment-lesions``: a slice or thin stack without lungs goes on.

Issue 18: a chest image is never refused just because the lung finder failed. A single slice or a thin stack (at
most ``THIN_STACK_MM`` deep: a few slices above or below the lungs) may hold no lung, or too little to find; for
them a ``LungsNotFoundError`` gives an empty lung mask and a warning. The lesion network then runs without a lung
mask (a single slice whole, a stack inside the air the body encloses), the lung-based numbers (lung volumes,
% involvement, severity band) are left out, and classifiers that need the lung mask are listed as not run. A
volume deeper than that with no lungs (an abdominal CT) is still refused (exit status 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import SimpleITK as sitk

from ..errors import LungsNotFoundError

#: Deepest stack (mm) that goes on without lungs; a whole abdominal CT is far deeper.
THIN_STACK_MM = 40.0


@dataclass
class FoundLungs:
    """The lung label map on the canonical grid (all 0 when none was found), the pleural fill of lungs-classic
    (or None), and, when no lung was found in a 2-D image, the warning for the report and the lung finder's reason
    (else None)."""

    labels: sitk.Image
    pleural: sitk.Image | None
    warning: str | None = None
    problem: str | None = None

    @property
    def found(self) -> bool:
        return self.warning is None


def is_thin_stack(ct) -> bool:
    """A stack of a few slices (a CTVolume at most ``THIN_STACK_MM`` deep), not a single slice."""
    return not ct.is_2d and ct.size[2] * ct.spacing[2] <= THIN_STACK_MM


def lung_warning(problem: str, thin_stack: bool = False) -> str:
    """The report's warning for a slice or thin stack in which the lung finder found no lung."""
    where = "inside the air the body encloses" if thin_stack else "over the whole image"
    return (f"lung mask not found: {problem}; the lesion network ran {where}, and lung volumes, "
            "% involvement and the severity band are missing")


def find_lungs(ct, model: str, device="cpu", progress: Callable[[float, str], None] | None = None) -> FoundLungs:
    """Lungs of ``ct`` (a CTVolume) with lung model ``model``; LungsNotFoundError for a volume without them that is
    not a thin stack."""
    from ..lungs.select import segment_lungs_and_pleura

    try:
        labels, pleural = segment_lungs_and_pleura(ct.image, model, display_windowed=ct.display_windowed,
                                                   device=device, progress=progress)
    except LungsNotFoundError as exc:
        if not (ct.is_2d or is_thin_stack(ct)):
            raise LungsNotFoundError(exc.path or ct.source, ct.with_hu_doubt(exc.problem)) from None
        empty = sitk.Image(ct.image.GetSize(), sitk.sitkUInt8)
        empty.CopyInformation(ct.image)
        if progress is not None:
            progress(1.0, f"no lung found ({exc.problem}); going on without a lung mask")
        return FoundLungs(empty, None, lung_warning(exc.problem, thin_stack=not ct.is_2d), exc.problem)
    return FoundLungs(labels, pleural)
