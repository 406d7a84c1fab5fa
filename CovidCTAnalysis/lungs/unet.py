"""`lungs-unet`: a 2-D U-Net (MONAI BasicUNet) segmenting the lungs slice by slice, right/left assigned afterwards.

Seed 002 (DeCoVNet) §II-D: "we trained a simple 2D UNet ... To obtain the ground-truth lung masks, we segmented the
lung regions using an unsupervised learning method [27], removed the failure cases manually"; the 3-D mask is
"obtained by testing the trained 2D UNet frame-by-frame without using any temporal information". Here the
unsupervised method is `lungs-classic` (classic.py) and the training is scripts/train_lungs_unet.py.

Choices (the paper is vague or our data differ; each is stated here and in the model card):

- Network: MONAI BasicUNet, 2-D, features ``FEATURES`` (the paper says only "a simple 2D UNet"), one output logit:
  lung versus background. Right and left are not learned: a binary net may be trained with left-right flips, and the
  side is decided in patient coordinates after the network (below), the same way `lungs-classic` does it.
- Intensity: §II-F1 clips HU to a window ("e.g. -1200-600 HU") and scales to 8 bit. We clip to ``HU_WINDOW``
  = [-1200, 600] HU and scale to [0, 1] (seed 003 §2.1 uses [-1000, 0]; the DeCoVNet window keeps bone brighter than
  soft tissue, which helps to find the chest wall against a dense consolidation). Display-windowed stacks (8-bit
  values mapped to approximate HU with the lung window by io) saturate at about 150 HU; training simulates that.
- Geometry: §II-F1 resamples every slice to a fixed in-plane size ("e.g. 368x368"); we pad the slice to a square
  (with air, centred) and resize it to ``INPUT_SIZE`` (192, for speed on a 2-core CPU), then resize the
  probabilities back (bilinear) before thresholding at 0.5.
- Slices: thin-slice CTs are sampled along z at about ``Z_STEP_MM`` (whole steps of the slice spacing) and the
  probabilities are interpolated linearly in between (speed; the paper runs every frame).
- Post-processing (not in the paper): on the network grid, pure-air blobs inside the predicted lung that are walled
  by soft tissue (the stomach bubble under a thin diaphragm, which the network takes for lung on imlab id002) are
  removed by `airspace.walled_gas`, the test `lungs-classic` uses; components less than ``MIN_AERATED_FRACTION``
  aerated are dropped; then the largest 3-D connected component is kept. When it holds both lungs (both sides of
  the body's midline) it is split by `split.split_right_left` (the watershed `lungs-classic` uses at the anterior
  junction), else the second largest component is kept too (when not tiny). Label 1 = the lung at lower x =
  patient's right on the canonical LPS grid (docs/CONTRACTS.md).

Memory: the CT is read through a view; the network runs on batches of ``BATCH`` slices; only the network-grid
probabilities (a few tens of MB) are held for all slices; the output is written batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import InputError, LungsNotFoundError
from ..labels import LEFT_LUNG, RIGHT_LUNG
from ..models.device import as_device, bf16_supported
from ..models.weights import registered_network, save_half
from . import airspace, pleura, split
from .morphology import FACES, IN_PLANE, bounding_box

Progress = Callable[[float, str], None]

MODEL_NAME = "lungs-unet"
#: HU window of seed 002 §II-F1 (-1200..600 HU), scaled to [0, 1].
HU_WINDOW = (-1200.0, 600.0)
#: Value used to pad a slice to a square (air; 0 after normalization).
PAD_HU = HU_WINDOW[0]
#: In-plane size of the network input (seed 002 §II-F1 uses e.g. 368).
INPUT_SIZE = 192
#: MONAI BasicUNet feature widths (2-D); small enough for a 512 x 512 x 300 CT in seconds on two CPU cores.
FEATURES = (8, 16, 32, 64, 128, 8)
#: Slices per network batch (bounds memory).
BATCH = 16
#: Thin-slice CTs are segmented on slices about this far apart (mm), probabilities interpolated between them.
Z_STEP_MM = 2.0
#: The second largest component is kept only when at least this fraction of the largest.
MIN_SECOND_FRACTION = 0.02
#: A component is lung only when at least this fraction of it is aerated (below the air/tissue threshold): the network
#: must not call a region without air lung (an image of soft tissue only); a lung with a pleural consolidation keeps
#: most of its air.
MIN_AERATED_FRACTION = 0.15
#: Body threshold (HU) used to find the left-right midline of the body.
BODY_HU = -500.0


# ----------------------------------------------------------------------------------------------- network
def build_network():
    """An untrained BasicUNet: 1 input channel (normalized HU), 1 output logit (lung)."""
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=FEATURES, dropout=0.0)


def save_weights(net, path: Path) -> None:
    """Save the trained network as a float16 state dict (``models.weights.save_half``)."""
    save_half(net, path)


def load_network(device="cpu", registry=None, weights: Path | None = None):
    """The registered lungs-unet (sha256 verified by the registry), or an explicit weights file."""
    return registered_network(MODEL_NAME, lambda state: build_network(), device, registry, weights)


def normalize_hu(hu):
    """Network input in [0, 1]: HU clipped to ``HU_WINDOW`` and scaled (numpy array or torch tensor)."""
    lo, hi = HU_WINDOW
    return (hu.clip(lo, hi) - lo) * (1.0 / (hi - lo))


# ----------------------------------------------------------------------------------------------- geometry
def square_geometry(height: int, width: int) -> tuple[int, int, int]:
    """(side, top, left): the square a height x width slice is centred in."""
    side = max(height, width)
    return side, (side - height) // 2, (side - width) // 2


def to_network_grid(x, size: int = INPUT_SIZE, pad_value: float = PAD_HU):
    """Torch [N, C, H, W] -> [N, C, size, size]: padded to a centred square with ``pad_value``, resized (bilinear)."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    side, top, left = square_geometry(h, w)
    if side != h or side != w:
        x = F.pad(x, (left, side - w - left, top, side - h - top), value=pad_value)
    if side == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)


