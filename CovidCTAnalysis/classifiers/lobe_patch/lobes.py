"""Lobe images of the Sharif lobe-patch system (Ghavami Modegh et al. 2020, seed 001, §2.2-§2.3 and §2.8).

What the paper calls the two "lobes" of a slice are its left and right lung regions found by intensity alone, not the
anatomical lobes: this module names them "k-means lung regions" (the Slicer segments say so), and the model card
measures them against reference lungs.

§2.2: every slice is on the paper's intensity scale (``lesions.pseudo_mask.paper_intensity``: HU clipped to
[-2000, 3000], background median subtracted, /2048, 3 x 3 median filter), the one place that normalisation lives.

§2.3, as written: two-cluster k-means of the slice's pixel values (``skimage.filters.threshold_isodata`` is exactly
that: the Ridler-Calvard iteration is Lloyd's k-means with k = 2 on one feature); the darker cluster is the
foreground (lung and air); erosion by a 3 x 3 square, dilation by an 8 x 8 square; connected objects of fewer than
5 000 pixels dropped; apart from the background that "expands everywhere", the largest object on the image's left
is one lobe, the largest on its right the other. Each lobe's bounding box is cropped and centred on a black
256 x 256 canvas, scaled down to fit (aspect kept) when larger.

Where the paper is silent, and what we chose:
- Pixel sizes: the paper's slices are 512 x 512 CT images. Every slice here (a CT slice or a figure of any size) is
  first scaled so that its larger side is ``SLICE_SIZE`` = 512 px, so the kernel sizes and the 5 000-pixel area mean
  what they meant there.
- The background object: an object touching the image border whose bounding box spans >= 90 % of the image's width
  or height (outside air around the body). A lung cut by a tight figure crop touches one border without spanning it.
  It is removed after the erosion and before the dilation (the paper sets it aside after both): in figures shown in
  a mediastinal window lungs and outside air are the same black, the chest wall is a few pixels thick, and the
  8-pixel dilation would merge them into one background.
- Figures the paper's CTs never were: when the rule above does not find both lobes, the background must touch three
  image borders (lungs of a tight crop run from its top to its bottom edge), then, also, only the darker half of the
  dark cluster counts (a mediastinal-window figure maps subcutaneous fat near air, linking lungs to the outside).
- Sides: the image's left is the patient's right in radiological display, so the left object is the right lung
  (``labels.RIGHT_LUNG``) and the right object the left lung. When one object holds both lungs (they touch after the
  8-pixel dilation) and nothing lies on the other side, it is split at the image's vertical midline.
- A lobe's pixels: its object with holes filled (dense lesions inside the lung belong to the lung, which §2.8 counts),
  so the region is the dilated foreground, a few pixels wider than the k-means lung.
- The three-slice input (§2.4) crops the previous and the next slice with the middle slice's lobe box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...labels import LEFT_LUNG, RIGHT_LUNG

SLICE_SIZE = 512      # the paper's CT slices (our reading; see module doc)
CANVAS = 256          # §2.3
ERODE = 3             # §2.3
DILATE = 8            # §2.3
MIN_AREA = 5000       # §2.3, pixels of a 512 px slice
BACKGROUND_SPAN = 0.9
SIDES = (RIGHT_LUNG, LEFT_LUNG)  # image left, image right (radiological display)


@dataclass(frozen=True)
class Placement:
    """Where a lobe crop sits: ``box`` (rows, cols) in the 512-px slice, ``scale`` (<= 1) applied to the crop, and
    the top-left ``offset`` of the scaled crop on the canvas."""

    box: tuple[slice, slice]
    scale: float
    offset: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        """Size of the scaled crop on the canvas."""
        h, w = (s.stop - s.start for s in self.box)
        return max(1, int(round(h * self.scale))), max(1, int(round(w * self.scale)))


def to_slice_size(image: np.ndarray, order: int = 1) -> tuple[np.ndarray, float]:
    """(image scaled so its larger side is ``SLICE_SIZE``, the factor used); ``order`` 0 for label maps."""
    from skimage.transform import resize

    factor = SLICE_SIZE / max(image.shape)
    if abs(factor - 1.0) < 1e-6:
        return image, 1.0
    shape = tuple(max(1, int(round(n * factor))) for n in image.shape)
    out = resize(image, shape, order=order, preserve_range=True, anti_aliasing=order > 0 and factor < 1)
    return out.astype(image.dtype), factor


def detect_lobes(values: np.ndarray) -> np.ndarray:
    """Lobe label map (0, ``RIGHT_LUNG``, ``LEFT_LUNG``; uint8) of one 512-px slice on the paper's scale (§2.3).

    The paper's rule first; when it does not give both lobes, two retries for figure framings its CTs never had (see
    the module doc): the background must touch three image borders, then also the darker half of the dark cluster
    only. The first attempt that finds both lobes wins, else the one that found more lung."""
    from skimage.filters import threshold_isodata

    if float(values.max()) <= float(values.min()):
        return np.zeros(values.shape, np.uint8)
    threshold = threshold_isodata(values)
    best = None
    for cut, rule in ((threshold, _spans), (threshold, _surrounds), (threshold / 2, _surrounds)):
        found = _lobes_at(values <= cut, rule)
        if len(np.unique(found)) == 3:
            return found
        if best is None or (found > 0).sum() > (best > 0).sum():
            best = found
    return best


def _lobes_at(foreground: np.ndarray, is_background) -> np.ndarray:
    """§2.3's morphology and selection on one k-means foreground, with the background rule ``is_background``."""
    from scipy import ndimage
    from skimage.measure import label, regionprops

    out = np.zeros(foreground.shape, np.uint8)
    # square erosion and dilation as separable minimum / maximum filters (the same sets, several times faster)
    foreground = ndimage.minimum_filter(foreground, size=ERODE, mode="constant", cval=1)
    h, w = foreground.shape
    eroded = label(foreground, connectivity=1)
    for region in regionprops(eroded):
        if is_background(region.bbox, h, w):
            foreground[region.slice][region.image] = False
    foreground = ndimage.maximum_filter(foreground, size=DILATE, mode="constant", cval=0)
    objects = label(foreground, connectivity=1)
    best: dict[int, object] = {}
    for region in regionprops(objects):
        if region.area < MIN_AREA:
            continue
        side = SIDES[int(region.centroid[1] >= w / 2)]
        if side not in best or region.area > best[side].area:
            best[side] = region
    if len(best) == 1:
        (side, region), = best.items()
        r0, c0, r1, c1 = region.bbox
        if c0 < w / 2 < c1:  # both lungs in one object: split at the midline
            mid = w // 2 - c0
            left, right = region.image.copy(), region.image.copy()
            left[:, mid:], right[:, :mid] = False, False
            out[region.slice][ndimage.binary_fill_holes(left)] = SIDES[0]
            out[region.slice][ndimage.binary_fill_holes(right)] = SIDES[1]
            return out
    for side, region in best.items():
        # holes filled within the object's box: a hole never reaches beyond it
        out[region.slice][ndimage.binary_fill_holes(region.image)] = side
    return out


