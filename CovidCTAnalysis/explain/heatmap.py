"""LRP relevance as a display heatmap: positive relevance, smoothed lightly, scaled to [0, 1] over the whole stack.

Positive relevance is the evidence *for* the explained class (negative relevance, evidence against it, is not
drawn). Pixel-level relevance is speckled by the convolutions' strides; a Gaussian of ``SMOOTH_PX`` pixels (on the
network's input grid) makes it readable as a map without moving it. One scale for the whole stack (a volume's
slices, or one image) keeps slices comparable: the strongest evidence of the case is 1.
"""

from __future__ import annotations

import numpy as np

SMOOTH_PX = 1.5


def relevance_heatmap(relevance: np.ndarray, smooth_px: float = SMOOTH_PX) -> np.ndarray:
    """(N, H, W) signed relevance -> float32 (N, H, W) in [0, 1] (all 0 when nothing is positive)."""
    from scipy import ndimage as ndi

    positive = np.maximum(np.asarray(relevance, np.float32), 0.0)
    if smooth_px > 0 and positive.size:
        positive = ndi.gaussian_filter(positive, sigma=(0, smooth_px, smooth_px))
    top = float(positive.max()) if positive.size else 0.0
    return (positive / top if top > 0 else np.zeros_like(positive)).astype(np.float32)
