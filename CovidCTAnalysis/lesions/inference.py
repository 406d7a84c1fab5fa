"""Running lesions-unet on 2-D slices and 3-D volumes (slice by slice).

How a slice reaches the network: the lung region is cropped (3-D: the bounding box of the lung mask over all slices,
plus a margin of ``CROP_MARGIN`` of its size on every side, like the lung-centred crops of COVID-SemiSeg the model was
trained on), every axial slice of that box that contains lung is resized to 256 x 256, normalized
(``constants.normalize_hu``), segmented, and the class probabilities are resized back to the crop (bilinear) before
the arg-max. 3-D volumes are treated slice by slice because the labelled data are single slices.

Restriction to the lungs: true-HU input (volumes, and a single slice such as one DICOM image) is cropped to the lung
region, and the result is kept only inside it (the lung mask of each slice with holes filled and closed by
``GATE_CLOSING_MM``, so dense consolidation that a threshold-based lung mask leaves out at the lung border still
counts). A picture - one display-windowed slice, a figure crop - is segmented whole and not gated: lung masks of
such pictures are unreliable, the network was trained on exactly such crops without masks and learned to keep its
output inside the lungs; `scripts/evaluate_lesions.py` validates both choices on the fixed validation slices. Its
probabilities are averaged over its eight turned and mirrored views and decided by ``PICTURE_RULE``. A single
slice in true HU in which the lung finder found no lung is segmented whole the same way (``whole_image``).

On true-HU input three density rules follow the network, in this order: ground glass must be denser than normal lung
and extends a little into raised lung next to it (attenuation.py: the network, trained on generous radiologist masks,
places its margins loosely); consolidation flush with the chest wall, which the 2-D network mostly takes for chest
wall, comes from the lung segmentation's pleural fill when that is given (pleural.py); and every consolidation takes
the dense lung connected to it (consolidation.py).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..models.device import as_device, bf16_supported
from .attenuation import normal_lung_level, refine_ground_glass
from .consolidation import extend_consolidation
from .constants import INPUT_SIZE, normalize_hu
from .pleural import add_pleural_consolidation, pleural_on_grid

CROP_MARGIN = 0.08
GATE_CLOSING_MM = 10.0
GATE_PIXEL_MM = 1.2
BATCH = 8
# (quarter turns, left-right flip) of each test-time view; the identity comes first
TTA_VIEWS = {"none": ((0, False),), "flip": ((0, False), (0, True)), "rot4": tuple((k, False) for k in range(4)),
             "d8": tuple((k, flip) for flip in (False, True) for k in range(4))}
# A picture (a figure, a PNG/JPEG, a slice exported from a NIfTI) comes in any orientation: the COVID-SemiSeg JPEGs
# lie with the spine on the right, figures in papers with the spine at the bottom. Averaging the four quarter turns
# was chosen on 200 of COVID-SemiSeg's Inf-Net pseudo-labelled slices (never the 50 radiologist-labelled ones the
# cross-validation scores), against those pseudo-labels with lesions-unet 2.1.0: infection Dice 0.489 as stored /
# 0.492 turned spine-down without it; 0.505 / 0.505 with it. Their mirror images too (all eight views) and the
# decision below were then chosen by nested cross-validation on the 50 labelled slices with 3.0.0's fold models
# (scripts/cv_lesion_decision.py; model card, "The decision on a picture").
PICTURE_TTA = "d8"
#: (threshold, consolidation weight) of ``decide`` on a picture: lesion where P(GGO) + P(consolidation) > 0.3, and
#: consolidation where 2 P(consolidation) > P(GGO). On pictures the arg-max under-calls lesions, consolidation most
#: (nested CV: infection 0.730 -> 0.748, consolidation 0.359 -> 0.399). Volumes keep the arg-max: their density rules
#: (attenuation.py, pleural.py, consolidation.py) were tuned on it and decide there.
PICTURE_RULE = (0.3, 2.0)


def probabilities_2d(net, hu: np.ndarray, device="cpu", tta: str = "none", bf16: bool | None = None):
    """Class probabilities [N, C, H, W] (torch float32, on CPU) of a batch of same-size HU slices [N, H, W].

    The network runs under bfloat16 autocast where the hardware has it (``bf16`` None), which halves the CPU time;
    validation Dice is the same to the third decimal (model card). Same input, same machine: same output.
    ``tta``: test-time augmentation, the mean of the probabilities over views of the resized input turned back -
    "none"; "flip" (left-right); "rot4" (the four quarter turns); "d8" (those and their mirror images: a picture's
    orientation is unknown, ``PICTURE_TTA``).
    """
    import torch
    import torch.nn.functional as F

    if tta not in TTA_VIEWS:
        raise ValueError(f"unknown test-time augmentation {tta!r} (one of {', '.join(TTA_VIEWS)})")
    device = as_device(device)
    if bf16 is None:
        bf16 = bf16_supported(device)
    x = torch.from_numpy(np.ascontiguousarray(hu, dtype=np.float32))[:, None]
    h, w = x.shape[-2:]
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        x = normalize_hu(F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                                       antialias=True)).to(device)
        prob = torch.softmax(net(x).float(), dim=1)  # the identity view, the only one of volumes (hot path)
        for turn, flip in TTA_VIEWS[tta][1:]:
            view = torch.rot90(x.flip(-1) if flip else x, turn, dims=(-2, -1))
            p = torch.rot90(torch.softmax(net(view).float(), dim=1), -turn, dims=(-2, -1))
            prob += p.flip(-1) if flip else p
        if len(TTA_VIEWS[tta]) > 1:
            prob /= len(TTA_VIEWS[tta])
        prob = F.interpolate(prob.cpu(), size=(h, w), mode="bilinear", align_corners=False)
    return prob


def segment_slices(net, hu: np.ndarray, device="cpu", batch: int = BATCH, progress=None, tta: str = "none",
                   bf16: bool | None = None, rule: tuple[float, float] | None = None):
    """uint8 labels [N, H, W] (0 / 1 GGO / 2 consolidation) for HU slices [N, H, W], in batches.

    ``rule``: None, the most probable class; or (threshold, weight), ``decide``'s rule (pictures: ``PICTURE_RULE``).
    """
    labels = np.zeros(hu.shape, np.uint8)
    for start in range(0, hu.shape[0], batch):
        prob = probabilities_2d(net, hu[start:start + batch], device, tta, bf16).numpy()
        labels[start:start + batch] = _argmax_classes(prob) if rule is None else decide(prob, *rule)
        if progress is not None:
            progress(min(1.0, (start + batch) / hu.shape[0]), f"lesion slices {min(start + batch, hu.shape[0])}"
                     f"/{hu.shape[0]}")
    return labels


def _argmax_classes(prob: np.ndarray) -> np.ndarray:
    """uint8 arg-max over axis 1 of [N, C, H, W] probabilities, the first class winning ties (as torch.argmax).

    Element-wise comparisons instead of a reduction across the channel axis: the same labels, several times faster
    on full-resolution slices (torch's arg-max over a strided channel axis took ~7 s of a 512 x 512 x 300 CT).
    """
    best = prob[:, 0].copy()
    out = np.zeros(best.shape, np.uint8)
    for c in range(1, prob.shape[1]):
        better = prob[:, c] > best
        out[better] = c
        np.maximum(best, prob[:, c], out=best)
    return out


def decide(prob: np.ndarray, threshold: float | None, weight: float) -> np.ndarray:
    """uint8 labels of [N, 3, H, W] probabilities: lesion where P(GGO) + P(consolidation) > ``threshold`` (None:
    where the arg-max is a lesion class, the arg-max's extent), and there consolidation where ``weight`` x
    P(consolidation) > P(GGO), else GGO (``PICTURE_RULE``)."""
    if threshold is None:
        lesion = (prob[:, 1] > prob[:, 0]) | (prob[:, 2] > prob[:, 0])
    else:
        lesion = prob[:, 1] + prob[:, 2] > threshold
    return np.where(lesion, np.where(weight * prob[:, 2] > prob[:, 1], 2, 1), 0).astype(np.uint8)


def lung_box(lung: np.ndarray, margin: float = CROP_MARGIN) -> tuple[slice, slice, slice] | None:
    """(z, y, x) slices: lung-containing axial slices, in-plane bounding box grown by ``margin`` of its size."""
    zs = np.flatnonzero(lung.any(axis=(1, 2)))
    ys = np.flatnonzero(lung.any(axis=(0, 2)))
    xs = np.flatnonzero(lung.any(axis=(0, 1)))
    if zs.size == 0:
        return None
    box = [slice(int(zs[0]), int(zs[-1]) + 1)]
    for idx, n in ((ys, lung.shape[1]), (xs, lung.shape[2])):
        grow = int(round(margin * (idx[-1] - idx[0] + 1)))
        box.append(slice(max(0, int(idx[0]) - grow), min(n, int(idx[-1]) + 1 + grow)))
    return tuple(box)


def lung_gate(lung: np.ndarray, spacing_xy: tuple[float, float], closing_mm: float = GATE_CLOSING_MM) -> np.ndarray:
    """Per-slice lung region for gating: the lung mask closed in-plane by a disc of closing_mm, holes filled.

    The closing runs on a grid pooled to pixels of about GATE_PIXEL_MM (max-pooling: it can only grow the region
    by one pooled pixel) to keep it fast on 512 x 512 slices (0.7 mm pixels: pooled by 2; the closing at full
    resolution took ~13 s of a 512 x 512 x 300 CT); the lung mask itself is always inside the result.
    """
    from scipy import ndimage

    lung = np.asarray(lung, bool)
    f = max(1, int(round(GATE_PIXEL_MM / min(spacing_xy))))
    z, h, w = lung.shape
    hp, wp = -(-h // f), -(-w // f)
    pooled = np.zeros((z, hp * f, wp * f), bool)
    pooled[:, :h, :w] = lung
    pooled = pooled.reshape(z, hp, f, wp, f).any(axis=(2, 4))
    radius = [max(1, int(round(closing_mm / (sp * f)))) for sp in spacing_xy] + [0]
    closed = sitk.GetArrayFromImage(sitk.BinaryMorphologicalClosing(
        sitk.GetImageFromArray(pooled.astype(np.uint8)), radius, sitk.sitkBall, 1)) > 0
    closed = np.repeat(np.repeat(closed, f, axis=1), f, axis=2)[:, :h, :w]
    out = np.zeros(lung.shape, bool)
    for k in np.flatnonzero(lung.any(axis=(1, 2))):
        out[k] = ndimage.binary_fill_holes(closed[k] | lung[k])
    return out


def air_region(hu: np.ndarray) -> np.ndarray:
    """Rough lungs when no mask is given: air (< -400 HU) not connected to the slice border, per slice."""
    from scipy import ndimage

    out = np.zeros(hu.shape, bool)
    for z in range(hu.shape[0]):
        air = hu[z] < -400
        lab, n = ndimage.label(air)
        if n == 0:
            continue
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        inner = air & ~np.isin(lab, border)
        out[z] = ndimage.binary_opening(inner, iterations=2)
    return out


def segment_lesions(image: sitk.Image, lungs: sitk.Image | None = None, *, display_windowed: bool = False,
                    device="cpu", progress=None, net=None, picture_tta: str = PICTURE_TTA,
                    picture_rule: tuple[float, float] | None = PICTURE_RULE, attenuation_check: bool = True,
                    pleural: sitk.Image | None = None, consolidation_extent: bool = True,
                    whole_image: bool = False) -> sitk.Image:
    """Lesion label map (uint8: 0 none, 1 GGO, 2 consolidation) on the grid of ``image`` (canonical float32 HU).

    ``lungs``: the lung label map on the same grid (any label > 0 is lung), or None. A picture (one display-windowed
    slice: a figure crop, a PNG/JPEG) is segmented whole and not gated (module docstring). Everything else - volumes,
    and single slices in true HU such as one DICOM image - is cropped to the lung region, segmented slice by slice and
    kept inside the (closed, filled) lung mask; without a mask, air enclosed by the body stands in for it.
    ``display_windowed`` marks approximate HU from 8-bit display values.
    ``net``: an already loaded network (else the registered lesions-unet is loaded, sha256 verified).
    ``picture_tta``: the test-time augmentation of a picture (``probabilities_2d``; default the four quarter turns
    and their mirror images, ``PICTURE_TTA``); volumes and true-HU slices have a known orientation and run without
    one. ``picture_rule``: the decision on a picture (``decide``; default ``PICTURE_RULE``; None: the arg-max).
    ``attenuation_check``: on true-HU input, drop ground glass where the lung is not denser than normal lung and
    extend it into raised lung next to it (attenuation.py); display-windowed HU are too approximate for it (model
    card).
    ``pleural``: the dense pleural tissue the lung segmentation counted as lung (lungs.classic.ClassicLungs, any
    grid); on true-HU input its dense voxels inside ``lungs`` become consolidation (pleural.py).
    ``consolidation_extent``: on true-HU input, spread each consolidation over the dense lung connected to it
    (consolidation.py).
    ``whole_image``: segment a single slice whole and ungated, as a picture, whatever its HU (the pipeline asks for it
    when the lung finder found no lung in a 2-D image: pipeline/lungs.py).
    """
    dev = as_device(device)
    if net is None:
        from .network import load_network

        net = load_network(dev)
    hu = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    if hu.ndim == 2:
        hu = hu[None]
    out = np.zeros(hu.shape, np.uint8)
    lung = None
    if lungs is not None:
        lung = sitk.GetArrayViewFromImage(lungs) > 0
        lung = lung.reshape(hu.shape)
        if lung.shape != hu.shape:
            raise ValueError(f"lung mask shape {lung.shape} differs from the image's {hu.shape}")
    spacing_xy = image.GetSpacing()[:2]
    if hu.shape[0] == 1 and (display_windowed or whole_image):
        out[:] = segment_slices(net, hu, dev, progress=progress, tta=picture_tta, rule=picture_rule)
    else:
        region = lung if lung is not None and lung.any() else air_region(hu)
        box = lung_box(region)
        if box is not None:
            sub = segment_slices(net, hu[box], dev, progress=progress)
            gate = lung_gate(region[box], spacing_xy)
            sub = np.where(gate, sub, 0).astype(np.uint8)
            if not display_windowed:
                if attenuation_check:
                    refine_ground_glass(sub, hu[box], gate, spacing_xy, normal_lung_level(hu[box], sub, gate))
                if pleural is not None and lung is not None:
                    add_pleural_consolidation(sub, hu[box], lung[box], pleural_on_grid(pleural, image, box))
                if consolidation_extent:
                    extend_consolidation(sub, hu[box], gate, spacing_xy)
            out[box] = sub
    if progress is not None:
        progress(1.0, "lesions segmented")
    result = sitk.GetImageFromArray(out.reshape(sitk.GetArrayViewFromImage(image).shape))
    result.CopyInformation(image)
    return result
