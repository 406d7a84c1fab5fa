"""Inference of DA-CMIL (seed 004) on one 2-D slice or a CT volume, with its two attention explanations.

A 2-D slice (§4.1, the patch variant) is the bag of its lung patches (``bags.slice_bag``). Its lungs: the pipeline's
lung mask on real HU, or ``lungs-unet``'s lungs of a display-windowed figure (``slice_resnet.infer.image_lungs``,
the same finder training used). A slice without lung has no bag and is refused with the input's one-line error.

A volume is ONE bag. With the shipped weights it is the bag of its lung slices (§4.1, the paper's "CT slices" set):
the slices with at least 5 % of the largest slice's lung area, one every ``bags.SLICE_SPACING_MM`` (5 mm), each
framed by the volume's lung box (``bags.volume_frames``) and seen at ``bags.SLICE_SIZE`` (256) px by the slice-bag
network, which was trained on semi-synthetic volumes (``train.train_volumes``). A weights file without that network
(an older file, or a user's patch-only training) falls back to one bag of the lung patches of those slices,
classified by the patch network. A slice's attention is its instance weight (the sum of its patches' weights in
the fallback); the slices between sampled ones take the nearest sampled slice's maps.

Explanations. The model's own (§5.4, Fig. 8): the instance attention a_n (per patch, and per slice for a volume:
``slice_attention``, ``top_slices``) and the spatial attention of each instance (softmax over the positions of its
feature map: 4 x 4 for a patch, 8 x 8 for a slice) weighted by a_n, upsampled onto its window or frame (patch
windows averaged where they overlap), and mapped back onto the CT grid:
``heatmap-da-cmil.nrrd``, scaled to [0, 1] over the case. The second view is Grad-CAM of the bag's logit on every
instance's feature map, from the same forward pass, placed the same way (``heatmap-da-cmil-gradcam.nrrd``). Both are
kept inside the lungs and a 1 cm margin, as the paper shows its maps (Fig. 8: "normalized to focus on the lung
regions only"); the model card gives the pointing game with and without this restriction.

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
from .model import DACMIL, SLICES_PREFIX

MODEL_NAME = "da-cmil"
SLICE_SPACING_MM = bags.SLICE_SPACING_MM
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
    #: the slice-bag network for volumes (None: volumes are bags of lung patches for ``net``)
    slices: Any = None
    slice_size: int = bags.SLICE_SIZE

    def bag(self, patches: np.ndarray) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """(P(COVID-19), instance attention a (N,), {method: per-instance map (N, h, w)}) of one bag of unit
        patches; methods: ``ATTENTION`` (spatial attention times a_n) and ``GRADCAM`` (Grad-CAM of the bag logit
        on the D-channel feature map g, ``explain.gradcam.gradcam_map``, from the same pass: the gradient flows
        through both attention poolings, so a patch the bag ignores gets none)."""
        return _bag(self.net, self.instance_size, patches, self.device)

    def slice_bag(self, frames: np.ndarray) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """``bag`` for the slice-bag network: unit frames (K, FRAME, FRAME) of a volume's lung slices."""
        return _bag(self.slices, self.slice_size, frames, self.device)


def _bag(net, size: int, instances: np.ndarray, device) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
    """``DACMILModel.bag`` of ``net`` on unit ``instances`` (N, S, S), seen at ``size`` px."""
    import torch

    from ...explain.gradcam import gradcam_map
    from .train import instance_tensor

    with torch.no_grad():
        encoded = [net.encoder(instance_tensor(np.rint(instances[i:i + BATCH] * 255), size)
                               .to(device).contiguous(memory_format=torch.channels_last))
                   for i in range(0, len(instances), BATCH)]
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
    from ...models.weights import load_state, network_from_state, split_states

    reg = load_registry(registry)
    entry = reg.get(MODEL_NAME)
    patch_state, slice_state = split_states(load_state(MODEL_NAME, reg), SLICES_PREFIX)
    build = lambda: DACMIL(entry.input.get("backbone", "efficientnet-lite0"))  # noqa: E731
    slices = fused(network_from_state(build, slice_state, device, entry.weights)) if slice_state else None
    return DACMILModel(net=fused(network_from_state(build, patch_state, device, entry.weights)), device=device,
                       version=entry.version, instance_size=int(entry.input.get("instance_size", bags.PATCH)),
                       slices=slices, slice_size=int(entry.input.get("slice_size", bags.SLICE_SIZE)))


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


def _framed_patch_maps(instance_maps: np.ndarray, slice_bags: list) -> np.ndarray:
    """Per-patch maps of consecutive slice bags -> (K, FRAME, FRAME): each window placed in its slice's frame."""
    framed, start = np.zeros((len(slice_bags), bags.FRAME, bags.FRAME), np.float32), 0
    for k, bag in enumerate(slice_bags):
        framed[k] = bags.place(instance_maps[start:start + len(bag)], bag.corners)
        start += len(bag)
    return framed


