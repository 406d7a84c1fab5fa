"""Inference of slice-resnet: one 2-D slice (``classify_image``) or every lung slice of a CT (``classify_volume``).

Volume path (Gozes et al., seed 003): lung ROI = the largest lung bounding box over the case (§2.1), every lung slice
classified (§2.2), the fine multi-scale Grad-CAM map (§2.3) of every positive slice placed back on the slice, the
maps stacked into a 3-D localization volume on the CT's canonical grid, the Corona score (§2.4, ``corona.py``).
A *lung slice* is one whose lung area is at least ``MIN_LUNG_SLICE_FRACTION`` of the largest slice's (so the apex
and base slivers, where the ROI shows mostly neck or abdomen, are not classified). Grad-CAM runs on positive slices
only: the localization volume is the paper's output "for cases classified as positive" and exactly what the Corona
score sums; negative and non-lung slices are 0.

Thin slices are classified at ``SLICE_SPACING_MM`` (2.5 mm) apart, not one by one: of a 1 mm CT every second lung
slice is classified and explained, of a 0.625 mm CT every fourth, and each classified slice lends its probability and
maps to the unclassified neighbours nearest to it (``sampled_slices``). Neighbours 1-2 mm apart show the same lesions;
this halves to quarters the work on thin-slice CTs (the paper's own cases were 1-5 mm) and keeps Eq. 1 a volume
over every lung slice. CTs with slices >= 2.5 mm apart are classified slice by slice as the paper does.

The heatmap is the model's raw localization over the lung ROI. The Corona score (``corona_score_cm3``) counts only
activation inside the lungs (the lung mask grown by ``LUNG_MARGIN_MM`` in-plane): §2.4 calls it "a volumetric measure
of the disease extent" in the lungs, and the shipped model also activates on the patient table and the body wall
(model card, failure modes), which is not disease. Eq. 1 over the whole ROI is reported as ``corona_score_roi_cm3``.

Explanations (``methods``): ``gradcam`` (the fused multi-scale map above, the default heatmap) and ``lrp`` (input
relevance of the COVID-19 logit through captum, ``explain.lrp``: z^B at the first convolution, alpha-beta (1, 0) at
the others, epsilon at the dense layer), computed on the (at most ``LRP_MAX_SLICES``) most probable positive slices
and shown as ``explain.relevance_heatmap`` (positive relevance, lightly smoothed, scaled to [0, 1] over the volume).

A 2-D slice is framed by the lung ROI of the lung mask the caller passes (the pipeline's, so the lungs are segmented
once), or, without lungs (a display-windowed figure, or no lung found), by the figure with its uniform borders trimmed.
A model trained with the lung focus (``inputs`` module doc; its registry entry says ``lung_focus``) sees only the
lungs and their margin, on volumes (the caller's lung mask) and on 2-D inputs (``image_lungs``) alike.

Speed: the slices are classified and their positive ones Grad-CAM-explained in the same pass
(``SliceResNet.explain``), on a copy of the network with its BatchNorms folded (``fused_network``).

Weights come from the registry (sha256 checked, ``models.weights.registered_network``) and are loaded once per
(registry, device).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import SimpleITK as sitk

from ...errors import InputError
from ...models.weights import cached_loader
from ..interface import Progress
from . import corona, inputs
from .model import build_for_state, gradcam_layers, input_size_of

MODEL_NAME = "slice-resnet"
MIN_LUNG_SLICE_FRACTION = 0.05
#: In-plane growth of the lung mask inside which the Corona score counts activation (see ``lung_region``).
LUNG_MARGIN_MM = 5.0
#: LRP (about twelve times Grad-CAM's cost per slice, 0.15 s against 0.012 s: model card) explains at most this many
#: positive slices of a volume, the most probable ones; the other positive slices have a Grad-CAM map only.
LRP_MAX_SLICES = 24
#: Lung slices closer than this are classified once per group (see the module doc).
SLICE_SPACING_MM = 2.5
BATCH = 16
LABELS = ("non-COVID", "COVID-19")
GRADCAM, LRP = "gradcam", "lrp"
METHODS = (GRADCAM, LRP)


@dataclass(frozen=True)
class SliceResNet:
    """A loaded slice-resnet: the network (eval mode) on its device, the registry version, and ``fast``: the same
    network prepared for inference (``fused_network``), which classifies and computes Grad-CAM (LRP reads ``net``,
    whose BatchNorms its own canonization folds)."""

    net: Any
    device: Any
    version: str
    fast: Any
    lung_focus: bool = False  # trained on lung-focused squares (``inputs`` module doc), as its registry entry says
    input_size: int = inputs.INPUT_SIZE  # the network's input side, the registry entry's input "size"

    @property
    def square_size(self) -> int:
        """Side of the unit squares this network is given (``inputs.cache_size`` of its input: 256 for 224)."""
        return inputs.cache_size(self.input_size)

    @property
    def batch(self) -> int:
        """Slices explained together: ``BATCH`` at 224 px, fewer for a larger input, so that the activations LRP
        and Grad-CAM keep stay about the same size (16 at 224 px, 8 at 320)."""
        return max(1, int(BATCH * (inputs.INPUT_SIZE / self.input_size) ** 2 + 0.5))

    def tensor(self, squares: np.ndarray):
        """Unit squares (N, S, S) as this network's standardized input on its device (N, 1, I, I)."""
        return inputs.to_tensor(squares, self.input_size).to(self.device)

    def probabilities(self, squares: np.ndarray, batch: int = 32) -> np.ndarray:
        """P(COVID-19) of (N, S, S) unit squares (S: ``square_size``)."""
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(squares), batch):
                x = self.tensor(squares[i:i + batch])
                out.append(torch.sigmoid(self.fast(x)[:, 0]).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def explain(self, squares: np.ndarray, batch: int | None = None, min_probability: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N,), fused Grad-CAM maps (N, I, I) in [0, 1], I the input size) of unit squares (§2.3),
        from one pass.

        min_probability: explain only the squares at least this probable (the others' maps are 0 and, in a batch
        with none, nothing is differentiated): a volume's positive slices are classified and explained together.
        """
        import torch

        from ...explain import multiscale_gradcam

        probs, maps = [], []
        layers = gradcam_layers(self.fast)
        select = None if min_probability is None else (lambda logits: torch.sigmoid(logits[:, 0]) >= min_probability)
        batch = batch or self.batch
        for i in range(0, len(squares), batch):
            x = self.tensor(squares[i:i + batch])
            r = multiscale_gradcam(self.fast, x, layers, select=select)
            probs.append(torch.sigmoid(r.logits[:, 0]).cpu().numpy())
            maps.append(r.fused[:, 0].cpu().numpy())
        if not probs:
            return np.zeros(0, np.float32), np.zeros((0, self.input_size, self.input_size), np.float32)
        return np.concatenate(probs), np.concatenate(maps)

    @cached_property
    def _lrp(self):
        from ...explain import LRPExplainer

        low, high = (0.0 - inputs.MEAN) / inputs.STD, (1.0 - inputs.MEAN) / inputs.STD  # the unit range, standardized
        return LRPExplainer(self.net, bounds=(low, high), alpha=1.0, beta=0.0)

    def relevance(self, squares: np.ndarray, batch: int | None = None) -> np.ndarray:
        """LRP relevance of the COVID-19 logit (N, I, I), signed, of unit squares."""
        batch = batch or self.batch
        out = [self._lrp(self.tensor(squares[i:i + batch]))[:, 0].cpu().numpy() for i in range(0, len(squares), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.input_size, self.input_size), np.float32)

    def maps(self, squares: np.ndarray, methods) -> dict[str, np.ndarray]:
        """{method: (N, I, I) map in [0, 1]} of unit squares; LRP scaled over all of them (one volume)."""
        from ...explain import relevance_heatmap

        unknown = set(methods) - set(METHODS)
        if unknown:
            raise ValueError(f"slice-resnet explains with {METHODS}, not {sorted(unknown)}")
        out = {}
        if GRADCAM in methods:
            out[GRADCAM] = self.explain(squares)[1]
        if LRP in methods:
            out[LRP] = relevance_heatmap(self.relevance(squares))
        return out


def _load(device: str, registry: str | None) -> SliceResNet:
    from ...models.registry import load_registry
    from ...models.weights import registered_network

    reg = load_registry(registry)
    net = registered_network(MODEL_NAME, build_for_state, device, reg)
    entry = reg.get(MODEL_NAME)
    # The size the weights were trained at (a user's --weights file may differ from the registry's), else the entry's.
    size = input_size_of(net) or int(entry.input.get("size", [inputs.INPUT_SIZE])[0])
    return SliceResNet(net=net, device=device, version=entry.version, fast=fused_network(net),
                       lung_focus=bool(entry.input.get("lung_focus", False)), input_size=size)


#: The registered slice-resnet on ``device`` (cached); ``registry``: a registry.json (path or loaded Registry).
load_model = cached_loader(_load)


def fused_network(net):
    """``net`` with its BatchNorms folded for inference where the backbone offers it (EfficientNet-Lite), else
    ``net`` itself."""
    return net.fused_for_inference() if hasattr(net, "fused_for_inference") else net


def _label(p: float) -> str:
    return LABELS[int(p >= corona.CASE_THRESHOLD)]


def map_to_slice(fine: np.ndarray, box: tuple[slice, slice], shape: tuple[int, int]) -> np.ndarray:
    """Undo ``inputs.square_from_hu`` for a map: a square of any side -> the crop box of a (y, x) slice (0 outside)."""
    rows, cols = box
    h, w = rows.stop - rows.start, cols.stop - cols.start
    side = max(h, w)
    square = inputs.resize(np.clip(fine, 0, 1), side) if side != fine.shape[0] else fine
    y0, x0 = (side - h) // 2, (side - w) // 2
    out = np.zeros(shape, dtype=np.float32)
    out[rows, cols] = square[y0:y0 + h, x0:x0 + w]
    return out


#: lungs-unet components smaller than this share of a figure are dropped from its lung focus (specks, text).
MIN_FIGURE_LUNG_FRACTION = 0.01


def image_lungs(ct, lungs: sitk.Image | None = None, device: Any = "cpu") -> np.ndarray | None:
    """The lung mask (y, x) that frames and focuses a 2-D input of a lung-focused model, or None when none is found.

    On real HU, the caller's ``lungs`` when they hold lung (the pipeline's, segmented once). On a display-windowed
    figure, and when the caller has none, the ``lungs-unet`` network's lung probability >= 0.5, less components
    under ``MIN_FIGURE_LUNG_FRACTION`` of the image: the training figures are framed with it (``train.load_square``).
    Not the full ``segment_lungs_unet``: on figures its 3-D post-processing (largest components, right/left split
    at the body's midline) drops one lung of a tightly cropped figure in about one in ten (seen on COVID-CT), which
    a classifier's framing must not do; a lung focus needs no right/left labels.
    """
    if lungs is not None and not ct.display_windowed:
        mask = sitk.GetArrayFromImage(lungs)[0] > 0
        if mask.any():
            return mask
    import torch
    from scipy import ndimage as ndi

    from ...lungs.unet import from_network_grid, network_probabilities
    from ...models.device import as_device

    dev = as_device(device)
    hu = sitk.GetArrayFromImage(ct.image)
    prob, _ = network_probabilities(_lung_network(str(dev)), hu[:1], np.array([0]), dev, bf16=False)
    prob = from_network_grid(torch.from_numpy(prob)[:, None], *hu.shape[1:])[0, 0].numpy()
    components, _ = ndi.label(prob >= 0.5)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    mask = sizes[components] >= MIN_FIGURE_LUNG_FRACTION * prob.size
    return mask if mask.any() else None


def _lung_network(device: str):
    from ...models.user_weights import cache_key

    return _cached_lung_network(device, cache_key())


@functools.lru_cache(maxsize=2)
def _cached_lung_network(device: str, overrides: str):  # a user's lungs-unet weights are another network
    from ...lungs.unet import load_network

    return load_network(device)


def image_square(ct, lung_focus: bool, lungs: sitk.Image | None = None, device: Any = "cpu",
                 size: int = inputs.CACHE_SIZE) -> tuple[np.ndarray, tuple[slice, slice], str]:
    """(``size`` px unit square, crop box, framing) of a 2-D input: with a lung-focused model, the lung ROI of
    ``image_lungs`` with the lung focus; otherwise the lung ROI of ``lungs`` on real HU when it holds lung, else the
    figure with its uniform borders trimmed."""
    hu = sitk.GetArrayFromImage(ct.image)[0]
    if lung_focus:
        mask = image_lungs(ct, lungs, device)
        if mask is not None:
            box = inputs.lung_roi(mask)
            return inputs.square_from_hu(hu, box, mask, size), box, "lung ROI, lungs in focus"
    elif lungs is not None and not ct.display_windowed:
        box = inputs.lung_roi(sitk.GetArrayFromImage(lungs))
        if box is not None:
            return inputs.square_from_hu(hu, box, size=size), box, "lung ROI"
    box = inputs.content_box(inputs.hu_to_unit(hu))
    return inputs.square_from_hu(hu, box, size=size), box, "whole figure, uniform borders trimmed"


def _check_2d(ct) -> np.ndarray:
    if not ct.is_2d:
        raise InputError(ct.source, "is a volume; slice-resnet classifies it slice by slice with classify_volume")
    return sitk.GetArrayFromImage(ct.image)[0]


def classify_image(ct, device: Any = "cpu", *, model: SliceResNet | None = None, lungs: sitk.Image | None = None
                   ) -> dict:
    """P(COVID-19) of one 2-D slice (a ``CTVolume`` with ``is_2d``; ``lungs``: its lung label map), §2.2.

    Returns {"probability", "label", "framing", "model_version"}.
    """
    _check_2d(ct)
    model = model or load_model(device)
    square, _, framing = image_square(ct, model.lung_focus, lungs, model.device, model.square_size)
    p = float(model.probabilities(square[None])[0])
    return {"probability": p, "label": _label(p), "framing": framing, "model_version": model.version}


def explain_image(ct, device: Any = "cpu", *, model: SliceResNet | None = None, lungs: sitk.Image | None = None,
                  methods=(GRADCAM,)) -> tuple[dict, dict[str, sitk.Image]]:
    """``classify_image`` plus {method: map} on the slice's canonical grid (float32 in [0, 1]) for each of
    ``methods`` (``METHODS``; Grad-CAM is the fused multi-scale map of §2.3)."""
    hu = _check_2d(ct)
    model = model or load_model(device)
    square, box, framing = image_square(ct, model.lung_focus, lungs, model.device, model.square_size)
    square = square[None]
    p = float(model.probabilities(square)[0])
    images = {}
    for method, maps in model.maps(square, methods).items():
        images[method] = sitk.GetImageFromArray(map_to_slice(maps[0], box, hu.shape)[None])
        images[method].CopyInformation(ct.image)
    return {"probability": p, "label": _label(p), "framing": framing, "model_version": model.version}, images


def volume_lung_slices(ct_image: sitk.Image, lungs: sitk.Image, model_name: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[slice, slice]]:
    """(HU, lung labels, lung slice indices, lung ROI box) of a canonical CT and its lung label map: what a slice
    network's volume path starts from (§2.1 lung ROI). A lung mask without lung slices is the caller's InputError."""
    hu = sitk.GetArrayFromImage(ct_image)
    labels = sitk.GetArrayFromImage(lungs)
    if labels.shape != hu.shape:
        raise ValueError(f"lung labels {labels.shape} and CT {hu.shape} are not on the same grid")
    zs, box = lung_frame(labels)
    if zs.size == 0:
        raise InputError(None, f"the lung mask is empty; {model_name} needs lung slices to classify")
    return hu, labels, zs, box


def lung_frame(lung_labels: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice] | None]:
    """(lung slice indices, the lung ROI box over those slices) of a lung label map (z, y, x): how a CT's slices are
    framed (§2.1), at inference and for the semi-synthetic training slices. The box is None without lung slices."""
    zs = lung_slices(lung_labels)
    return zs, (inputs.lung_roi(np.asarray(lung_labels)[zs]) if zs.size else None)


def lung_slices(lung_labels: np.ndarray, min_fraction: float = MIN_LUNG_SLICE_FRACTION) -> np.ndarray:
    """Indices z of slices whose lung area is >= ``min_fraction`` of the largest slice's lung area."""
    area = (np.asarray(lung_labels) > 0).reshape(lung_labels.shape[0], -1).sum(axis=1)
    if area.max(initial=0) == 0:
        return np.zeros(0, dtype=int)
    return np.nonzero(area >= max(1, min_fraction * area.max()))[0]


def _most_probable(indices: np.ndarray, probabilities: np.ndarray, limit: int) -> np.ndarray:
    """The ``limit`` entries of ``indices`` with the highest ``probabilities[index]``, in ascending index order."""
    if len(indices) <= limit:
        return indices
    return np.sort(indices[np.argsort(-probabilities[indices], kind="stable")[:limit]])


def sampled_slices(count: int, dz_mm: float, spacing_mm: float = SLICE_SPACING_MM) -> tuple[np.ndarray, np.ndarray]:
    """(picked, owner) for ``count`` consecutive lung slices ``dz_mm`` apart: the indices classified (every
    ``spacing_mm // dz_mm``-th, at least every one) and, for each of the ``count`` slices, the position in ``picked``
    of the classified slice nearest to it."""
    step = max(1, int(spacing_mm // dz_mm)) if dz_mm > 0 else 1
    picked = np.arange(0, count, step)
    owner = np.minimum(np.rint(np.arange(count) / step).astype(int), len(picked) - 1)
    return picked, owner


def lung_region(lung_labels: np.ndarray, spacing, margin_mm: float = LUNG_MARGIN_MM) -> np.ndarray:
    """Lung mask grown in-plane by ``margin_mm`` (bool, z y x): where the Corona score counts activation.

    The margin keeps dense consolidation at the lung border that a classical lung mask may leave out. The growth is
    the binary dilation by the in-plane ellipse of half-axes ``margin_mm`` (in voxels, rounded), computed row by row
    of the ellipse (``_dilate_by_rows``: the same voxels as scipy's dilation, several times faster on a CT).
    """
    mask = np.asarray(lung_labels) > 0
    ry = max(1, int(round(margin_mm / spacing[1])))
    rx = max(1, int(round(margin_mm / spacing[0])))
    yy, xx = np.ogrid[-ry:ry + 1, -rx:rx + 1]
    disk = ((yy / ry) ** 2 + (xx / rx) ** 2) <= 1.0
    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return out
    # the dilation reaches at most (ry, rx) beyond the lungs' box: dilate that box only
    zs = np.nonzero(mask.any(axis=(1, 2)))[0]
    ys, xs = np.nonzero(mask.any(axis=0))
    box = (slice(zs[0], zs[-1] + 1), slice(max(0, ys.min() - ry), ys.max() + ry + 1),
           slice(max(0, xs.min() - rx), xs.max() + rx + 1))
    out[box] = _dilate_by_rows(np.ascontiguousarray(mask[box]), disk)
    return out


def _dilate_by_rows(mask: np.ndarray, disk: np.ndarray) -> np.ndarray:
    """Binary dilation of each (y, x) plane of ``mask`` by ``disk``, a symmetric structure whose every row is one
    centred run of True (an ellipse): the union over rows dy of the mask shifted by dy and dilated along x by that
    row's run, a 1-D maximum filter whose cost does not grow with the run."""
    from scipy import ndimage as ndi

    ry = disk.shape[0] // 2
    out = np.zeros(mask.shape, bool)
    along_x: dict[int, np.ndarray] = {}
    for dy in range(-ry, ry + 1):
        half = int(disk[dy + ry].sum()) // 2
        if half not in along_x:
            along_x[half] = ndi.maximum_filter1d(mask.view(np.uint8), 2 * half + 1, axis=-1, mode="constant",
                                                 cval=0).view(bool)
        row = along_x[half]
        if dy >= 0:
            out[:, dy:] |= row[:, :row.shape[1] - dy]
        else:
            out[:, :dy] |= row[:, -dy:]
    return out


def classify_volume(ct_image: sitk.Image, lungs: sitk.Image, device: Any = "cpu", progress: Progress | None = None,
                    *, model: SliceResNet | None = None) -> tuple[dict, sitk.Image]:
    """``explain_volume`` with Grad-CAM only: (result, fused Grad-CAM heatmap)."""
    result, maps = explain_volume(ct_image, lungs, device, progress, model=model)
    return result, maps[GRADCAM]


def explain_volume(ct_image: sitk.Image, lungs: sitk.Image, device: Any = "cpu", progress: Progress | None = None,
                   *, model: SliceResNet | None = None, methods=(GRADCAM,)) -> tuple[dict, dict[str, sitk.Image]]:
    """Case-level slice-resnet (§2.1-§2.4) on a canonical CT and its lung label map (same grid).

    Returns (result, maps): result = {"probability", "label", "corona_score_cm3" (Eq. 1 counted inside the lungs
    grown by 5 mm), "corona_score_roi_cm3" (Eq. 1 over the whole lung ROI, as the paper writes it), "positive_slices",
    "lung_slices", "classified_slices", "slice_probabilities" (canonical z -> P), "roi_xy" ([x0, x1, y0, y1] voxels),
    "activation_threshold",
    "model_version"}; maps = {method: map per positive slice, float32 in [0, 1], on ``ct_image``'s grid} for each of
    ``methods`` (``METHODS``, which must include Grad-CAM: the Corona score sums it).
    """
    if GRADCAM not in methods:
        raise ValueError("explain_volume needs Grad-CAM among its methods (the Corona score sums it)")
    report = progress or (lambda fraction, message: None)
    hu, labels, zs, box = volume_lung_slices(ct_image, lungs, MODEL_NAME)
    model = model or load_model(device)

    picked, owner = sampled_slices(len(zs), float(ct_image.GetSpacing()[2]))
    squares = np.stack([inputs.square_from_hu(hu[z], box, labels[z] if model.lung_focus else None,
                                              model.square_size) for z in zs[picked]])
    report(0.1, f"{len(zs)} lung slices ({len(picked)} classified), ROI {box[1].stop - box[1].start} x "
                f"{box[0].stop - box[0].start} voxels")
    picked_probs = np.zeros(len(picked), dtype=np.float32)
    fine_gradcam = np.zeros((len(picked), model.input_size, model.input_size), dtype=np.float32)
    step = model.batch
    for i in range(0, len(picked), step):  # classified and, where positive, Grad-CAM-explained in one pass
        picked_probs[i:i + step], fine_gradcam[i:i + step] = model.explain(
            squares[i:i + step], min_probability=corona.SLICE_THRESHOLD)
        report(0.1 + 0.6 * min(1.0, (i + step) / len(picked)),
               f"classified and explained {min(i + step, len(picked))}/{len(picked)} slices")
    probs = picked_probs[owner]

    positive = probs >= corona.SLICE_THRESHOLD
    pos_picked = np.nonzero(picked_probs >= corona.SLICE_THRESHOLD)[0]
    volumes = {}
    for k, method in enumerate(methods):
        volumes[method] = heat = np.zeros(hu.shape, dtype=np.float32)
        if method == GRADCAM:
            chosen, fine = pos_picked, fine_gradcam[pos_picked]
        else:  # all chosen slices at once: LRP scales over them
            chosen = _most_probable(pos_picked, picked_probs, LRP_MAX_SLICES)
            fine = model.maps(squares[chosen], (method,))[method]
        for j, m in zip(chosen, fine):
            placed = map_to_slice(m, box, hu.shape[1:])
            for z in zs[owner == j]:
                heat[z] = placed
        report(0.7 + 0.3 * (k + 1) / len(methods), f"{method} on {len(chosen)} positive slices")
    heat = volumes[GRADCAM]

    positive_z = np.zeros(hu.shape[0], dtype=bool)
    positive_z[zs[positive]] = True
    voxel_mm3 = float(np.prod(ct_image.GetSpacing()))
    p_case = corona.case_probability(probs)
    grown = lung_region(labels[positive_z], ct_image.GetSpacing())  # only the positive slices count (Eq. 1)
    result = {
        "probability": p_case,
        "label": _label(p_case),
        "corona_score_cm3": corona.corona_score_cm3(heat[positive_z] * grown, np.ones(len(grown), bool), voxel_mm3),
        "corona_score_roi_cm3": corona.corona_score_cm3(heat, positive_z, voxel_mm3),
        "positive_slices": int(positive.sum()),
        "lung_slices": int(len(zs)),
        "classified_slices": int(len(picked)),
        "slice_probabilities": {int(z): round(float(p), 4) for z, p in zip(zs, probs)},
        "roi_xy": [int(box[1].start), int(box[1].stop), int(box[0].start), int(box[0].stop)],
        "activation_threshold": corona.ACTIVATION_THRESHOLD,
        "model_version": model.version,
    }
    maps = {}
    for method, volume in volumes.items():
        maps[method] = sitk.GetImageFromArray(volume)
        maps[method].CopyInformation(ct_image)
    report(1.0, f"P(COVID-19) {p_case:.3f}, {int(positive.sum())}/{len(zs)} positive slices, "
                f"Corona score {result['corona_score_cm3']:.1f} cm3")
    return result, maps
