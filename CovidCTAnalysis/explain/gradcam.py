"""Multi-scale Grad-CAM (Gozes et al., seed 003, §2.3).

Grad-CAM (Selvaraju et al.): for a target layer with activations A (C x h x w) and gradients dS/dA of the class
score S, the map is ReLU(sum_c w_c A_c) with w_c the spatial mean of dS/dA_c. §2.3 computes it at the layers of
14 x 14 and 28 x 28 resolution (for a 224 input), normalizes each map to [0, 1] and multiplies them into a fine
localization map. The product is *not* renormalized: the paper normalizes before fusion only, so a voxel is high
only where both scales agree (this is the map the Corona score thresholds at 0.6).

One forward pass gives the logits and every layer's activations; the backward pass asks autograd for the gradients
of the score with respect to those activations only (``torch.autograd.grad``), with the network's parameters frozen
for the call. Nothing below the earliest target layer is differentiated and no weight gradient is formed, which on a
CPU makes a Grad-CAM pass cost little more than the forward pass (``monai.visualize.GradCAM`` back-propagates through
the whole network, once per layer, and maps (min, max) to (1, 0) by default). ``select`` restricts the backward
pass to the samples whose maps are wanted (the positive slices of a volume): their maps come from the same pass that
classified every sample, and a batch with none wanted is not differentiated at all.
Each map is normalized per image; a map that is constant (e.g. all zero after the ReLU) becomes 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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
                       fuse: Sequence[str] | None = None,
                       select: Callable[[torch.Tensor], torch.Tensor] | None = None) -> GradCAMResult:
    """Grad-CAM of ``class_idx`` at every layer in ``layers`` from one forward/backward pass, and their fusion.

    net: a classifier in eval mode (hooks are added for this call and removed afterwards; its parameters' gradient
    flags are restored). x: input batch (N, C, H, W). size: output map size (default: the input's H, W).
    fuse: the layers multiplied into ``fused`` (default: all of ``layers``).
    select: function of the logits (N, K) giving the boolean (N,) mask of the samples to explain (default: all);
    the others get zero gradients and maps.
    """
    layers = tuple(layers)
    modules = dict(net.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"the network has no layer {missing[0]!r}")
    captured: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            if not output.requires_grad:  # the earliest target layer: differentiation starts here
                output = output.detach().requires_grad_(True)
            captured[name] = output
            return output
        return hook

    params = list(net.parameters())
    flags = [p.requires_grad for p in params]
    handles = [modules[name].register_forward_hook(keep(name)) for name in layers]
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.enable_grad():
            logits = net(x.detach())
            wanted = torch.ones(len(x), dtype=torch.bool) if select is None else select(logits.detach()).bool()
            acts = [captured[name] for name in layers]
            if bool(wanted.any()):
                score = (logits[:, class_idx] * wanted.to(logits.device, logits.dtype)).sum()
                grads = torch.autograd.grad(score, acts)
            else:
                grads = [torch.zeros_like(a) for a in acts]
    finally:
        for h in handles:
            h.remove()
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
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


def gradcam(network: torch.nn.Module, x: torch.Tensor, target: int = 0, *, layers: Sequence[str]) -> torch.Tensor:
    """Grad-CAM maps (N, 1, H, W) in [0, 1] of logit ``target``: one layer's map, or the product of several layers'
    maps (the multi-scale fusion of §2.3) when ``layers`` names more than one."""
    return multiscale_gradcam(network, x, layers, class_idx=target).fused
