"""Model inputs of slice-resnet (Gozes et al., seed 003): ONE preprocessing path for training and inference.

Everything starts from canonical HU (``CovidCTAnalysis.io.load_ct``; 8-bit figures are mapped there by io with
HU = -1350 + v / 255 * 1500) and goes through the functions below, so training, ``classify_image`` and
``classify_volume`` see identical inputs.

Intensity. The paper windows its inputs to [-1000, 0] HU (§2.1). We use the lung window W 1500 / L -600,
i.e. [-1350, 150] HU -> [0, 1], instead: it is exactly the window io assumes for 8-bit figures, so a figure maps back
to its own display values without clipping (a [-1000, 0] window would clip 8-bit values below 43 and above 213),
and for real HU it is the standard lung window. The unit image is then standardized with ``MEAN`` and ``STD``.

Framing (the lung ROI). For volumes the paper crops every slice to the largest bounding box of the lung mask over
the case (§2.1); we do the same (``lung_roi``) with a margin of ``ROI_MARGIN`` of the box size on each side so the
crop resembles the chest figures the model is trained on. For 2-D figures (the COVID-CT training set) we do NOT
segment lungs: the figure authors framed them on the chest or lungs already, and the classical lung segmentation
found lungs in only 14 of a random sample of 24 figures (arrows, text, unknown windows). A figure is used whole,
trimmed of uniform borders (``content_box``). In both cases the crop is padded to a square with air (unit 0, so
the aspect ratio is kept) and resized to ``CACHE_SIZE`` (256) then to ``INPUT_SIZE`` (224), the input size of
§2.2; a network trained at another input size (the shipped one: 320, ``train.py``) gets squares of
``cache_size`` of it (368) and sees its own size. Training caches the squares and samples network-size views from
them with random affine transforms around the identity (``augment.py``), so the identity view equals the inference
input.

Lung focus (``lungs`` given to ``square_from_hu``; a model trained so says ``lung_focus`` in its registry entry).
Not in the paper: everything outside the lungs grown by ``FOCUS_MARGIN`` px of the 256 px square (about 3 % of the
lung ROI's side, some 8-10 mm on an adult chest) and with their holes filled is set to air (unit 0). A network that
cannot see the body wall, the table, the figure's frame or its annotations can neither learn them as shortcuts nor
point its explanations at them (model card of slice-resnet: the unfocused model's Grad-CAM fell on them). The
margin and the hole filling keep dense consolidation at the pleura and inside the lung, which a lung mask may leave
out. The frame is the lung ROI of the same mask (``lung_roi``), for a figure as for a volume; a figure's lungs come
from ``lungs-unet`` (``infer.image_lungs``): the classical segmentation found lungs in 14 of 24 figures, the U-Net
in all but the soft-tissue-windowed ones. A slice with no lung found is framed and shown whole, as before.
"""

from __future__ import annotations

import numpy as np

#: Intensity window in HU mapped to [0, 1] (W 1500, L -600; see module doc).
HU_LOW = -1350.0
HU_HIGH = 150.0
#: Standardization of the unit image (measured on the cached COVID-CT training squares: mean 0.41, std 0.38).
MEAN = 0.41
STD = 0.38
#: Side of the cached square (training samples views from it) and of the network input (§2.2).
CACHE_SIZE = 256
INPUT_SIZE = 224
#: Margin added on each side of the lung bounding box, as a fraction of the box's width / height.
ROI_MARGIN = 0.12
#: A border row/column whose 2nd-98th percentile spread is below this (unit intensity) is blank and trimmed.
BLANK_SPREAD = 0.06
#: Lung focus: the lungs grown by this many pixels of the CACHE_SIZE square are kept, the rest set to air.
FOCUS_MARGIN = 8


def hu_to_unit(hu: np.ndarray) -> np.ndarray:
    """HU (or approximate HU) -> [0, 1] through the lung window [HU_LOW, HU_HIGH], float32."""
    return np.clip((np.asarray(hu, dtype=np.float32) - HU_LOW) / (HU_HIGH - HU_LOW), 0.0, 1.0)


