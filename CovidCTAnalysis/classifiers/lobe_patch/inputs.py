"""From HU to lobe inputs (seed 001 §2.2-§2.4): the one path that training, CV and inference share.

A slice in HU is scaled to the 512-px slice size (``lobes.to_slice_size``), put on the paper's intensity scale
(§2.2, ``lesions.pseudo_mask.paper_intensity``: for a volume over all its slices at once, since the background median
is the CT's), its lobes found (§2.3), and each lobe cropped from the previous, the middle and the next slice onto
the 256 x 256 canvas (§2.4's three-slice input; a single slice, a figure, repeats itself). Each ``Lobe`` also holds its
canvas mask and its coarse patches' distance to the lung periphery (§2.4).

No lobe found (no dark object of 5 000 px besides the background: a tight crop of one lung, a small figure): the
whole slice is one lobe so that the slice still gets a probability; ``Lobe.found`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import lobes as lb
from .patches import COARSE, patch_min


@dataclass
class Lobe:
    """One lobe of one slice, ready for the network."""

    image: np.ndarray       # (3, 256, 256) float32, previous / middle / next slice on the paper's scale
    mask: np.ndarray        # (256, 256) bool, the lobe on the canvas
    distance: np.ndarray    # (32, 32) float32, coarse patches' minimum distance to the lung periphery (px)
    where: lb.Placement     # crop box in the 512-px slice
    side: int               # labels.RIGHT_LUNG / LEFT_LUNG, 0 for a whole-slice stand-in
    found: bool = True


def paper_values(hu: np.ndarray) -> np.ndarray:
    """(z, y, x) HU -> (z, Y, X) paper-scale values on 512-px slices (§2.2 after the scaling of ``lobes``)."""
    from ...lesions.pseudo_mask import paper_intensity

    scaled = np.stack([lb.to_slice_size(s.astype(np.float32))[0] for s in np.asarray(hu, np.float32)])
    return paper_intensity(scaled)


def slice_lobes(values: np.ndarray, z: int) -> tuple[list[Lobe], np.ndarray]:
    """(lobes, lobe label map of the 512-px slice) of slice ``z`` of paper-scale ``values`` (z, Y, X)."""
    labels = lb.detect_lobes(values[z])
    prev, nxt = values[max(0, z - 1)], values[min(len(values) - 1, z + 1)]
    out = []
    for side in lb.SIDES:
        mask = labels == side
        if mask.any():
            out.append(_lobe(prev, values[z], nxt, mask, side, True))
    if not out:
        out.append(_lobe(prev, values[z], nxt, np.ones(values[z].shape, bool), 0, False))
    return out, labels


def _lobe(prev, mid, nxt, mask, side, found) -> Lobe:
    where = lb.placement(mask)
    image = np.stack([lb.to_canvas(v, where) for v in (prev, mid, nxt)])
    canvas_mask = lb.to_canvas(mask.astype(np.float32), where, order=0) > 0.5
    distance = patch_min(lb.periphery_distance(canvas_mask), COARSE)
    return Lobe(image, canvas_mask, distance, where, side, found)
