"""Training augmentation on batches of normalized slices (torch, CPU): geometry and intensity.

Geometry (one random affine per slice, images bilinear, labels nearest): left-right flip (p 0.5; left/right of the
training slices is uncertain and lesions occur in both lungs), rotation within +-15 degrees and, with p 0.1, an extra
quarter turn (robustness to sideways 2-D figures), isotropic scale 0.8-1.25 with aspect jitter 0.9-1.1 (crops of
different tightness and pixel sizes), and a shift; the output is a ``crop`` x ``crop`` window (training on crops is
cheaper; the network is fully convolutional and runs on whole 256 x 256 slices in use). The shift lets the window reach
the image borders: with a fixed +-8 % shift a 160 px window never saw the outer tenth of a slice, where the
subpleural lesions of COVID-19 lie (consolidation pixels appeared in the windows at half their density in the
slices; model card).

Intensity (the JPEG sources were exported with different windows): a random linear remap a*x + b (a 0.75-1.35,
b -0.15..0.15, clipped to [0, 1]) simulating other display windows, gamma 0.7-1.5, Gaussian noise sigma up to 0.03.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(batch: int, generator: torch.Generator, out_fraction: float) -> torch.Tensor:
    """[batch, 2, 3] affine matrices for F.affine_grid (output coordinates -> input coordinates)."""

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(batch, generator=generator)

    angle = uniform(-15, 15) * math.pi / 180
    quarter = (torch.rand(batch, generator=generator) < 0.1).float() * torch.where(
        torch.rand(batch, generator=generator) < 0.5, 1.0, -1.0) * (math.pi / 2)
    angle = angle + quarter
    scale = torch.exp(uniform(math.log(0.8), math.log(1.25)))
    aspect = torch.exp(uniform(math.log(0.9), math.log(1.1)))
    flip = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    # input-space extent sampled by the output window: out_fraction of the image, divided by the zoom
    sx = out_fraction / (scale * aspect.sqrt())
    sy = out_fraction / (scale / aspect.sqrt())
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = cos * sx * flip
    theta[:, 0, 1] = -sin * sy
    theta[:, 1, 0] = sin * sx * flip
    theta[:, 1, 1] = cos * sy
    # window centre: anywhere that keeps at least three quarters of the window's width inside the image (at least
    # +-0.16), so the lung periphery - where most COVID-19 lesions lie - is trained on, not only the middle
    half_x = cos.abs() * sx + sin.abs() * sy
    half_y = sin.abs() * sx + cos.abs() * sy
    for axis, half in ((0, half_x), (1, half_y)):
        reach = torch.clamp(1.0 - 0.5 * half, min=0.16)
        theta[:, axis, 2] = (2 * torch.rand(batch, generator=generator) - 1) * reach
    return theta


def augment_batch(images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator, crop: int = 160):
    """images float [B, 1, H, W] in [0, 1], targets long [B, H, W] -> augmented (images, targets) of size crop."""
    b, _, h, _ = images.shape
    theta = random_affine(b, generator, crop / h)
    grid = F.affine_grid(theta, (b, 1, crop, crop), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # labels: nearest; outside the source -> background (the image is black there, as outside a crop)
    lab = F.grid_sample(targets[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    lab = lab[:, 0].round().long()

    def uniform(lo, hi):
        return (lo + (hi - lo) * torch.rand(b, 1, 1, 1, generator=generator))

    out = (out * uniform(0.75, 1.35) + uniform(-0.15, 0.15)).clamp(0, 1)
    out = out.pow(torch.exp(uniform(math.log(0.7), math.log(1.5))))
    out = out + uniform(0, 0.03) * torch.randn(out.shape, generator=generator)
    return out, lab
