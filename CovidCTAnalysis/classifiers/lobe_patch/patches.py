"""The two patch grids of the lobe-patch system on a 256 x 256 lobe canvas (seed 001, §2.4, §2.7.2 and §2.8).

- Coarse: 32 x 32 patches of 36 x 36 pixels overlapping by 28 (stride 8), one per neuron of the patch feature
  extractor, whose receptive field is 36 pixels (§2.4). Patch j spans canvas rows [8j - 14, 8j + 22): centred on its
  neuron, so the 32 patches cover the canvas; pixels beyond the canvas are black (not lung, not infected).
- Fine: 128 x 128 patches of 6 x 6 pixels overlapping by 4 (stride 2, §2.8); patch j spans [2j - 2, 2j + 4).

Patch-level values of a pixel map: the minimum (distance to the lung periphery, §2.4) or the covered fraction
(pseudo-labels: infected at >= 1/3 of a coarse patch, §2.7.2; > 3/4 of a fine patch, §2.7.2). Pixel-level values of
a patch map: "the probability of the patch is assigned to all of its pixels, and for the pixels included in several
patches the maximum is taken" (§2.8).
"""

from __future__ import annotations

import numpy as np

COARSE = (36, 8)      # (patch size, stride)
FINE = (6, 2)
COARSE_DENSITY = 1.0 / 3.0   # §2.7.2
FINE_DENSITY = 0.75          # §2.7.2 "more than 3/4"


def _pad(size: int, stride: int) -> int:
    return (size - stride) // 2


def _windows(pixels: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(n, n, size, size) view of the patches of a square pixel map (padded with zeros)."""
    from skimage.util import view_as_windows

    pad = _pad(size, stride)
    padded = np.pad(pixels, pad, mode="constant")
    n = pixels.shape[0] // stride
    return view_as_windows(padded, (size, size), step=stride)[:n, :n]


def patch_min(pixels: np.ndarray, grid=COARSE) -> np.ndarray:
    """Minimum of a pixel map over each patch of ``grid``."""
    return _windows(pixels, *grid).min(axis=(2, 3))


def patch_fraction(pixels: np.ndarray, grid=COARSE) -> np.ndarray:
    """Mean of a 0/1 pixel map over each patch of ``grid`` (the covered fraction)."""
    return _windows(pixels.astype(np.float32), *grid).mean(axis=(2, 3))


def pixel_max(patch_map: np.ndarray, grid=COARSE) -> np.ndarray:
    """Each pixel gets the maximum of the patches of ``grid`` covering it (§2.8); ``patch_map`` >= 0."""
    from scipy import ndimage

    size, stride = grid
    n = patch_map.shape[0]
    pad = _pad(size, stride)
    seeds = np.zeros((n * stride + 2 * pad,) * 2, np.float32)
    seeds[:n * stride:stride, :n * stride:stride] = patch_map
    # a seed at a patch's top-left corner covers [corner, corner + size) down and right
    spread = ndimage.maximum_filter(seeds, size=size, origin=(size - 1) // 2, mode="constant")
    return spread[pad:pad + n * stride, pad:pad + n * stride]
