"""Intensity pseudo-mask of suspected infection inside the lungs (seed 001, Ghavami Modegh et al. 2020, section 2.7.2).

The paper's recipe, on its own intensity scale (section 2.2): HU clipped to [-2000, 3000], shifted by the median
background (air outside the body) so that air is 0, clipped to 2048 and divided by 2048, then a 3 x 3 median filter.
Then, for one CT (all its slices together):

- lower bound: the standard deviation of the images ("a threshold greater than the standard deviation of all the
  images in the subject's CT-scan", to leave out the background and healthy lung);
- upper bound: the value of minimum frequency between the two peaks of the value histogram ("the first one related to
  the black sides and the second one related to the white sides"), to leave out soft tissue and bone;
- a pixel strictly between the bounds is a suspected infection pixel;
- patches of 36 x 36 pixels with an overlap of 28 (stride 8) are infected when at least 1/3 of their pixels are
  suspected ("a threshold of 1/3 of density").

What we chose where the paper is vague. "All the images" are read as the paper's lobe images (section 2.3: the
bounding box of each lung label in each slice, centred on a black 256 x 256 canvas, scaled down to fit when larger);
the standard deviation is computed over them, canvas included, in pixels of the input as the paper works. (Over the
whole CT or the bare crops it lands at about -520 to -560 HU, above typical ground glass, and the band between the
bounds came out empty on the demo CT.) The valley is taken over the bare lobe crops (they hold both the "black" and
the "white sides"; the canvas would add a spike at 0), over the whole CT when the crops give none above the lower
bound; failing both (a flat histogram, as with widespread disease), the bright (soft-tissue) peak is the upper bound.
The histogram has 256 bins over [0, 1], its log-counts smoothed by a Gaussian of 2 bins; its two peaks are the most
prominent maximum ("black sides") and the most prominent one at least 512 HU brighter ("white sides"). The background
is the median of the voxels outside the body (air below -500 HU connected to the slice border), -1000 HU when there
are none (a tight crop). The mask is kept inside the lung region (the lung mask closed by 10 mm and hole-filled per
slice, as in inference.py, so dense lesions at the lung border are not cut). The pixel-level mask is the suspected
pixels covered by at least one infected patch (isolated suspected pixels drop out); patch sizes are in pixels of the
input, as in the paper (36 px = about 25 mm at the usual 0.7 mm pixels).

The result is a suggestion for annotators to correct, written as the segment ``PSEUDO_MASK_SEGMENT``: it marks
everything of intermediate density in the lungs, so it includes partial-volume vessel and fissure pixels and misses
consolidation denser than the upper bound.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..labels import Segment

#: The label written for annotators (label value 1 of its own label map).
PSEUDO_MASK_SEGMENT = Segment(1, "suspected infection (intensity pseudo-mask)", (0.98, 0.60, 0.10))

CLIP_HU = (-2000.0, 3000.0)   # section 2.2
SCALE = 2048.0                # section 2.2
MEDIAN_KERNEL = 3             # section 2.2
PATCH = 36                    # section 2.7.2 (and 2.4: 36 x 36 receptive field)
STRIDE = 8                    # section 2.8: overlap of 28 pixels
DENSITY = 1.0 / 3.0           # section 2.7.2
CANVAS = 256                  # section 2.3: lobe crops are centred on a black 256 x 256 image
HIST_BINS = 256
HIST_SMOOTH_BINS = 2.0
PEAK_SEPARATION = 0.25        # 512 HU on the paper's scale


def paper_intensity(hu: np.ndarray) -> np.ndarray:
    """Section 2.2 normalization of a (z, y, x) HU array to [0, 1], with the per-slice 3 x 3 median filter."""
    from scipy import ndimage

    clipped = np.clip(hu, *CLIP_HU)
    outside = (clipped < -500) & ~_enclosed_air(clipped)
    background = float(np.median(clipped[outside])) if outside.any() else -1000.0
    values = np.clip(clipped - background, 0.0, SCALE) / SCALE
    return ndimage.median_filter(values.astype(np.float32), size=(1, MEDIAN_KERNEL, MEDIAN_KERNEL))


def _enclosed_air(hu: np.ndarray) -> np.ndarray:
    """Air (< -500 HU) not connected to any slice border: lungs, airways, bowel gas."""
    from scipy import ndimage

    out = np.zeros(hu.shape, bool)
    for z in range(hu.shape[0]):
        air = hu[z] < -500
        lab, n = ndimage.label(air)
        if n:
            border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
            out[z] = air & ~np.isin(lab, border)
    return out


def valley(values: np.ndarray) -> tuple[float, float] | None:
    """(valley, bright peak) of section 2.7.2: the value of minimum frequency between the dark peak (air and aerated
    lung) and the bright peak (soft tissue); None when there is no such pair.

    Peaks of the smoothed log-histogram: the dark one is the most prominent; the bright one the most prominent at least
    PEAK_SEPARATION above it, so that a ground-glass mode (some 300 HU above healthy lung) is not taken for the
    "white sides" (soft tissue is some 900 HU above lung)."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    hist, edges = np.histogram(values, bins=HIST_BINS, range=(0.0, 1.0))
    smooth = gaussian_filter1d(np.log1p(hist.astype(float)), HIST_SMOOTH_BINS)
    padded = np.concatenate([[-np.inf], smooth, [-np.inf]])  # a maximum in the first or last bin counts as a peak
    peaks, props = find_peaks(padded, prominence=0)
    peaks, prominence = peaks - 1, props["prominences"]
    if len(peaks) < 2:
        return None
    centres = 0.5 * (edges[:-1] + edges[1:])
    dark = peaks[np.argmax(prominence)]
    far = centres[peaks] >= centres[dark] + PEAK_SEPARATION
    if not far.any():
        return None
    bright = peaks[far][np.argmax(prominence[far])]
    low = dark + int(np.argmin(smooth[dark:bright + 1]))
    return float(centres[low]), float(centres[bright])