def from_network_grid(p, height: int, width: int):
    """Inverse of `to_network_grid` for maps (bilinear resize to the square, then the crop)."""
    import torch.nn.functional as F

    side, top, left = square_geometry(height, width)
    if p.shape[-1] != side:
        p = F.interpolate(p, size=(side, side), mode="bilinear", align_corners=False)
    return p[..., top: top + height, left: left + width]


def z_samples(depth: int, spacing_z: float, step_mm: float = Z_STEP_MM) -> np.ndarray:
    """Indices of the slices the network sees: every k-th (k = whole steps of about ``step_mm``) and the last."""
    k = max(1, int(np.floor(step_mm / max(spacing_z, 1e-6) + 1e-6))) if step_mm > 0 else 1
    return np.unique(np.r_[np.arange(0, depth, k), depth - 1])


# ----------------------------------------------------------------------------------------------- inference


def network_probabilities(net, hu: np.ndarray, index: np.ndarray, device, batch: int = BATCH,
                          bf16: bool | None = None, progress: Progress | None = None):
    """Lung probabilities and resized HU on the network grid, both float32 [len(index), S, S], for slices
    ``hu[index]`` (hu: z, y, x array or view), in batches of ``batch`` slices."""
    import torch

    if bf16 is None:
        bf16 = bf16_supported(device)
    n = len(index)
    prob = np.empty((n, INPUT_SIZE, INPUT_SIZE), np.float32)
    small = np.empty((n, INPUT_SIZE, INPUT_SIZE), np.float32)
    with torch.inference_mode():
        for start in range(0, n, batch):
            sel = index[start:start + batch]
            x = torch.from_numpy(np.ascontiguousarray(hu[sel], dtype=np.float32))[:, None]
            x = to_network_grid(x)
            small[start:start + len(sel)] = x[:, 0].numpy()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = net(normalize_hu(x).to(device))
            prob[start:start + len(sel)] = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
            if progress is not None:
                progress(min(1.0, (start + len(sel)) / n), f"lung slices {start + len(sel)}/{n}")
    return prob, small