def _on_slices(framed: np.ndarray, lungs: list, box, shape) -> np.ndarray:
    """Framed maps (K, FRAME, FRAME; changed in place) -> (K, y, x) maps of the K slices (``shape``): kept inside
    each frame's lungs (``lungs``, framed masks or None) grown by ``LUNG_MARGIN_PX`` (Fig. 8's maps "normalized to
    focus on the lung regions only"), mapped back onto the slices together, scaled so that the case's peak is 1."""
    from ..slice_resnet.inputs import lung_focus

    for k, lung in enumerate(lungs):  # in place: the callers' framed maps are their own temporaries
        if lung is not None and lung.any():
            framed[k] *= lung_focus(lung, LUNG_MARGIN_PX)
    peak = float(framed.max(initial=0.0))
    if peak <= 0:
        return np.zeros((len(framed), *shape), np.float32)
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
        (heat,) = _on_slices(_framed_patch_maps(maps, [bag]), [bag.lung if len(bag) else None], bag.box, hu.shape)
        images[method] = sitk.GetImageFromArray(heat[None].astype(np.float32))
        images[method].CopyInformation(ct.image)
    result = {"probability": p, "label": _label(p), "instances": int(len(bag)),
              "patch_attention": [round(float(v), 4) for v in a], "model_version": model.version}
    return result, images


def classify_volume(ct_image: sitk.Image, lungs: sitk.Image, device: Any = "cpu", progress: Progress | None = None,
                    *, model: DACMILModel | None = None) -> tuple[dict, dict[str, sitk.Image]]:
    """(result, {method: map on ``ct_image``'s grid, float32 in [0, 1]}) of a canonical CT and its lung label map
    (same grid); methods ``METHODS``.

    result: {"probability", "label", "instances", "bag" ("lung slices" or "lung patches"), "lung_slices",
    "classified_slices", "slice_attention" (canonical z -> the slice's attention, sampled slices only), "top_slices"
    (the ``TOP_SLICES`` z with the most attention), "model_version"}.
    """
    from ..slice_resnet.infer import volume_lung_slices

    report = progress or (lambda fraction, message: None)
    hu, labels, zs, box = volume_lung_slices(ct_image, lungs, MODEL_NAME)
    volume = bags.frame_lung_slices(hu, labels, zs, box, float(ct_image.GetSpacing()[2]), SLICE_SPACING_MM)
    model = model or load_model(device)
    sampled = f"{len(volume.zs)} lung slices, {len(volume.picked)} sampled {SLICE_SPACING_MM:g} mm apart"
    if model.slices is not None:
        report(0.2, f"{sampled}: one bag of {len(volume.picked)} slices")
        p, per_slice, instance_maps = model.slice_bag(volume.unit)
        framed = {method: bags.upsample_to_frame(maps) for method, maps in instance_maps.items()}
        instances, kind = len(volume.picked), "lung slices"
    else:
        slice_bags = [bags.framed_bag(unit, lung, volume.box) for unit, lung in zip(volume.unit, volume.lung)]
        sizes = np.array([len(b) for b in slice_bags])
        if sizes.sum() == 0:
            raise InputError(None, "no lung patch in the lung slices; da-cmil needs lung to classify")
        report(0.2, f"{sampled}, {int(sizes.sum())} lung patches")
        p, a, instance_maps = model.bag(np.concatenate([b.patches for b in slice_bags if len(b)]))
        starts = np.concatenate([[0], np.cumsum(sizes)])
        per_slice = np.array([a[starts[i]:starts[i + 1]].sum() for i in range(len(slice_bags))])
        framed = {method: _framed_patch_maps(maps, slice_bags) for method, maps in instance_maps.items()}
        instances, kind = int(sizes.sum()), "lung patches"
    report(0.8, f"bag of {instances} {kind} classified and explained")
    images = {}
    for method, maps in framed.items():
        heat = np.zeros(hu.shape, np.float32)
        heat[volume.zs] = _on_slices(maps, list(volume.lung), volume.box, hu.shape[1:])[volume.owner]
        images[method] = sitk.GetImageFromArray(heat)
        images[method].CopyInformation(ct_image)
    sampled_z = volume.sampled_z
    top = sampled_z[np.argsort(-per_slice, kind="stable")[:TOP_SLICES]]
    result = {"probability": p, "label": _label(p), "instances": instances, "bag": kind,
              "lung_slices": int(len(volume.zs)), "classified_slices": int(len(volume.picked)),
              "slice_attention": {int(z): round(float(w), 5) for z, w in zip(sampled_z, per_slice)},
              "top_slices": [int(z) for z in top], "model_version": model.version}
    report(1.0, f"P(COVID-19) {p:.3f}; most attended slices {', '.join(str(int(z)) for z in top)}")
    return result, images
