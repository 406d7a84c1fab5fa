"""Inputs of iCovid (Díaz Berenguer et al. 2020, seed 000, §4.1): a CT slice and its binarised lesion mask, framed
by the lungs, on the grid the networks see.

§4.1 clips HU to [-1100, 100] for lung segmentation and to [-1000, 400] for "representation learning, CT
classification and explainability", and resamples volumes "with variable in-plane resolution and 3 mm slice
increment". The project's lung and lesion stages (``lungs-unet`` / ``lungs-classic``, ``lesions-unet``) keep the
normalisation they were trained with; what this package adds:

- the classifier window ``WINDOW`` [-1000, 400] HU -> [0, 1]. A display-windowed figure (COVID-CT) carries the
  project's assumed lung window (io: [-1350, 150]), so on figures the top of the window is empty: approximate HU
  above 150 do not exist there;
- the frame: the lung region of interest (``slice_resnet.inputs.lung_roi``, the lung box plus 12 %; for a volume the
  largest box over its lung slices), padded square with air and resized to ``SIZE`` px, the framing of every 2-D
  network of the project (a figure with no lung found: its uniform borders trimmed, training only);
- the side information: the lesion label map binarised (any lesion, §4.1 and §6 "the binarized form"), framed the
  same way and area-averaged to ``SIDE`` px, the grid of the side branch (``branches.SideBranch``);
- volumes: one slice every ``SLICE_INCREMENT_MM`` (3 mm) among the lung slices.

The paper's input is the lung-masked CT; the frame here keeps the tissue around the lungs (a departure listed in the
model card): lung masks of figures and of dense consolidation at the pleura miss lesions, and a masked-out lesion
cannot be seen by the global branch.
"""

from __future__ import annotations

import numpy as np

from ..slice_resnet import inputs as framing

#: §4.1 classifier window (HU).
WINDOW = (-1000.0, 400.0)
#: Side of the framed slice the global branch sees (the paper's slices are 512 px; see the model card for speed).
SIZE = 160
#: Side of the lesion mask the side branch sees: SIZE / 4 (its two max poolings then meet the global branch's
#: stride-16 feature map).
SIDE = SIZE // 4
#: §4.1: 3 mm slice increment for volumes.
SLICE_INCREMENT_MM = 3.0
#: How lesions-unet decides on a picture (a display-windowed figure) for the side information: the four quarter turns
#: and the arg-max, as the shipped weights were trained and measured with (model card). lesions-unet's own picture
#: rule since 3.1.0 (eight views, a lower lesion threshold) draws larger masks, which this model has not seen.
PICTURE_LESIONS = {"picture_tta": "rot4", "picture_rule": None}
#: Standardisation of the unit image for the ImageNet trunk (measured on the COVID-CT frames: mean 0.30, sd 0.32).
MEAN, STD = 0.30, 0.32


def to_unit(hu: np.ndarray) -> np.ndarray:
    """HU -> [0, 1] through the classifier window (float32)."""
    low, high = WINDOW
    return np.clip((np.asarray(hu, np.float32) - low) / (high - low), 0.0, 1.0)


def _square(stack: np.ndarray, size: int) -> np.ndarray:
    """(K, h, w) -> (K, size, size): padded square with zeros (air / no lesion), antialiased bilinear resize."""
    import torch
    import torch.nn.functional as F

    k, h, w = stack.shape
    side = max(h, w)
    square = np.zeros((k, side, side), np.float32)
    y0, x0 = (side - h) // 2, (side - w) // 2
    square[:, y0:y0 + h, x0:x0 + w] = stack
    t = torch.from_numpy(square)[:, None]
    if side != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return t[:, 0].clamp_(0.0, 1.0).numpy()


def frames(hu: np.ndarray, lesions: np.ndarray, box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """(unit images (K, SIZE, SIZE), lesion fractions (K, SIDE, SIDE)) of K axial slices ``hu`` and lesion labels
    ``lesions`` (K, y, x) cropped to ``box``."""
    rows, cols = box
    unit = _square(to_unit(np.asarray(hu)[:, rows, cols]), SIZE)
    side = _square((np.asarray(lesions)[:, rows, cols] > 0).astype(np.float32), SIZE)
    k = len(side)
    side = side.reshape(k, SIDE, SIZE // SIDE, SIDE, SIZE // SIDE).mean(axis=(2, 4))
    return unit.astype(np.float32), side.astype(np.float32)


def figure_box(hu: np.ndarray, lungs: np.ndarray | None) -> tuple[tuple[slice, slice], bool]:
    """(crop box, lungs found) of one 2-D slice: its lung ROI, else the figure with uniform borders trimmed."""
    box = framing.lung_roi(lungs) if lungs is not None else None
    if box is not None:
        return box, True
    return framing.content_box(framing.hu_to_unit(hu)), False


def unframe(maps: np.ndarray, box: tuple[slice, slice], shape: tuple[int, int]) -> np.ndarray:
    """Undo ``frames`` for maps (K, SIZE, SIZE): (K, y, x) slices of ``shape``, 0 outside ``box``."""
    import torch
    import torch.nn.functional as F

    rows, cols = box
    h, w = rows.stop - rows.start, cols.stop - cols.start
    side = max(h, w)
    t = torch.from_numpy(np.ascontiguousarray(maps, np.float32))[:, None]
    t = F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False)
    square = t[:, 0].numpy()
    y0, x0 = (side - h) // 2, (side - w) // 2
    out = np.zeros((len(maps), *shape), np.float32)
    out[:, rows, cols] = square[:, y0:y0 + h, x0:x0 + w]
    return out


def network_input(unit):
    """Unit images (K, SIZE, SIZE) (numpy or torch) -> standardised trunk input (K, 1, SIZE, SIZE)."""
    import torch

    t = torch.as_tensor(np.asarray(unit, np.float32))
    return ((t - MEAN) / STD)[:, None]


def input_bounds() -> tuple[float, float]:
    """The range of ``network_input`` values (the z^B rule's bounds)."""
    return (0.0 - MEAN) / STD, (1.0 - MEAN) / STD