def _borders(bbox, h: int, w: int) -> int:
    r0, c0, r1, c1 = bbox
    return int(r0 == 0) + int(c0 == 0) + int(r1 == h) + int(c1 == w)


def _spans(bbox, h: int, w: int) -> bool:
    """Background: touches the border and spans >= 90 % of the width or height."""
    r0, c0, r1, c1 = bbox
    return _borders(bbox, h, w) > 0 and ((r1 - r0) >= BACKGROUND_SPAN * h or (c1 - c0) >= BACKGROUND_SPAN * w)


def _surrounds(bbox, h: int, w: int) -> bool:
    """Background: touches at least three image borders (air around the body; a lung in a tight crop touches two)."""
    return _borders(bbox, h, w) >= 3


def placement(mask: np.ndarray) -> Placement:
    """Where the bounding box of ``mask`` (one lobe) goes on the canvas (§2.3)."""
    rows, cols = np.nonzero(mask)
    box = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
    scale = min(1.0, CANVAS / max(s.stop - s.start for s in box))
    sh, sw = Placement(box, scale, (0, 0)).shape
    return Placement(box, scale, ((CANVAS - sh) // 2, (CANVAS - sw) // 2))


def to_canvas(image: np.ndarray, where: Placement, order: int = 1) -> np.ndarray:
    """The crop of ``image`` (a 512-px slice) at ``where``, scaled and centred on a black canvas (float32)."""
    from skimage.transform import resize

    crop = image[where.box].astype(np.float32)
    sh, sw = where.shape
    if crop.shape != (sh, sw):
        crop = resize(crop, (sh, sw), order=order, preserve_range=True, anti_aliasing=False).astype(np.float32)
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    oy, ox = where.offset
    canvas[oy:oy + sh, ox:ox + sw] = crop
    return canvas


def box_from_canvas(canvas: np.ndarray, where: Placement) -> np.ndarray:
    """Inverse of ``to_canvas`` for a map: the canvas region of the crop at the size of its box in the 512-px slice
    (float32; the caller places it at ``where.box``)."""
    from skimage.transform import resize

    oy, ox = where.offset
    sh, sw = where.shape
    region = canvas[oy:oy + sh, ox:ox + sw].astype(np.float32)
    h, w = (s.stop - s.start for s in where.box)
    if region.shape != (h, w):
        region = resize(region, (h, w), order=1, preserve_range=True, anti_aliasing=False).astype(np.float32)
    return region


def periphery_distance(lobe_canvas: np.ndarray) -> np.ndarray:
    """Manhattan distance of every lobe pixel to the nearest pixel outside the lobe (§2.4; the paper's BFS computes
    the same taxicab distance), 0 outside the lobe."""
    from scipy import ndimage

    return ndimage.distance_transform_cdt(lobe_canvas > 0, metric="taxicab").astype(np.float32)
