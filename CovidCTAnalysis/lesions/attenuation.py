"""Ground glass must be denser than normal lung: an attenuation check on the network's ground-glass label.

Ground-glass opacity is, by definition, hazy *increased* attenuation of the lung through which vessels and bronchial
walls stay visible (Hansell et al., "Fleischner Society: glossary of terms for thoracic imaging", Radiology 2008).
lesions-unet learned its margins from generous radiologist masks and, on the demo CT, also labels normal lung next to
a lesion: 70 % of its false-positive voxels there had no added density at all (model card). The check keeps a
ground-glass pixel only where the *background* attenuation of the parenchyma - the image after a grey-level opening
that removes vessels and bronchial walls thinner than ``OPENING_MM``, smoothed over ``NOISE_MM`` - is at least
``RAISE_HU`` above the normal lung level (the median of aerated, unlabelled lung). Consolidation is not touched; the
check only removes labels, never adds them. The two constants were chosen on training phantoms (seeds 101-106), not
on the validation slices or the demo CT (scripts/evaluate_lesions.py reports both with and without the check).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..labels import GGO

#: Side (mm) of the square window of the grey-level opening: vessels and walls narrower than this are removed.
OPENING_MM = 8.0
#: Gaussian sigma (mm) smoothing the opened image (noise).
NOISE_MM = 1.5
#: Minimum rise (HU) of the background attenuation over the normal lung level for ground glass to stand.
RAISE_HU = 80.0
#: Aerated lung for the normal level: HU in this range (vessels and lesions denser, outside air darker).
AERATED_HU = (-1000.0, -400.0)
#: The normal level never lies above this (HU). Normal lung at full inspiration is about -850 HU; when the network
#: has labelled nearly all of the lung, the few unlabelled aerated voxels are partial-volume edges and read too dense.
NORMAL_LUNG_MAX_HU = -780.0


def normal_lung_level(hu: np.ndarray, labels: np.ndarray, region: np.ndarray | None = None) -> float:
    """Median HU of aerated lung without a lesion label (inside ``region`` when given), at most NORMAL_LUNG_MAX_HU."""
    aerated = (hu > AERATED_HU[0]) & (hu < AERATED_HU[1]) & (labels == 0)
    if region is not None:
        aerated &= region
    if aerated.sum() < 100:
        return NORMAL_LUNG_MAX_HU
    return min(float(np.median(hu[aerated])), NORMAL_LUNG_MAX_HU)


def drop_unraised_ggo(labels: np.ndarray, hu: np.ndarray, spacing_xy: tuple[float, float],
                      level: float) -> np.ndarray:
    """``labels`` [Z, H, W] with ground glass removed where the parenchyma is not denser than ``level`` (in place).

    Works slice by slice on the bounding box of each slice's ground-glass label (plus the opening window), so the cost
    follows the lesion burden, not the image size.
    """
    win = [max(1, int(round(OPENING_MM / s))) | 1 for s in spacing_xy[::-1]]  # rows (y), columns (x); odd
    sigma = [NOISE_MM / s for s in spacing_xy[::-1]]
    pad = [w + int(3 * s) + 1 for w, s in zip(win, sigma)]
    for z in np.flatnonzero((labels == GGO).any(axis=(1, 2))):
        ys, xs = np.nonzero(labels[z] == GGO)
        y0, y1 = max(0, ys.min() - pad[0]), min(hu.shape[1], ys.max() + 1 + pad[0])
        x0, x1 = max(0, xs.min() - pad[1]), min(hu.shape[2], xs.max() + 1 + pad[1])
        background = ndi.gaussian_filter(ndi.grey_opening(hu[z, y0:y1, x0:x1].astype(np.float32), size=win), sigma)
        sub = labels[z, y0:y1, x0:x1]
        sub[(sub == GGO) & (background < level + RAISE_HU)] = 0
    return labels