def lobe_images(values: np.ndarray, lungs: np.ndarray) -> list[np.ndarray]:
    """The lobe images of section 2.3: the values in the bounding box of each lung label in each slice."""
    from scipy import ndimage

    crops = []
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):
        for box in ndimage.find_objects(lungs[z].astype(np.int32)):
            if box is not None:
                crops.append(values[z][box])
    return crops


def canvas_std(crops: list[np.ndarray], canvas: int = CANVAS) -> float:
    """Standard deviation of the lobe images as the paper feeds them: each crop centred on a black canvas x canvas
    image, crops larger than the canvas scaled down to fit (their values weighted by the area scale)."""
    total = s1 = s2 = 0.0
    for c in crops:
        f2 = min(1.0, canvas / max(c.shape)) ** 2
        c = c.astype(np.float64)
        total += canvas * canvas
        s1 += f2 * c.sum()
        s2 += f2 * (c * c).sum()
    mean = s1 / total
    return float(np.sqrt(max(0.0, s2 / total - mean * mean)))


def thresholds(values: np.ndarray, lungs: np.ndarray) -> tuple[float, float]:
    """(lower, upper) on the paper's scale: std of the lobe images on their canvas; valley of the lobe crops."""
    crops = lobe_images(values, lungs)
    if not crops:
        raise ValueError("the lung mask is empty")
    lower = canvas_std(crops)
    for population in (np.concatenate([c.ravel() for c in crops]), values.ravel()):
        found = valley(population)
        if found is not None and found[0] > lower:
            return lower, found[0]
    # no valley above the lower bound (a flat histogram, e.g. widespread disease): stop at the bright peak
    bright = [f[1] for f in (found,) if f is not None and f[1] > lower]
    return lower, bright[0] if bright else 1.0


def patch_support(suspected: np.ndarray, patch: int = PATCH, stride: int = STRIDE,
                  density: float = DENSITY) -> np.ndarray:
    """Pixels covered by at least one patch (patch x patch, top-left corners on a stride grid) whose suspected
    fraction is at least ``density``. An image smaller than a patch is one patch."""
    from scipy import ndimage

    h, w = suspected.shape
    if h < patch or w < patch:
        return np.full(suspected.shape, suspected.mean() >= density)
    integral = np.pad(suspected.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    tops = np.arange(0, h - patch + 1, stride)
    lefts = np.arange(0, w - patch + 1, stride)
    t, l = np.meshgrid(tops, lefts, indexing="ij")
    counts = integral[t + patch, l + patch] - integral[t, l + patch] - integral[t + patch, l] + integral[t, l]
    hot = counts >= density * patch * patch
    seeds = np.zeros((h, w), bool)
    seeds[t[hot], l[hot]] = True
    # a seed at a patch's top-left corner covers [top, top + patch) x [left, left + patch)
    return ndimage.maximum_filter(seeds, size=patch, origin=(patch - 1) // 2, mode="constant")


def pseudo_infection_mask(image: sitk.Image, lungs: sitk.Image) -> sitk.Image:
    """Binary uint8 mask (1 = suspected infection) on the grid of ``image`` (canonical HU), inside ``lungs`` (> 0)."""
    from .inference import lung_gate

    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    lung = sitk.GetArrayFromImage(lungs) > 0
    shape = hu.shape
    if hu.ndim == 2:
        hu, lung = hu[None], lung[None]
    if lung.shape != hu.shape:
        raise ValueError(f"lung mask shape {lung.shape} differs from the image's {hu.shape}")
    values = paper_intensity(hu)
    gate = lung_gate(lung, image.GetSpacing()[:2])
    lower, upper = thresholds(values, sitk.GetArrayFromImage(lungs).reshape(hu.shape))
    out = np.zeros(hu.shape, np.uint8)
    for z in np.flatnonzero(gate.any(axis=(1, 2))):
        suspected = (values[z] > lower) & (values[z] < upper) & gate[z]
        out[z] = suspected & patch_support(suspected)
    result = sitk.GetImageFromArray(out.reshape(shape))
    result.CopyInformation(image)
    return result
