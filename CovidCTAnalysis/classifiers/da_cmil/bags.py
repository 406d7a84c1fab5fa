"""Bags of DA-CMIL (Chikontwe et al., seed 004, §4.1-§4.2): an axial slice becomes a bag of lung patches, a CT volume
a bag of its lung slices.

The paper cuts 128 x 128 patches "that mainly showed >= 30 % of lung tissue" out of its 512 x 512 slices, all
cropped to the lung region, and resizes them to 256 x 256. Here, one slice:

1. is framed by its lung region of interest (``slice_resnet.inputs.lung_roi``: the lung box plus 12 % margin; for a
   volume the largest box over its lung slices, the framing every 2-D network of the project uses), windowed to the
   lung window, padded to a square with air and resized to ``FRAME`` (320) px. A lung ROI spans 300-350 mm on an
   adult, so a frame pixel is about 1 mm, near the 0.6-0.8 mm of a 512 x 512 slice;
2. is cut into a 3 x 3 grid of ``PATCH`` (128) px windows ``STRIDE`` (96) px apart (32 px overlap), the lung mask
   framed the same way;
3. keeps the windows of which at least ``MIN_LUNG_FRACTION`` (30 %) is lung. A slice whose lung never fills 30 % of a
   window keeps its one window with the most lung; a slice with no lung has no bag (the caller's error).

The network sees each patch at ``PATCH`` px, not resized to twice its size as in the paper: four times less compute on
a CPU (``TrainConfig.instance_size`` 256 is the paper's input for a GPU). Intensities are the lung window of the
project's other slice networks (``slice_resnet.inputs``: one place for the window, the air padding and the
resizing), standardized there too.

A volume (§4.1, the "CT slices" set: a patient's slices are the instances, each resized from 512 to 256 px) is the bag
of its lung slices (``volume_frames``): the slices holding at least 5 % of the largest slice's lung area, one every
``SLICE_SPACING_MM``, each framed as in step 1 by the volume's lung ROI (the largest lung box over those slices).
The network sees each frame at ``SLICE_SIZE`` (256) px, the paper's slice size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..slice_resnet import inputs as framing

FRAME = 320
PATCH = 128
STRIDE = 96
MIN_LUNG_FRACTION = 0.30
#: A volume's slice instances are seen at this size (§4.1: CT slices resized from 512 to 256 px).
SLICE_SIZE = 256
#: Lung slices of a volume are sampled this far apart (mm); the slices between take the nearest sampled one's maps.
SLICE_SPACING_MM = 5.0
#: Top-left corners of the windows along one side: 0, 96, 192 (the last ends at FRAME).
OFFSETS = tuple(range(0, FRAME - PATCH + 1, STRIDE))


@dataclass
class SliceBag:
    """One slice's bag: ``patches`` (N, PATCH, PATCH) unit intensities, their top-left ``corners`` (N, 2) in the
    frame, the ``lung_fraction`` of each, the crop ``box`` (rows, columns) of the slice that the frame shows, and
    the framed ``lung`` mask (FRAME, FRAME) when the bag was cut by its lungs."""

    patches: np.ndarray
    corners: np.ndarray
    lung_fraction: np.ndarray
    box: tuple[slice, slice]
    lung: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.patches)


def frames(hu: np.ndarray, lungs: np.ndarray, box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """(unit images, lung masks), each (K, FRAME, FRAME), of K axial slices ``hu`` / ``lungs`` (K, y, x) cropped to
    ``box``, padded square with air and resized together (one resampling call for a volume's slices)."""
    unit = _square_stack(framing.hu_to_unit(np.asarray(hu)[:, box[0], box[1]]))
    lung = _square_stack((np.asarray(lungs)[:, box[0], box[1]] > 0).astype(np.float32)) > 0.5
    return unit, lung


@dataclass
class VolumeFrames:
    """The framed lung slices of a volume: ``unit`` and ``lung`` (K, FRAME, FRAME) of the K sampled slices, their
    indices ``zs[picked]`` into the volume, ``owner`` (for each lung slice ``zs``, the position in ``picked`` of the
    sampled slice nearest to it) and the lung ROI ``box`` every frame shows."""

    unit: np.ndarray
    lung: np.ndarray
    zs: np.ndarray
    picked: np.ndarray
    owner: np.ndarray
    box: tuple[slice, slice]

    @property
    def sampled_z(self) -> np.ndarray:
        return self.zs[self.picked]


def volume_frames(hu: np.ndarray, lungs: np.ndarray, dz_mm: float,
                  spacing_mm: float = SLICE_SPACING_MM) -> VolumeFrames | None:
    """The framed lung slices of a volume ``hu`` / ``lungs`` (z, y, x) whose slices are ``dz_mm`` apart; None when
    the lung mask has no lung slice. Training (synthetic volumes, cohorts) frames volumes here; inference, which
    has its lung slices and box from ``slice_resnet.infer.volume_lung_slices``, through ``frame_lung_slices``."""
    from ..slice_resnet.infer import lung_slices

    zs = lung_slices(lungs)
    if zs.size == 0:
        return None
    return frame_lung_slices(hu, lungs, zs, framing.lung_roi(np.asarray(lungs)[zs]), dz_mm, spacing_mm)


def frame_lung_slices(hu: np.ndarray, lungs: np.ndarray, zs: np.ndarray, box: tuple[slice, slice], dz_mm: float,
                      spacing_mm: float = SLICE_SPACING_MM) -> VolumeFrames:
    """``VolumeFrames`` of the lung slices ``zs`` of a volume, framed by the lung ROI ``box``, one every
    ``spacing_mm``."""
    from ..slice_resnet.infer import sampled_slices

    picked, owner = sampled_slices(len(zs), dz_mm, spacing_mm)
    unit, lung = frames(np.asarray(hu)[zs[picked]], np.asarray(lungs)[zs[picked]], box)
    return VolumeFrames(unit, lung, zs, picked, owner, box)


def upsample_to_frame(maps: np.ndarray) -> np.ndarray:
    """Whole-frame maps (N, h, w) -> (N, FRAME, FRAME), bilinear: the spatial maps of the slice instances."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(maps, np.float32))[:, None]
    return F.interpolate(t, size=(FRAME, FRAME), mode="bilinear", align_corners=False)[:, 0].numpy()


def _square_stack(crops: np.ndarray) -> np.ndarray:
    """(K, h, w) -> (K, FRAME, FRAME): ``slice_resnet.inputs.square_pad`` and ``resize`` (antialiased bilinear)
    applied to every slice at once."""
    import torch
    import torch.nn.functional as F

    k, h, w = crops.shape
    side = max(h, w)
    square = np.zeros((k, side, side), np.float32)
    y0, x0 = (side - h) // 2, (side - w) // 2
    square[:, y0:y0 + h, x0:x0 + w] = crops
    if side == FRAME:
        return square
    t = F.interpolate(torch.from_numpy(square)[:, None], size=(FRAME, FRAME), mode="bilinear", align_corners=False,
                      antialias=True)
    return t[:, 0].clamp_(0.0, 1.0).numpy()


def corners() -> np.ndarray:
    """(9, 2) top-left corners (row, column) of the patch grid."""
    return np.array([(y, x) for y in OFFSETS for x in OFFSETS], dtype=int)


def framed_bag(unit: np.ndarray, lung: np.ndarray, box: tuple[slice, slice],
               min_fraction: float = MIN_LUNG_FRACTION) -> SliceBag:
    """The bag of one framed slice (``frames``): the windows holding at least ``min_fraction`` lung, else the one
    window with the most lung; empty when the frame holds no lung."""
    grid = corners()
    fractions = np.array([lung[y:y + PATCH, x:x + PATCH].mean() for y, x in grid])
    keep = np.nonzero(fractions >= min_fraction)[0]
    if keep.size == 0 and fractions.max() > 0:
        keep = np.array([int(np.argmax(fractions))])
    patches = np.stack([unit[y:y + PATCH, x:x + PATCH] for y, x in grid[keep]]) if keep.size else \
        np.zeros((0, PATCH, PATCH), np.float32)
    return SliceBag(patches.astype(np.float32), grid[keep], fractions[keep], box, lung)


def slice_bag(hu: np.ndarray, lungs: np.ndarray, box: tuple[slice, slice] | None = None,
              min_fraction: float = MIN_LUNG_FRACTION) -> SliceBag:
    """The bag of one slice (``hu`` and ``lungs`` (y, x); ``box``: the crop, default this slice's lung ROI).

    Empty (0 patches) when the slice holds no lung inside the frame.
    """
    if box is None:
        box = framing.lung_roi(lungs)
        if box is None:
            return SliceBag(np.zeros((0, PATCH, PATCH), np.float32), np.zeros((0, 2), int), np.zeros(0), _whole(hu))
    unit, lung = frames(np.asarray(hu)[None], np.asarray(lungs)[None], box)
    return framed_bag(unit[0], lung[0], box, min_fraction)


def unframe(maps: np.ndarray, box: tuple[slice, slice], shape: tuple[int, int]) -> np.ndarray:
    """Undo ``frames`` for maps (K, FRAME, FRAME) in [0, 1]: (K, y, x) slices of ``shape``, 0 outside ``box``."""
    import torch
    import torch.nn.functional as F

    rows, cols = box
    h, w = rows.stop - rows.start, cols.stop - cols.start
    side = max(h, w)
    t = torch.from_numpy(np.ascontiguousarray(maps, np.float32))[:, None]
    if side != FRAME:
        t = F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    square = t[:, 0].clamp_(0.0, 1.0).numpy()
    y0, x0 = (side - h) // 2, (side - w) // 2
    out = np.zeros((len(maps), *shape), np.float32)
    out[:, rows, cols] = square[:, y0:y0 + h, x0:x0 + w]
    return out


def figure_bag(hu: np.ndarray) -> SliceBag:
    """A figure with no lung found, for training and cross-validation only: the whole figure (uniform borders
    trimmed) framed and cut into all nine windows, so that no training figure is silently dropped. Inference
    refuses such a slice instead (``infer``)."""
    box = framing.content_box(framing.hu_to_unit(hu))
    unit = framing.resize(framing.square_pad(framing.hu_to_unit(hu)[box]), FRAME)
    grid = corners()
    patches = np.stack([unit[y:y + PATCH, x:x + PATCH] for y, x in grid]).astype(np.float32)
    return SliceBag(patches, grid, np.full(len(grid), np.nan), box)


def _whole(image: np.ndarray) -> tuple[slice, slice]:
    return slice(0, image.shape[0]), slice(0, image.shape[1])


def place(maps: np.ndarray, corners_: np.ndarray) -> np.ndarray:
    """Patch maps (N, h, w), any h = w, upsampled bilinearly to ``PATCH`` and put on their windows of the
    ``FRAME`` square; where windows overlap, their mean (a sum would draw the overlaps as brighter bands)."""
    out = np.zeros((FRAME, FRAME), np.float32)
    if len(maps) == 0:
        return out
    import torch
    import torch.nn.functional as F

    up = F.interpolate(torch.as_tensor(np.asarray(maps, np.float32))[:, None], size=(PATCH, PATCH),
                       mode="bilinear", align_corners=False)[:, 0].numpy()
    cover = np.zeros((FRAME, FRAME), np.float32)
    for m, (y, x) in zip(up, corners_):
        out[y:y + PATCH, x:x + PATCH] += m
        cover[y:y + PATCH, x:x + PATCH] += 1
    return np.divide(out, cover, out=out, where=cover > 0)
