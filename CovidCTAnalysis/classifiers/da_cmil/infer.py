"""Inference of DA-CMIL (seed 004) on one 2-D slice or a CT volume, with its two attention explanations.

A 2-D slice (§4.1, the patch variant) is the bag of its lung patches (``bags.slice_bag``). Its lungs: the pipeline's
lung mask on real HU, or ``lungs-unet``'s lungs of a display-windowed figure (``slice_resnet.infer.image_lungs``,
the same finder training used). A slice without lung has no bag and is refused with the input's one-line error.

A volume is ONE bag: the lung patches of its lung slices (slices with at least 5 % of the largest slice's lung
area, framed by the largest lung box over them, as for the project's other slice networks), one slice every
``SLICE_SPACING_MM`` (5 mm). The paper's volume bags are whole slices (§4.1 "CT slices" set); here the instance stays
the lung patch the network was trained on in COVID-CT, since no labelled 3-D cohort exists to train a slice-bag
model on (docs/DATA.md), and the attention pooling (Eq. 3-4) is permutation-invariant and takes any number of
instances, as the paper's inference "with all available instances" does. A slice's attention is the sum of its
patches' attention weights; the slices between sampled ones take the nearest sampled slice's maps.

Explanations. The model's own (§5.4, Fig. 8): the instance attention a_n (per patch, and per slice for a volume:
``slice_attention``, ``top_slices``) and the spatial attention of each patch (softmax over its 4 x 4 feature
positions) weighted by a_n, upsampled onto its window, summed where windows overlap, and mapped back onto the CT grid:
``heatmap-da-cmil.nrrd``, scaled to [0, 1] over the case. The second view is Grad-CAM of the bag's logit on every
patch's feature map, from the same forward pass, placed the same way (``heatmap-da-cmil-gradcam.nrrd``). Both are
kept inside the lungs and a 1 cm margin, as the paper shows its maps (Fig. 8: "normalized to focus on the lung
regions only"); the model card gives the share of the raw maps that fell outside.

Weights come from the registry (sha256 checked) and are loaded once per (registry, device).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from ...errors import InputError
from ...models.weights import cached_loader
from ..interface import Progress
from . import bags
from .model import DACMIL

MODEL_NAME = "da-cmil"
SLICE_SPACING_MM = 5.0
THRESHOLD = 0.5
LABELS = ("non-COVID", "COVID-19")
ATTENTION, GRADCAM = "attention", "gradcam"
METHODS = (ATTENTION, GRADCAM)
#: Instances through the encoder at once.
BATCH = 64
TOP_SLICES = 5
#: The maps are kept inside the lungs grown by this many frame pixels (about 1 cm; holes filled): dense
#: consolidation at the pleura, which a lung mask may leave out, stays in view.
LUNG_MARGIN_PX = 10


@dataclass(frozen=True)
class DACMILModel:
    """A loaded DA-CMIL network with what inference needs to know about it."""

    net: Any
    device: str
    version: str
    instance_size: int = bags.PATCH

    def bag(self, patches: np.ndarray) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """(P(COVID-19), instance attention a (N,), {method: per-instance map (N, h, w)}) of one bag of unit
        patches; methods: ``ATTENTION`` (spatial attention times a_n) and ``GRADCAM`` (Grad-CAM of the bag logit
        on the D-channel feature map g, ``explain.gradcam.gradcam_map``, from the same pass: the gradient flows
        through both attention poolings, so a patch the bag ignores gets none)."""
        import torch

        from ...explain.gradcam import gradcam_map
        from .train import instance_tensor

        net = self.net
        with torch.no_grad():
            encoded = [net.encoder(instance_tensor(np.rint(patches[i:i + BATCH] * 255), self.instance_size)
                                   .to(self.device).contiguous(memory_format=torch.channels_last))
                       for i in range(0, len(patches), BATCH)]
        with torch.enable_grad():
            g = net.project(torch.cat(encoded)).detach().requires_grad_(True)
            n, d, h, w = g.shape
            spatial = torch.softmax(net.spatial(g).reshape(n, h * w), dim=1)
            phi = torch.bmm(g.reshape(n, d, h * w), spatial[:, :, None])[:, :, 0]
            a = torch.softmax(net.instance(phi)[:, 0], dim=0)
            logit = net.classifier(a @ phi)[0]
            (grad,) = torch.autograd.grad(logit, g)
        cam = gradcam_map(g.detach(), grad)[:, 0]
        a = a.detach()
        maps = {ATTENTION: (spatial.detach().reshape(n, h, w) * a[:, None, None]).cpu().numpy(),
                GRADCAM: cam.cpu().numpy()}
        return float(torch.sigmoid(logit.detach())), a.cpu().numpy(), maps


def _load(device: str, registry: str | None) -> DACMILModel:
    from ...models.registry import load_registry
    from ...models.weights import registered_network

    reg = load_registry(registry)
    entry = reg.get(MODEL_NAME)
    net = registered_network(MODEL_NAME, lambda state: DACMIL(entry.input.get("backbone", "efficientnet-lite0")),
                             device, reg)
    return DACMILModel(net=fused(net), device=device, version=entry.version,
                       instance_size=int(entry.input.get("instance_size", bags.PATCH)))


#: The registered da-cmil on ``device`` (cached); ``registry``: a registry.json (path or loaded Registry).
load_model = cached_loader(_load)


def fused(net):
    """An inference copy of ``net`` whose EfficientNet-Lite encoder has its BatchNorms folded into the convolutions
    (same outputs to float rounding, ``EfficientNetLite.fused_for_inference``); other encoders as they are."""
    import copy

    inner = net.encoder.net
    if not hasattr(inner, "fused_for_inference"):
        return net
    out = copy.deepcopy(net).eval()
    out.encoder.net = inner.fused_for_inference()
    return out


def _label(p: float) -> str:
    return LABELS[int(p >= THRESHOLD)]


def _on_slices(instance_maps: np.ndarray, slice_bags: list, box, shape) -> np.ndarray:
    """Per-instance maps of consecutive slice bags -> (K, y, x) maps of the K slices (``shape``): windows placed in
    the frame, kept inside the lungs grown by ``LUNG_MARGIN_PX`` (Fig. 8's maps "normalized to focus on the lung
    regions only"), the frames mapped back onto the slices together, scaled so that the case's peak is 1."""
    from ..slice_resnet.inputs import lung_focus

    framed, start = np.zeros((len(slice_bags), bags.FRAME, bags.FRAME), np.float32), 0
    for k, bag in enumerate(slice_bags):
        framed[k] = bags.place(instance_maps[start:start + len(bag)], bag.corners)
        if bag.lung is not None and len(bag):
            framed[k] *= lung_focus(bag.lung, LUNG_MARGIN_PX)
        start += len(bag)
    peak = float(framed.max(initial=0.0))
    if peak <= 0:
        return np.zeros((len(slice_bags), *shape), np.float32)
    return bags.unframe(framed / peak, box, shape)


def classify_image(ct, lungs: sitk.Image | None = None, device: Any = "cpu", *, model: DACMILModel | None = None
                   ) -> tuple[dict, dict[str, sitk.Image]]:
    """(result, {method: map on the slice's canonical grid, float32 in [0, 1]}) of one 2-D slice (a ``CTVolume``
    with ``is_2d``); methods ``METHODS``.

    result: {"probability", "label", "instances", "patch_attention", "model_version"}.
    """
    from ..slice_resnet.infer import image_lungs

    if not ct.is_2d:
        raise InputError(ct.source, "is a volume; da-cmil classifies it with classify_volume")
    model = model or load_model(device)
    hu = sitk.GetArrayFromImage(ct.image)[0]
    mask = image_lungs(ct, lungs, model.device)
    bag = bags.slice_bag(hu, mask) if mask is not None else None
    if bag is None or len(bag) == 0:
        raise InputError(ct.source, "no lung found in the slice: da-cmil classifies a slice by its lung patches")
    p, a, instance_maps = model.bag(bag.patches)
    images = {}
    for method, maps in instance_maps.items():
        (heat,) = _on_slices(maps, [bag], bag.box, hu.shape)
        images[method] = sitk.GetImageFromArray(heat[None].astype(np.float32))
        images[method].CopyInformation(ct.image)
    result = {"probability": p, "label": _label(p), "instances": int(len(bag)),
              "patch_attention": [round(float(v), 4) for v in a], "model_version": model.version}
    return result, images


def classify_volume(ct_image: sitk.Image, lungs: sitk.Image, device: Any = "cpu", progress: Progress | None = None,
                    *, model: DACMILModel | None = None) -> tuple[dict, dict[str, sitk.Image]]:
    """(result, {method: map on ``ct_image``'s grid, float32 in [0, 1]}) of a canonical CT and its lung label map
    (same grid); methods ``METHODS``.

    result: {"probability", "label", "instances", "lung_slices", "classified_slices", "slice_attention" (canonical
    z -> summed attention of the slice's patches, sampled slices only), "top_slices" (the ``TOP_SLICES`` z with the
    most attention), "model_version"}.
    """
    from ..slice_resnet.infer import sampled_slices, volume_lung_slices

    report = progress or (lambda fraction, message: None)
    hu, labels, zs, box = volume_lung_slices(ct_image, lungs, MODEL_NAME)
    model = model or load_model(device)
    picked, owner = sampled_slices(len(zs), float(ct_image.GetSpacing()[2]), SLICE_SPACING_MM)
    slice_bags = [bags.framed_bag(unit, lung, box) for unit, lung in zip(*bags.frames(hu[zs[picked]],
                                                                                         labels[zs[picked]], box))]
    sizes = np.array([len(b) for b in slice_bags])
    if sizes.sum() == 0:
        raise InputError(None, "no lung patch in the lung slices; da-cmil needs lung to classify")
    report(0.2, f"{len(zs)} lung slices, {len(picked)} sampled {SLICE_SPACING_MM:g} mm apart, "
                f"{int(sizes.sum())} lung patches")
    p, a, instance_maps = model.bag(np.concatenate([b.patches for b in slice_bags if len(b)]))
    report(0.8, f"bag of {int(sizes.sum())} patches classified and explained")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    per_slice = np.array([a[starts[i]:starts[i + 1]].sum() for i in range(len(picked))])
    images = {}
    for method, maps in instance_maps.items():
        volume = np.zeros(hu.shape, np.float32)
        volume[zs] = _on_slices(maps, slice_bags, box, hu.shape[1:])[owner]
        images[method] = sitk.GetImageFromArray(volume)
        images[method].CopyInformation(ct_image)
    sampled_z = zs[picked]
    top = sampled_z[np.argsort(-per_slice, kind="stable")[:TOP_SLICES]]
    result = {"probability": p, "label": _label(p), "instances": int(sizes.sum()), "lung_slices": int(len(zs)),
              "classified_slices": int(len(picked)),
              "slice_attention": {int(z): round(float(w), 5) for z, w in zip(sampled_z, per_slice)},
              "top_slices": [int(z) for z in top], "model_version": model.version}
    report(1.0, f"P(COVID-19) {p:.3f}; most attended slices {', '.join(str(int(z)) for z in top)}")
    return result, images