def content_box(unit: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns left after trimming blank (uniform) borders of a figure; the whole image if all blank.

    Rows and columns are trimmed in turn until nothing changes, so a uniform frame line along one side (which makes
    every crossing row non-uniform) is removed first and the padding beyond it next.
    """
    def busy_span(lines: np.ndarray) -> tuple[int, int] | None:
        lo, hi = np.percentile(lines, [2, 98], axis=1)
        busy = np.nonzero(hi - lo >= BLANK_SPREAD)[0]
        return (int(busy[0]), int(busy[-1]) + 1) if busy.size else None

    r0, r1, c0, c1 = 0, unit.shape[0], 0, unit.shape[1]
    for _ in range(8):
        before = (r0, r1, c0, c1)
        cols = busy_span(unit[r0:r1, c0:c1].T)
        if cols is None:
            return slice(0, unit.shape[0]), slice(0, unit.shape[1])
        c0, c1 = c0 + cols[0], c0 + cols[1]
        rows = busy_span(unit[r0:r1, c0:c1])
        if rows is None:
            return slice(0, unit.shape[0]), slice(0, unit.shape[1])
        r0, r1 = r0 + rows[0], r0 + rows[1]
        if (r0, r1, c0, c1) == before:
            break
    return slice(r0, r1), slice(c0, c1)


def lung_roi(lung_mask: np.ndarray, margin: float = ROI_MARGIN) -> tuple[slice, slice] | None:
    """(rows, columns) of the largest lung bounding box over all slices, with a margin, clipped to the image.

    lung_mask: (z, y, x) or (y, x) array, nonzero = lung. None when the mask is empty.
    """
    mask = np.asarray(lung_mask) > 0
    if mask.ndim == 3:
        mask = mask.any(axis=0)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    h, w = mask.shape
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = int(round(margin * (y1 - y0))), int(round(margin * (x1 - x0)))
    return slice(max(0, y0 - my), min(h, y1 + my)), slice(max(0, x0 - mx), min(w, x1 + mx))


def square_pad(unit: np.ndarray) -> np.ndarray:
    """Pad a 2-D unit image to a square with air (0), centred, keeping its aspect ratio."""
    h, w = unit.shape
    side = max(h, w)
    out = np.zeros((side, side), dtype=np.float32)
    y0, x0 = (side - h) // 2, (side - w) // 2
    out[y0:y0 + h, x0:x0 + w] = unit
    return out


def resize(unit: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased bilinear resize of a square 2-D array to size x size (torch, float32)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))[None, None]
    if t.shape[-1] == size and t.shape[-2] == size:
        return t[0, 0].numpy().copy()
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].clamp_(0.0, 1.0).numpy()


def cache_size(input_size: int = INPUT_SIZE) -> int:
    """Side of the cached square for a network input of ``input_size`` px: 8/7 of it, rounded to 16 (224 -> 256)."""
    return int(round(input_size * 8 / 7 / 16)) * 16


def square_from_hu(hu: np.ndarray, box: tuple[slice, slice] | None = None, lungs: np.ndarray | None = None,
                   size: int = CACHE_SIZE) -> np.ndarray:
    """One axial HU slice -> the ``size`` px square unit image: window, crop (``box`` or trimmed borders), pad,
    resize; with ``lungs`` (the slice's lung mask, nonzero = lung), only the lungs' focus region is kept
    (``lung_focus``)."""
    unit = hu_to_unit(hu)
    rows, cols = box if box is not None else content_box(unit)
    square = resize(square_pad(unit[rows, cols]), size)
    if lungs is None:
        return square
    lung_square = resize(square_pad((np.asarray(lungs)[rows, cols] > 0).astype(np.float32)), size) > 0.5
    return square * lung_focus(lung_square)


def to_cache(unit: np.ndarray) -> np.ndarray:
    """A unit image in [0, 1] as the training caches store it (uint8; ``/ 255`` gives it back)."""
    return np.rint(np.asarray(unit) * 255.0).astype(np.uint8)


def lung_focus(lung_square: np.ndarray, margin: int = FOCUS_MARGIN) -> np.ndarray:
    """The kept region of a lung-focused square (float32 0/1): the lungs grown by ``margin`` px, holes filled."""
    from scipy import ndimage as ndi

    yy, xx = np.ogrid[-margin:margin + 1, -margin:margin + 1]
    grown = ndi.binary_dilation(np.asarray(lung_square, bool), structure=yy ** 2 + xx ** 2 <= margin ** 2)
    return ndi.binary_fill_holes(grown).astype(np.float32)


def to_tensor(squares: np.ndarray, size: int = INPUT_SIZE):
    """(N, S, S) unit squares -> standardized network input (N, 1, ``size``, ``size``)."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(squares, dtype=np.float32))
    if t.ndim == 2:
        t = t[None]
    t = F.interpolate(t[:, None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return standardize(t)


def standardize(t):
    """Unit intensities -> network scale (one place for the constants)."""
    return (t - MEAN) / STD
