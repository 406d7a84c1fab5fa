"""What a CT can support in ``covidct analyze``: pixels fine enough for lesions-unet, and the whole lungs in the scan.

Neither check changes a number; each adds a line to the report's ``warnings`` when it fails (docs/CONTRACTS.md).

Pixels: lesions-unet was trained on lung boxes with in-plane pixels up to ``LESIONS_UNET_MAX_PIXEL_MM``. On coarser
pixels its lesions come out several times too large (the demo patient without lesions: 0.07 % involvement at
1.37 mm pixels, 4.8 % at 2.73 mm). PNG/JPEG input is not checked: its pixel size is assumed (io/slices.py), not
read from the file, and a single picture is segmented whole at its own resolution.

Whole lungs: the MosMedData severity band grades the involvement of the whole lungs (lesions/quantify.py). A scan
whose lungs reach its bottom or top slice, that holds less lung height than any adult chest, or whose field of view
holds one lung only, shows only part of them; its % involvement (and its lung volumes) describe the scanned part
only, and analyze withholds the band.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..labels import LEFT_LUNG, RIGHT_LUNG

#: Coarsest in-plane pixel (mm) lesions-unet was trained on: its model card (Resources/Models/cards/lesions-unet.md,
#: "Limitations") says "thick-slab or very low-resolution CTs (pixels > 2 mm) are out of the training distribution".
LESIONS_UNET_MAX_PIXEL_MM = 2.0

#: Lung in the bottom or top axial slice, as a fraction of the largest lung slice's area, above which the lungs are
#: taken to run past the scan. Cutting the true lungs of the demo patient (seeds 0-2, 48-150 slices) and of the two
#: imlab normal chest CTs slice by slice, an end slice holding at most 5 % of the largest lung slice leaves at most
#: 0.2 % of the lung volume beyond it, which moves no band; a stray voxel, or the tip of an apex or of a costophrenic
#: recess, stays below it (10 % would leave up to 0.6 %).
EDGE_LUNG_FRACTION = 0.05

#: Shortest lung height (mm, first to last slice with lung) taken for whole lungs. Adult lungs are 200-300 mm tall
#: (the demo patient 250 mm, the imlab normals 281 and 310 mm); a slab a few centimetres deep is far below this.
#: Not applied to PNG/JPEG stacks, whose slice spacing is assumed.
MIN_LUNG_HEIGHT_MM = 80.0

#: The severity band's description when it is withheld because the scan holds only part of the lungs.
PARTIAL_LUNGS_NOT_GRADED = "not graded: the scale needs the whole lungs, and the scan holds only part of them"


def _mm(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def coarse_pixel_warning(ct, model: str = "lesions-unet", lungs_found: bool = True) -> str | None:
    """The report's warning when the in-plane pixels of ``ct`` (a CTVolume) are coarser than ``model`` was trained
    on, else None. None for PNG/JPEG input (pixel size assumed) and for a 2-D image without lungs (segmented whole)."""
    if ct.display_windowed or (ct.is_2d and not lungs_found):
        return None
    sx, sy = (float(s) for s in ct.image.GetSpacing()[:2])
    if round(max(sx, sy), 2) <= LESIONS_UNET_MAX_PIXEL_MM:
        return None
    size = _mm(sx) if abs(sx - sy) < 0.005 else f"{_mm(sx)} x {_mm(sy)}"
    return (f"in-plane pixels of {size} mm are coarser than {model} was trained on "
            f"(<= {_mm(LESIONS_UNET_MAX_PIXEL_MM)} mm): lesion volumes and % involvement may be several times "
            "too large")


def partial_lungs_warning(ct, lungs: sitk.Image) -> str | None:
    """The report's warning when the lungs (label map on ``ct``'s canonical grid, any label > 0) are not wholly
    inside the volume ``ct``, else None: lung in its bottom or top axial slice beyond ``EDGE_LUNG_FRACTION`` of the
    largest lung slice, lung less than ``MIN_LUNG_HEIGHT_MM`` high, or one lung only (right 1 / left 2 labels). None
    for a 2-D image or an empty mask."""
    if ct.is_2d:
        return None
    lung = sitk.GetArrayViewFromImage(lungs)
    per_slice = np.count_nonzero(lung.reshape(lung.shape[0], -1), axis=1)  # canonical z: 0 is the bottom
    largest = int(per_slice.max()) if per_slice.size else 0
    if largest == 0:
        return None
    reasons = []
    cut = [(name, per_slice[k] / largest) for name, k in (("bottom", 0), ("top", -1))
           if per_slice[k] > EDGE_LUNG_FRACTION * largest]
    if cut:
        reasons.append(f"lung in its {' and '.join(name for name, _ in cut)} slice{'s' if len(cut) > 1 else ''}: "
                       f"{' and '.join(f'{100 * f:.3g} %' for _, f in cut)} of the largest lung slice")
    found = [name for value, name in ((RIGHT_LUNG, "right"), (LEFT_LUNG, "left")) if (lung == value).any()]
    if len(found) == 1:  # lungs/split.py: a view that holds one lung gives that lung alone
        other = "left" if found[0] == "right" else "right"
        reasons.append(f"only the {found[0]} lung found: the {other} lies outside the field of view, or is absent")
    if not ct.display_windowed:
        z = np.flatnonzero(per_slice)
        height = float((z[-1] - z[0] + 1) * ct.image.GetSpacing()[2])
        if height < MIN_LUNG_HEIGHT_MM:
            reasons.append(f"lung only {height:.0f} mm high, whole lungs at least {MIN_LUNG_HEIGHT_MM:.0f} mm")
    if not reasons:
        return None
    return (f"the lungs are not wholly inside the scan ({'; '.join(reasons)}): lung volumes and % involvement "
            "cover only the scanned part, and no severity band is given")