def body_midline_x(hu_small: np.ndarray, lungs: np.ndarray) -> float:
    """Left-right centre (x index) of the body (> ``BODY_HU``) over the slices holding lung."""
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    body = hu_small[zs] > BODY_HU if zs.size else hu_small > BODY_HU
    if not body.any():
        return float(np.nonzero(lungs)[2].mean())
    counts = body.sum(axis=(0, 1)).astype(np.float64)
    return float((counts * np.arange(counts.size)).sum() / counts.sum())


def keep_lungs(mask: np.ndarray, hu_small: np.ndarray, spacing, display_windowed: bool = False,
               columns: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 right (1) / left (2) labels from a binary lung mask on the network grid (module docstring).

    Walled pure-air blobs (gut gas) are removed first (`airspace.walled_gas`; on display-windowed data the air and
    tissue levels are measured as `lungs-classic` does), then components less than ``MIN_AERATED_FRACTION`` aerated.
    The largest 3-D component is kept; when it lies on both sides of the body's midline it holds both lungs and is
    split by `split.split_right_left`; otherwise the second largest is kept too (unless tiny). ``spacing``: (x, y, z)
    mm of the network grid. ``columns``: the first and last x of the network grid that hold image (not padding), to
    tell a body cut by the image's side edges (`split.body_cut_sides`); None: not checked.
    """
    structure = IN_PLANE if mask.shape[0] == 1 else FACES
    if not mask.any():
        return np.zeros(mask.shape, np.uint8)
    try:
        levels = airspace.intensity_levels(hu_small, display_windowed)
    except InputError:  # no contrast between air and tissue: no lung
        return np.zeros(mask.shape, np.uint8)
    mask = mask & ~airspace.walled_gas(hu_small, mask, spacing, levels)
    lab, n = ndi.label(mask, structure=structure)
    if n == 0:
        return np.zeros(mask.shape, np.uint8)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    aerated = np.bincount(lab[mask & (hu_small < levels.threshold)], minlength=n + 1)
    sizes[aerated < MIN_AERATED_FRACTION * sizes] = 0
    sizes[0] = 0
    if not sizes.any():
        return np.zeros(mask.shape, np.uint8)
    order = np.argsort(sizes)[::-1]
    keep = lab == order[0]
    midline = body_midline_x(hu_small, keep)
    right, left = split._side_fractions(keep, midline)
    joined = min(right, left) >= split.JOINED_SIDE_FRACTION
    if not joined and n > 1 and sizes[order[1]] >= MIN_SECOND_FRACTION * sizes[order[0]]:
        keep |= lab == order[1]
    # the split runs on the kept lungs' bounding box (plus one voxel): the watershed is the slow step
    box = bounding_box(keep, margin=(1, 1, 1))
    out = np.zeros(mask.shape, np.uint8)
    cut = (False, False)
    if columns is not None:
        inside = slice(columns[0], columns[1] + 1)
        cut = split.body_cut_sides(hu_small[:, :, inside] > BODY_HU, keep[:, :, inside], spacing)
    out[box] = split.split_right_left(keep[box], hu_small[box], spacing, midline - box[2].start, body_cut=cut)
    return out


def pleural_fill(labels: np.ndarray, hu_small: np.ndarray, spacing, display_windowed: bool = False) -> np.ndarray:
    """Labels with the two pleural fills of `lungs-classic` (`pleura.fill_pleural`) added, on the network grid.

    The network misses small dense lesions flush with the costal pleura (demo CT: 0.89-0.91 of lesion voxels inside
    without this step); the classic's bounded fills (convex-hull "bites" facing away from the midline, and tissue
    between aerated lung and rib inside the lung's envelope) add them back. Uses the same levels and bone threshold
    as `lungs-classic`.
    """
    from .classic import BONE_HU, DISPLAY_BONE_MARGIN, _body

    if not labels.any():
        return labels
    levels = airspace.intensity_levels(hu_small, display_windowed)
    top = float(hu_small.max())
    bone_level = BONE_HU if not display_windowed else top - DISPLAY_BONE_MARGIN * (top - levels.air)
    outside = airspace.outside_air(hu_small, hu_small < levels.threshold, spacing, levels)
    body = _body(outside, labels > 0)
    midline = float(np.nonzero(body)[2].mean())
    return pleura.fill_pleural(labels, hu_small, spacing, levels.threshold, bone_level, body, midline)


def _side_maps(prob: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[Z, 2, S, S] float32: the probability restricted to the kept right / left lung (and one pixel around it)."""
    grown = ndi.grey_dilation(labels, size=(1, 3, 3))
    out = np.zeros((labels.shape[0], 2) + labels.shape[1:], np.float32)
    below = prob < 0.5
    for k, value in enumerate((RIGHT_LUNG, LEFT_LUNG)):
        region = (labels == value) | ((grown == value) & below)
        out[:, k] = np.where(region, np.where(below & (labels == value), 1.0, prob), 0.0)
    return out


def _check(image: sitk.Image) -> None:
    from .classic import _check as check_classic

    check_classic(image)


def segment_lungs_unet(image: sitk.Image, *, display_windowed: bool = False, device="cpu",
                       progress: Progress | None = None, net=None, batch: int = BATCH,
                       z_step_mm: float = Z_STEP_MM, fill_pleura: bool = True) -> sitk.Image:
    """Right (1) and left (2) lung labels of a canonical CT (float HU, identity direction, LPS) by lungs-unet.

    image: float32 HU on the canonical grid (x toward the patient's left); one z slice for a 2-D input.
    display_windowed: the HU are approximate (display values mapped through an assumed window); the network was
        trained on such stacks as well; only the gut-gas test measures the air and tissue levels instead of
        assuming -1000 and 0 HU.
    device: "cpu", "cuda", "auto" or a torch.device. net: an already loaded network (else the registered lungs-unet
        is loaded, sha256 verified). batch: slices per network batch (memory bound; the result does not depend on
        it). z_step_mm: spacing of the slices the network sees (0: every slice).
    Returns a uint8 label image on the same grid: 0 background, 1 right lung (low x), 2 left lung.
    Raises LungsNotFoundError("no lungs found in the image ...") when the network finds no lung.
    """
    import torch

    _check(image)
    report = progress or (lambda fraction, message: None)
    dev = as_device(device)
    if net is None:
        net = load_network(dev)
    if image.GetPixelID() != sitk.sitkFloat32:
        image = sitk.Cast(image, sitk.sitkFloat32)
    hu = sitk.GetArrayViewFromImage(image)
    depth, height, width = hu.shape
    sx, sy, sz = image.GetSpacing()
    index = z_samples(depth, sz, z_step_mm)

    prob, small = network_probabilities(net, hu, index, dev, batch,
                                        progress=lambda f, m: report(0.7 * f, m))
    side, _, left = square_geometry(height, width)
    scale = side / INPUT_SIZE
    step = float(np.median(np.diff(index))) * sz if len(index) > 1 else sz
    # the network grid's columns that hold image, one in from each edge (the resize blends the edge with padding)
    columns = (int(np.ceil(left / scale)) + 1, int(np.floor((left + width) / scale)) - 2)
    labels = keep_lungs(prob >= 0.5, small, (sx * scale, sy * scale, step), display_windowed, columns)
    if not labels.any():
        raise LungsNotFoundError(None, "no lungs found in the image (the network found no lung)")
    if fill_pleura:
        labels = pleural_fill(labels, small, (sx * scale, sy * scale, step), display_windowed)
    report(0.8, "largest components kept, right and left separated")
    maps = _side_maps(prob, labels)
    del prob, small, labels

    # back to the input grid, batch by batch: linear interpolation between sampled slices, bilinear in-plane
    out = np.zeros((depth, height, width), np.uint8)
    pos = np.interp(np.arange(depth), index, np.arange(len(index)))
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(index) - 1)
    w = (pos - lo).astype(np.float32)[:, None, None, None]
    for start in range(0, depth, batch):
        zs = slice(start, min(start + batch, depth))
        q = (1.0 - w[zs]) * maps[lo[zs]] + w[zs] * maps[hi[zs]]
        q = from_network_grid(torch.from_numpy(np.ascontiguousarray(q)), height, width).numpy()
        lung = (q[:, 0] + q[:, 1]) > 0.5
        out[zs] = np.where(lung, np.where(q[:, 0] >= q[:, 1], RIGHT_LUNG, LEFT_LUNG), 0)
    result = sitk.GetImageFromArray(out)
    result.CopyInformation(image)
    report(1.0, "lungs segmented")
    return result
