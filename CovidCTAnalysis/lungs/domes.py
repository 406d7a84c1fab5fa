"""Domes: the top of the liver, spleen or heart seen as an island of soft tissue inside the basal lung ring.

On an axial slice through the diaphragm's dome, lung surrounds the dome in-plane, so hole filling (fill.py) and the
pleural fills (pleura.py) would take the dome for a lesion inside the lung (issue 18: Dice 0.936 on such a slice of a
held-out CT; the lesion extent rule met the same error on the heart's dome of imlab id002). A dome differs from a
lesion in 3-D: straight below it (towards the feet: lower z on the canonical LPS grid) lies more of the same soft
tissue, and more of it - the organ widens downwards until it leaves the lung. A vessel seen end-on is small, and a
lesion enclosed by lung has aerated lung below most of it.

An in-plane island is a dome when it covers at least `DOME_MIN_CM2`, is nearly convex (`DOME_SOLIDITY`: a smooth
oval, not a branching hilar vessel), soft tissue lies below at least `DOME_BELOW_FRACTION` of it in the next slice
down, and the piece of soft tissue it lies on there is at least `DOME_WIDENING` times its area.

A single slice has no "below": there the island's size and density decide (`slice_domes`). A consolidation usually
touches the pleura and holds air bronchograms; an island of at least `SLICE_DOME_MIN_CM2`, nearly convex, whose
voxels lie within `SLICE_DOME_SPREAD_HU` of its median, and whose median is water-like soft tissue
(`SLICE_DOME_HU`), is an organ's dome. Only on true HU: a display-windowed figure carries no reliable density.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..labels import LEFT_LUNG, RIGHT_LUNG
from .morphology import IN_PLANE, fill_holes_in_plane

#: Smallest island (cm2) judged; segmental vessels seen end-on are well below 1 cm2.
DOME_MIN_CM2 = 2.0
#: Fraction of the island's footprint that must be soft tissue in the slice below ...
DOME_BELOW_FRACTION = 0.8
#: ... where the piece of tissue under it must be at least this many times as large as the island (a dome widens
#: downwards; with thin slices it grows only a few per cent per slice).
DOME_WIDENING = 1.0
#: A dome's cut is a smooth oval; hilar vessels branching in-plane are far from convex.
DOME_SOLIDITY = 0.85
#: Single slices: smallest island (cm2), the homogeneity (HU either side of the median holding
#: `SLICE_DOME_HOMOGENEOUS` of its voxels) and the median's range (liver 50-70 HU unenhanced, up to ~130 enhanced).
SLICE_DOME_MIN_CM2 = 4.0
SLICE_DOME_SPREAD_HU = 40.0
SLICE_DOME_HOMOGENEOUS = 0.9
SLICE_DOME_HU = (20.0, 150.0)


def _solidity(island: np.ndarray) -> float:
    """Area over the area of the convex hull (skimage regionprops): 1 for an oval, low for a branching vessel."""
    from skimage.measure import regionprops

    return float(regionprops(island.astype(np.uint8))[0].solidity)


def dome_islands(labels: np.ndarray, tissue: np.ndarray, spacing) -> np.ndarray:
    """Voxels of the in-plane islands enclosed by one lung (labels 1/2) that are domes (see the module docstring).

    labels: the aerated lungs (uint8, z, y, x), before any filling. tissue: bool, soft tissue or denser (not air).
    spacing: (x, y, z) in mm. Slices are judged from the feet up, and the piece under a dome must be open (not
    enclosed by the lung) or a dome itself: the upper half of a round lesion lies on its own lower half, which is
    not a dome, so the chain breaks there.
    """
    domes = np.zeros(labels.shape, bool)
    if labels.shape[0] < 2:
        return domes
    min_area = DOME_MIN_CM2 * 100.0 / (spacing[0] * spacing[1])
    for lung in (RIGHT_LUNG, LEFT_LUNG):
        side = labels == lung
        enclosed = fill_holes_in_plane(side) & ~side & tissue
        for z in range(1, labels.shape[0]):
            islands, n = ndi.label(enclosed[z])
            if n == 0:
                continue
            pieces, m = ndi.label(tissue[z - 1])
            piece_area = np.bincount(pieces.ravel(), minlength=m + 1)
            # a piece below is a floor for a dome when it is open (partly outside the lung's enclosure) or a dome
            floor = np.bincount(pieces[~enclosed[z - 1] | domes[z - 1]], minlength=m + 1) > 0
            floor[0] = False
            for k in range(1, n + 1):
                island = islands == k
                area = int(island.sum())
                if area < min_area:
                    continue
                under = pieces[island]
                counts = np.bincount(under, minlength=m + 1)
                counts[0] = 0
                p = int(np.argmax(counts))
                if (counts[p] >= DOME_BELOW_FRACTION * area and floor[p]
                        and piece_area[p] >= DOME_WIDENING * area and _solidity(island) >= DOME_SOLIDITY):
                    domes[z][island] = True
    return domes


def slice_domes(labels: np.ndarray, values: np.ndarray, tissue: np.ndarray, spacing) -> np.ndarray:
    """Domes of a single true-HU slice (arrays of one slice): see the module docstring."""
    domes = np.zeros(labels.shape, bool)
    min_area = SLICE_DOME_MIN_CM2 * 100.0 / (spacing[0] * spacing[1])
    for lung in (RIGHT_LUNG, LEFT_LUNG):
        side = labels[0] == lung
        islands, n = ndi.label(fill_holes_in_plane(side[None])[0] & ~side & tissue[0])
        for k in range(1, n + 1):
            island = islands == k
            if island.sum() < min_area or _solidity(island) < DOME_SOLIDITY:
                continue
            hu = values[0][island]
            median = float(np.median(hu))
            homogeneous = np.mean(np.abs(hu - median) <= SLICE_DOME_SPREAD_HU) >= SLICE_DOME_HOMOGENEOUS
            if homogeneous and SLICE_DOME_HU[0] <= median <= SLICE_DOME_HU[1]:
                domes[0][island] = True
    return domes
