"""The Corona score of Gozes et al. (seed 003, §2.4, Eq. 1) and the case-level decision.

Eq. 1: CoronaScore = sum over positive slices z, sum over pixels (i, j) of Cmap_z(i, j) * 1(Cmap_z(i, j) > T) *
voxel volume, with T = 0.6 (the paper's threshold, set by an expert's visual evaluation). Cmap is the fused fine
localization map (§2.3) on the CT's own grid; a positive slice is one the classifier calls COVID-19 (slice
probability >= ``SLICE_THRESHOLD``). The activation value itself weights each voxel, as the equation is written, so
the score is an activation-weighted volume; it is reported in cm3 (voxel volume mm3 / 1000).

The paper has no case *probability* (its case-level ROC uses the Corona score itself, §3.2). ``case_probability``
is our choice: the mean of the top 10 % of the lung-slice probabilities (at least one slice). A single slice with a
false-positive score cannot make a case positive, and a case with lesions on a tenth of its lung slices can.
"""

from __future__ import annotations

import math

import numpy as np

ACTIVATION_THRESHOLD = 0.6
SLICE_THRESHOLD = 0.5
CASE_THRESHOLD = 0.5
TOP_FRACTION = 0.10


def corona_score_cm3(heatmap: np.ndarray, positive_slices: np.ndarray, voxel_volume_mm3: float,
                     threshold: float = ACTIVATION_THRESHOLD) -> float:
    """Eq. 1 of §2.4 in cm3.

    heatmap: (z, y, x) fused activation in [0, 1]; positive_slices: (z,) booleans; voxel_volume_mm3: dx * dy * dz.
    """
    heat = np.asarray(heatmap)
    if not np.issubdtype(heat.dtype, np.floating):
        heat = heat.astype(np.float64)
    positive = np.asarray(positive_slices, dtype=bool)
    if positive.shape != heat.shape[:1]:
        raise ValueError(f"positive_slices has shape {positive.shape}, expected ({heat.shape[0]},)")
    chosen = heat[positive]
    above = chosen > heat.dtype.type(threshold)  # compared in the map's own precision (0.6 in float32 is not > 0.6)
    return float(np.sum(chosen[above], dtype=np.float64) * voxel_volume_mm3 / 1000.0)


def case_probability(slice_probabilities: np.ndarray, top_fraction: float = TOP_FRACTION) -> float:
    """Mean of the top ``top_fraction`` of slice probabilities (at least one)."""
    p = np.sort(np.asarray(slice_probabilities, dtype=np.float64))[::-1]
    if p.size == 0:
        raise ValueError("no slice probabilities")
    k = max(1, int(math.ceil(top_fraction * p.size)))
    return float(p[:k].mean())
