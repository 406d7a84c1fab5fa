"""Class activation maps (CAM, Zhou et al. 2016): the last feature maps weighted by the classifier's weights.

A network that pools its last feature maps A (C x spatial) into one vector and scores it with one linear layer W has,
for the explained score S = sum_k t_k logit_k (``target``: one class index, or coefficients t over the classes),
the map sum_c (sum_k t_k W_kc) A_c. DeCoVNet (seed 002, §III-D) explains its two softmax outputs with the COVID-19
logit minus the non-COVID one, i.e. ``target = (-1, 1)`` (``localize.py`` step 1). Negative evidence is set to 0 and
each map scaled to max 1 (a map without positive evidence is 0).
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

#: What a map explains: a class index, or coefficients over the classes (a contrast such as (-1, 1)).
Target = Union[int, Sequence[float]]


def class_weights(fc_weight: np.ndarray, target: Target) -> np.ndarray:
    """The per-feature weights (C,) of the explained score, from the linear layer's weights (K, C)."""
    w = np.asarray(fc_weight, np.float64)
    if isinstance(target, (int, np.integer)):
        return w[int(target)]
    coefficients = np.asarray(target, np.float64)
    if coefficients.shape != (w.shape[0],):
        raise ValueError(f"target needs one coefficient per class ({w.shape[0]}), not {coefficients.shape}")
    return coefficients @ w


def cam_map(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """CAM in 0..1 (spatial shape of ``features``) from features (C, *spatial) and per-feature weights (C,)."""
    cam = np.tensordot(np.asarray(weights, np.float64), np.asarray(features, np.float64), axes=(0, 0))
    cam = np.maximum(cam, 0.0)
    top = cam.max()
    return (cam / top if top > 0 else cam).astype(np.float32)


def last_linear(network: torch.nn.Module) -> str:
    """Module name of the network's last ``nn.Linear`` (the classifier layer CAM reads)."""
    names = [name for name, m in network.named_modules() if isinstance(m, torch.nn.Linear)]
    if not names:
        raise ValueError("CAM needs a network that ends in a linear layer")
    return names[-1]


def cam(network: torch.nn.Module, x: torch.Tensor, target: Target, *, layer: str, fc: str | None = None
        ) -> torch.Tensor:
    """CAM of ``target`` for a batch ``x`` (N, C, *spatial): maps (N, 1, *spatial) in 0..1 at the input size.

    layer: module name of the last feature maps (they must be pooled straight into ``fc``);
    fc: module name of the linear classifier (default: the last ``nn.Linear``).
    """
    modules = dict(network.named_modules())
    captured = {}
    handle = modules[layer].register_forward_hook(lambda m, i, out: captured.__setitem__("a", out.detach()))
    try:
        with torch.no_grad():
            network(x)
    finally:
        handle.remove()
    weight = modules[fc or last_linear(network)].weight.detach().float().cpu().numpy()
    w = class_weights(weight, target)
    features = captured["a"].float().cpu().numpy()
    maps = torch.as_tensor(np.stack([cam_map(f, w) for f in features]))[:, None]
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[maps.dim() - 2]
    return F.interpolate(maps, size=tuple(x.shape[2:]), mode=mode, align_corners=False).clamp(0, 1)
