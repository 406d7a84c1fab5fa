"""Inference of iCovid (seed 000) on one 2-D slice or a CT volume, with its LRP-CMP heatmap (§4.3).

A 2-D slice is a case of one slice: its lungs (the pipeline's on real HU, ``lungs-unet``'s on a display-windowed
figure, ``slice_resnet.infer.image_lungs``) frame it, its lesions (the pipeline's ``lesions-unet`` map, or segmented
here when the caller has none) give the side information. A slice without lung is refused with the input's one-line
error.

A volume (§4.1, Fig. 4) is a case of its lung slices taken every ``inputs.SLICE_INCREMENT_MM`` (3 mm): each slice's
SPP descriptor is computed and NetVLAD aggregates them all into one decision, as the paper aggregates a CT. The
classifier was trained on single figures (sets of one slice; no labelled 3-D cohort exists here, docs/DATA.md): the
model card lists this as a failure mode.

Heatmap (``heatmap-cvae-netvlad.nrrd``): LRP-CMP (``explain``) of the COVID-19 log-odds; every classified slice gets
the relevance of its gated feature map, and the ``REFINED_SLICES`` slices with the most positive relevance are
explained down to the pixels (CPU time); slices between classified ones take the nearest one's map. Positive
relevance, Gaussian-smoothed (Fig. 8), scaled to [0, 1] over the case and kept inside the lungs grown by about 1 cm
(Fig. 8 shows the relevance on the segmented lungs); ``details.relevance_in_lungs`` is the share of the positive
relevance that lay inside the lung mask before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from ...errors import InputError
from ...models.weights import cached_loader
from ..interface import Progress
from . import inputs

MODEL_NAME = "cvae-netvlad"
THRESHOLD = 0.5
LABELS = ("non-COVID", "COVID-19")
LRP = "lrp"
REFINED_SLICES = 2
#: Smoothing of the positive relevance on the frame, in frame pixels (Fig. 8: "Gaussian filtering").
SMOOTH_PX = 2.0
#: The map is kept inside the lungs grown by this many frame pixels (about 1 cm on a 300-mm lung ROI at SIZE 160).
LUNG_MARGIN_PX = 5
BATCH = 32


@dataclass
class CVAENetVLADModel:
    """A loaded classifier (``classifier.FullNetwork``) and its LRP-CMP explainer (built on first use)."""

    net: Any
    device: str
    version: str
    _explainer: Any = None

    @property
    def explainer(self):
        if self._explainer is None:
            from .explain import LRPCMP

            self._explainer = LRPCMP(self.net)
        return self._explainer

    def case(self, units: np.ndarray, lesions: np.ndarray, refine: int | None):
        """(P(COVID-19), Explanation) of one case: unit frames (S, SIZE, SIZE), lesion fractions (S, SIDE, SIDE)."""
        import torch

        x = inputs.network_input(units)
        m = torch.from_numpy(np.asarray(lesions, np.float32))[:, None]
        explanation = self.explainer(x, m, refine)
        return float(torch.sigmoid(torch.tensor(explanation.log_odds))), explanation


def _load(device: str, registry: str | None) -> CVAENetVLADModel:
    from ...models.registry import load_registry
    from ...models.weights import registered_network
    from .classifier import CVAENetVLAD, FullNetwork

    reg = load_registry(registry)
    entry = reg.get(MODEL_NAME)
    net = registered_network(MODEL_NAME, lambda state: FullNetwork(CVAENetVLAD(side="classifier.encoder.side.layers.0"
                                                                               ".weight" in state)), device, reg)
    return CVAENetVLADModel(net=net, device=device, version=entry.version)


#: The registered cvae-netvlad on ``device`` (cached); ``registry``: a registry.json (path or loaded Registry).
load_model = cached_loader(_load)


def _label(p: float) -> str:
    return LABELS[int(p >= THRESHOLD)]


def _heatmap(explanation, lung_frames: np.ndarray) -> tuple[np.ndarray, float]:
    """(maps (S, SIZE, SIZE) in [0, 1] kept near the lungs, share of positive relevance inside the lungs)."""
    from ...explain.heatmap import relevance_heatmap
    from ..slice_resnet.inputs import lung_focus

    relevance = explanation.maps.numpy()
    positive = np.maximum(relevance, 0)
    inside = float(positive[lung_frames].sum() / positive.sum()) if positive.sum() > 0 else 0.0
    maps = relevance_heatmap(relevance, SMOOTH_PX)
    for k, lung in enumerate(lung_frames):
        maps[k] *= lung_focus(lung, LUNG_MARGIN_PX)
    peak = float(maps.max(initial=0.0))
    return (maps / peak if peak > 0 else maps), inside


def _lung_frames(lungs: np.ndarray, box) -> np.ndarray:
    """Lung masks (K, y, x) framed like the slices (``inputs.frames``): (K, SIZE, SIZE) bool."""
    import torch
    import torch.nn.functional as F

    rows, cols = box
    crops = np.asarray(lungs)[:, rows, cols] > 0
    k, h, w = crops.shape
    side = max(h, w)
    square = np.zeros((k, side, side), np.float32)
    y0, x0 = (side - h) // 2, (side - w) // 2
    square[:, y0:y0 + h, x0:x0 + w] = crops
    t = F.interpolate(torch.from_numpy(square)[:, None], size=(inputs.SIZE, inputs.SIZE), mode="bilinear",
                      align_corners=False)
    return t[:, 0].numpy() > 0.5


def _lesion_labels(ct_image: sitk.Image, lungs: sitk.Image | None, lesions: sitk.Image | None,
                   display_windowed: bool, device: str) -> np.ndarray:
    """The lesion label array on the CT grid: the caller's, else ``lesions-unet`` run here as the pipeline runs it;
    on a picture (one display-windowed slice) always run here, with the side information's own picture rule
    (``inputs.PICTURE_LESIONS``)."""
    picture = display_windowed and (ct_image.GetDimension() == 2 or ct_image.GetSize()[2] == 1)
    if lesions is None or picture:
        from ...lesions import segment_lesions

        lesions = segment_lesions(ct_image, lungs, display_windowed=display_windowed, device=device,
                                  **inputs.PICTURE_LESIONS)
    return sitk.GetArrayFromImage(lesions).reshape(sitk.GetArrayViewFromImage(ct_image).shape)


def _result(p: float, explanation, inside: float, model: CVAENetVLADModel) -> dict:
    return {"probability": p, "label": _label(p), "log_odds": round(explanation.log_odds, 4),
            "relevance_in_lungs": round(inside, 4), "model_version": model.version}


def classify_image(ct, lungs: sitk.Image | None = None, lesions: sitk.Image | None = None, device: Any = "cpu", *,
                   model: CVAENetVLADModel | None = None) -> tuple[dict, dict[str, sitk.Image]]:
    """(result, {"lrp": map on the slice's canonical grid, float32 in [0, 1]}) of one 2-D slice (a ``CTVolume``
    with ``is_2d``); ``lungs`` / ``lesions``: its label maps when the caller has them.

    result: {"probability", "label", "log_odds", "relevance_in_lungs", "model_version"}.
    """
    from ..slice_resnet.infer import image_lungs

    if not ct.is_2d:
        raise InputError(ct.source, "is a volume; cvae-netvlad classifies it with classify_volume")
    model = model or load_model(device)
    hu = sitk.GetArrayFromImage(ct.image)[0]
    mask = image_lungs(ct, lungs, model.device)
    box = inputs.figure_box(hu, mask)[0] if mask is not None else None
    if box is None or not mask[box].any():
        raise InputError(ct.source, "no lung found in the slice: cvae-netvlad classifies a slice by its lungs")
    labels = _lesion_labels(ct.image, lungs, lesions, ct.display_windowed, model.device)[0]
    units, sides = inputs.frames(hu[None], labels[None], box)
    p, explanation = model.case(units, sides, None)
    maps, inside = _heatmap(explanation, _lung_frames(mask[None], box))
    heat = sitk.GetImageFromArray(inputs.unframe(maps, box, hu.shape).astype(np.float32))
    heat.CopyInformation(ct.image)
    return _result(p, explanation, inside, model), {LRP: heat}


def classify_volume(ct_image: sitk.Image, lungs: sitk.Image, lesions: sitk.Image | None = None, device: Any = "cpu",
                    progress: Progress | None = None, *, model: CVAENetVLADModel | None = None
                    ) -> tuple[dict, dict[str, sitk.Image]]:
    """(result, {"lrp": map on ``ct_image``'s grid, float32 in [0, 1]}) of a canonical CT, its lung label map and
    (optionally) its lesion label map, all on one grid.

    result: ``classify_image``'s plus "lung_slices", "classified_slices", "refined_slices" (canonical z explained to
    the pixels), "slice_relevance" (canonical z -> relevance of the slice's gated map).
    """
    from ..slice_resnet.infer import sampled_slices, volume_lung_slices

    report = progress or (lambda fraction, message: None)
    hu, labels, zs, box = volume_lung_slices(ct_image, lungs, MODEL_NAME)
    model = model or load_model(device)
    picked, owner = sampled_slices(len(zs), float(ct_image.GetSpacing()[2]), inputs.SLICE_INCREMENT_MM)
    chosen = zs[picked]
    lesion_labels = _lesion_labels(ct_image, lungs, lesions, False, model.device)
    units, sides = inputs.frames(hu[chosen], lesion_labels[chosen], box)
    report(0.2, f"{len(zs)} lung slices, {len(chosen)} every {inputs.SLICE_INCREMENT_MM:g} mm")
    p, explanation = model.case(units, sides, REFINED_SLICES)
    report(0.8, f"P(COVID-19) {p:.3f}; LRP-CMP on {len(explanation.refined)} slices")
    maps, inside = _heatmap(explanation, _lung_frames(labels[chosen], box))
    volume = np.zeros(hu.shape, np.float32)
    volume[zs] = inputs.unframe(maps, box, hu.shape[1:])[owner]
    heat = sitk.GetImageFromArray(volume)
    heat.CopyInformation(ct_image)
    result = _result(p, explanation, inside, model)
    result.update({"lung_slices": int(len(zs)), "classified_slices": int(len(chosen)),
                   "refined_slices": [int(chosen[i]) for i in explanation.refined],
                   "slice_relevance": {int(z): round(float(r), 5)
                                       for z, r in zip(chosen, explanation.slice_relevance)}})
    report(1.0, f"P(COVID-19) {p:.3f}")
    return result, {LRP: heat}
