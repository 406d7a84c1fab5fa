"""DeCoVNet inference on one CT: P(COVID-19), the CAM heatmap and the localized lesion (seed 002, §II-E, §II-G).

"During the procedure of testing, data augmentation strategies were not applied. The trained DeCoVNet took the
preprocessed CT-Mask volume of each patient and output the COVID-positive probability" (§II-G). The label uses the
threshold 0.5 of §III-A. The lesion is localized for volumes predicted positive only (the hit rate of §II-H is
defined on them); for a negative volume, or a positive one where no CAM region overlaps R_3dcc (§II-E then finds
none), the localization is None and the heatmap is still returned.

Weights come from the registry (sha256 checked, ``models.weights.registered_network``), together with the input grid
they were trained on (``input`` of the registry entry, ``inputs.InputSpec``); a loaded model is cached per (registry
file, device).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ...explain.cam import cam_map, class_weights
from ...models.weights import network_from_state, registered_network
from ..interface import Progress
from . import inputs, localize
from .model import DeCoVNet

MODEL_NAME = "decovnet"
THRESHOLD = 0.5
LABELS = ("non-COVID", "COVID-19")
#: The score CAM explains: the COVID-19 logit minus the non-COVID one (localize.py, step 1).
COVID_EVIDENCE = (-1.0, 1.0)
#: Where the map is read (localize.py, step 1). "backbone": the ResBlocks' output (128 x T/2 x 28 x 42 at 224 x 336),
#: "the deep feature before the progressive classifier" of §III-D; the FC weights do not apply to it (the progressive
#: classifier lies between), so its channels are weighted by the mean gradient of the COVID-19 evidence (Grad-CAM,
#: CAM's generalization to such a layer). "classifier": the last convolution of the progressive classifier
#: (32 x 4 x 14 x 21) weighted by the FC weights: CAM as Zhou et al. define it, 4 slices deep.
CAM_LAYERS = ("backbone", "classifier")
CAM_LAYER = "backbone"


@dataclass(frozen=True)
class LoadedDeCoVNet:
    """A DeCoVNet in eval mode on its device, the input grid of its weights and the registry version."""

    net: Any
    device: Any
    spec: inputs.InputSpec
    version: str

    def run(self, array: np.ndarray, cam_layer: str = CAM_LAYER) -> tuple[float, np.ndarray]:
        """(P(COVID-19), the map of ``cam_layer`` on the input grid 0..1) of one (2, T, H, W) input."""
        import torch

        if cam_layer not in CAM_LAYERS:
            raise ValueError(f"unknown CAM layer {cam_layer!r}; choose one of {', '.join(CAM_LAYERS)}")
        x = torch.as_tensor(np.ascontiguousarray(inputs.encode(array, self.spec), np.float32))[None]
        x = x.to(self.device)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode():
            backbone = self.net.backbone(x)
        if cam_layer == "classifier":
            with torch.inference_mode():
                logits, features = self.net.forward_head(backbone)
            weights = class_weights(self.net.fc.weight.detach().float().cpu().numpy(), COVID_EVIDENCE)
            cam = cam_map(features[0].float().cpu().numpy(), weights)
        else:
            logits, cam = self._backbone_gradcam(backbone)
        p = float(torch.softmax(logits.float(), dim=1)[0, 1])
        return p, localize.upsample(cam, array.shape[1:])

    def _backbone_gradcam(self, backbone):
        """(logits, Grad-CAM of the COVID-19 evidence on the ResBlocks' output) from one pass of the progressive
        classifier, differentiated with respect to its input only (no weight gradients)."""
        import torch

        features = backbone.clone().detach().requires_grad_(True)
        params = list(self.net.parameters())
        flags = [q.requires_grad for q in params]
        try:
            for q in params:
                q.requires_grad_(False)
            with torch.enable_grad():
                logits, _ = self.net.forward_head(features)
                score = (torch.as_tensor(COVID_EVIDENCE, dtype=logits.dtype, device=logits.device) * logits[0]).sum()
                (gradient,) = torch.autograd.grad(score, features)
        finally:
            for q, flag in zip(params, flags):
                q.requires_grad_(flag)
        weights = gradient[0].float().mean(dim=(1, 2, 3)).cpu().numpy()
        return logits.detach(), cam_map(features[0].detach().float().cpu().numpy(), weights)


def _loaded(net, device, spec: inputs.InputSpec, version: str) -> LoadedDeCoVNet:
    import torch

    # channels-last 3-D tensors take the faster oneDNN convolutions on CPU; results are the same
    net.to(memory_format=torch.channels_last_3d)
    return LoadedDeCoVNet(net=net, device=device, spec=spec, version=version)


def model_from_state_dict(state: dict, device, spec: inputs.InputSpec, version: str = "unregistered"):
    """A LoadedDeCoVNet from a state dict of a weights file (any float dtype; computed in float32)."""
    return _loaded(network_from_state(DeCoVNet, state, device), device, spec, version)


@functools.lru_cache(maxsize=4)
def _load_cached(registry_path: str | None, device_text: str, overrides: str = "") -> LoadedDeCoVNet:
    import torch

    from ...models import load_registry

    registry = load_registry(registry_path)
    entry = registry.get(MODEL_NAME)
    device = torch.device(device_text)
    net = registered_network(MODEL_NAME, lambda state: DeCoVNet(), device, registry)
    return _loaded(net, device, inputs.InputSpec.from_dict(entry.input), entry.version)


def load_model(device, registry=None) -> LoadedDeCoVNet:
    """DeCoVNet with the registered weights (sha256 verified) on ``device``; registry: a registry.json path or a
    loaded Registry, None = the default one."""
    registry = getattr(registry, "path", registry)
    from ...models.user_weights import cache_key

    return _load_cached(None if registry is None else str(Path(registry).resolve()), str(device), cache_key())


def classify_volume(ct_image: sitk.Image, lungs: sitk.Image, device, progress: Progress | None = None, *,
                    model: LoadedDeCoVNet | None = None) -> tuple[dict, sitk.Image, dict | None]:
    """Classify one CT and localize its most likely lesion.

    ct_image: canonical float32 HU (``io.load_ct(...).image``); lungs: uint8 0/1/2 on the same grid.
    Returns (result, heatmap, localization):
      result: {"probability": P(COVID-19), "label": "COVID-19" | "non-COVID", "threshold": 0.5, "slices": T,
               "input_grid": [W, H, T], "localization": {...} summary or None};
      heatmap: the CAM, float32 0..1, on the canonical grid of ``ct_image`` (0 outside the lung box);
      localization: {"mask": uint8 sitk image (1 = lesion) on the canonical grid, "centre_mm": (x, y, z) LPS,
                     "source": a localize.VARIANTS name, "volume_ml": float} for a positive volume whose lesion was
                    localized (§II-E: a CAM region overlapping R_3dcc), else None.
    """
    report = progress or (lambda f, m: None)
    model = model or load_model(device)
    report(0.05, "decovnet: preparing the CT-mask volume")
    x = inputs.prepare(ct_image, lungs, model.spec)
    report(0.3, f"decovnet: network on {x.array.shape[1]} slices of {model.spec.height}x{model.spec.width}")
    p, cam = model.run(x.array)
    label = LABELS[int(p >= THRESHOLD)]
    report(0.7, "decovnet: heatmap and lesion localization")
    heatmap = inputs.to_canonical(cam, x.grid, ct_image)
    result = {"probability": p, "label": label, "threshold": THRESHOLD, "slices": int(x.array.shape[1]),
              "input_grid": list(x.grid.GetSize()), "localization": None}
    located = None
    if p >= THRESHOLD:
        loc = localize.localize(x.ct, x.lungs, cam)
        if not loc.empty:
            mask = inputs.to_canonical(loc.mask.astype(np.uint8), x.grid, ct_image, labels=True)
            centre = localize.centre_mm(loc.mask, x.grid)
            voxel_ml = float(np.prod(x.grid.GetSpacing())) / 1000.0
            volume = float(loc.mask.sum()) * voxel_ml
            located = {"mask": mask, "centre_mm": centre, "source": loc.source, "volume_ml": volume}
            result["localization"] = {"centre_mm": list(centre), "source": loc.source, "volume_ml": volume}
    report(1.0, f"decovnet: P(COVID-19) = {p:.3f}")
    return result, heatmap, located
