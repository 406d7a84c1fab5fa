"""Multi-scale Grad-CAM (Gozes et al., seed 003, §2.3) on top of MONAI's hook machinery.

Grad-CAM (Selvaraju et al.): for a target layer with activations A (C x h x w) and gradients dS/dA of the class
score S, the map is ReLU(sum_c w_c A_c) with w_c the spatial mean of dS/dA_c. §2.3 computes it at the layers of
14 x 14 and 28 x 28 resolution (for a 224 input), normalizes each map to [0, 1] and multiplies them into a fine
localization map. The product is *not* renormalized: the paper normalizes before fusion only, so a voxel is high
only where both scales agree (this is the map the Corona score thresholds at 0.6).

``monai.visualize.GradCAM`` computes one layer per forward/backward pass and its default post-processing maps
(min, max) to (1, 0), i.e. inverts the map; we therefore use MONAI's ``ModelWithHooks`` (the same hooks) to get
the activations and gradients of all layers from a single pass, and do the weighting, upsampling and [0, 1]
normalization here. Each map is normalized per image; a map that is constant (e.g. all zero after the ReLU) becomes 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


@dataclass
class GradCAMResult:
    """logits (N, K); maps: layer -> (N, 1, H, W) in [0, 1] at the input size; fused: their product;
    activations / gradients: layer -> raw tensors (N, C, h, w) (for gradient-weighted features, §3.3)."""

    logits: torch.Tensor
    maps: dict[str, torch.Tensor]
    fused: torch.Tensor
    activations: dict[str, torch.Tensor]
    gradients: dict[str, torch.Tensor]


def normalize01(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalize each map of a (N, 1, H, W) batch to [0, 1]; constant maps become 0."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    span = hi - lo
    out = (maps - lo) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, out, torch.zeros_like(out))


def gradcam_map(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_c mean_xy(dS/dA_c) A_c): (N, C, h, w) x2 -> (N, 1, h, w)."""
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * activation).sum(dim=1, keepdim=True))


def multiscale_gradcam(net: torch.nn.Module, x: torch.Tensor, layers: Sequence[str],
                       size: Sequence[int] | None = None, class_idx: int = 0,
                       fuse: Sequence[str] | None = None) -> GradCAMResult:
    """Grad-CAM of ``class_idx`` at every layer in ``layers`` from one forward/backward pass, and their fusion.

    net: a classifier in eval mode (hooks are added for this call and removed afterwards).
    x: input batch (N, C, H, W). size: output map size (default: the input's H, W).
    fuse: the layers multiplied into ``fused`` (default: all of ``layers``).
    """
    from monai.visualize.class_activation_maps import ModelWithHooks

    layers = tuple(layers)
    handles_before = _hook_counts(net, layers)
    try:
        hooked = ModelWithHooks(net, layers, register_forward=True, register_backward=True)
        with torch.enable_grad():
            logits, acts, grads = hooked(x.requires_grad_(False), class_idx=class_idx)
    finally:
        _remove_new_hooks(net, layers, handles_before)
    size = tuple(size) if size is not None else tuple(x.shape[-2:])
    activations = {name: a.detach() for name, a in zip(layers, acts)}
    gradients = {name: g.detach() for name, g in zip(layers, grads)}
    maps = {}
    for name in layers:
        cam = gradcam_map(activations[name], gradients[name])
        cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
        maps[name] = normalize01(cam)
    fused = torch.ones_like(maps[layers[0]])
    for name in (fuse or layers):
        fused = fused * maps[name]
    return GradCAMResult(logits=logits.detach(), maps=maps, fused=fused, activations=activations, gradients=gradients)


def _hook_counts(net, layers):
    mods = dict(net.named_modules())
    return {n: (len(mods[n]._forward_hooks), len(mods[n]._backward_hooks)) for n in layers if n in mods}


def _remove_new_hooks(net, layers, before) -> None:
    """ModelWithHooks keeps its hooks forever; drop the ones it added so repeated calls do not pile up."""
    mods = dict(net.named_modules())
    for name, (n_fwd, n_bwd) in before.items():
        mod = mods[name]
        for hooks, keep in ((mod._forward_hooks, n_fwd), (mod._backward_hooks, n_bwd)):
            for key in list(hooks.keys())[keep:]:
                del hooks[key]
        if not mod._backward_hooks:
            mod._is_full_backward_hook = None


def gradcam(network: torch.nn.Module, x: torch.Tensor, target: int = 0, *, layers: Sequence[str]) -> torch.Tensor:
    """Grad-CAM maps (N, 1, H, W) in [0, 1] of logit ``target``: one layer's map, or the product of several layers'
    maps (the multi-scale fusion of §2.3) when ``layers`` names more than one."""
    return multiscale_gradcam(network, x, layers, class_idx=target).fused
