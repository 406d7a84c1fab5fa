"""Training augmentation of slice-resnet, applied to batches of cached unit squares (N, 1, 256, 256) in torch.

§2.2 of Gozes et al. names rotations, horizontal flips and cropping. The COVID-CT figures need more (docs/DATA.md): they
come from papers at every size (115-1671 px wide), in unknown display windows, sometimes framed loosely or tightly,
and some carry arrows, boxes or text. So, per image, with the identity as the centre of every range:

- geometry (one ``affine_grid``/``grid_sample`` pass): rotation +-10 deg, zoom 0.9-1.15 (crop in / pad out with
  air), shift +-5 %, horizontal flip with p = 0.5;
- display window: contrast 0.85-1.18, brightness +-0.05, gamma 0.85-1.18 (figures were windowed by their authors);
- resolution: with p = 0.2 the image is shrunk to 96-192 px and blown up again (small or JPEG-blurred figures);
- annotations: with p = 0.2 one to three straight strokes (arrows), with p = 0.1 a small block of short dashes
  (text), each black or white, so that marks on a figure are not evidence;
- noise: Gaussian, sigma 0-0.01.

Of these ranges a ResNet-18 trained from scratch under-fitted in its CPU budget (model 1.0.0's runs, logged in
Resources/Models/slice-resnet/runs/), so it was trained with horizontal flips only.

The list above is profile "figure". Profile "paper" is its geometry alone (rotation, zoom crop/pad, shift,
horizontal flip): the three augmentations §2.2 names, and the training default (ImageNet-pretrained backbones).
Profile "flips" is horizontal flips only (the recipe of model 1.0.0). Profile "frame" is "flips" plus ``frame``,
against framing shortcuts (Grad-CAM of the first model peaked on the scanner table and the figure edge): with
p = 0.5 a random crop inside the figure (60-100 % of each side, the rest air), with p = 0.5 a band of air or white
over random borders. The pixel noise of "figure" is
drawn from torch's global generator (seeded by training); everything else from ``rng``.

Random crops (§2.2 "cropping") are taken after this, at network-input scale (``train._random_crops``).

Output stays in [0, 1] at the cache size; ``inputs.to_tensor`` then makes the network input exactly as at inference.
Masks given with the images (pre-training targets) undergo the same geometry only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

ROTATION_DEG = 10.0
ZOOM = (0.9, 1.15)
SHIFT = 0.05
CONTRAST = (0.85, 1.18)
BRIGHTNESS = 0.05
GAMMA = (0.85, 1.18)
P_LOW_RES = 0.2
LOW_RES = (96, 192)
P_STROKES = 0.2
P_TEXT = 0.1
NOISE_SIGMA = 0.01
P_FRAME = 0.5
PROFILES = ("paper", "figure", "frame", "flips")


def random_affine(n: int, rng: np.random.Generator) -> torch.Tensor:
    """(n, 2, 3) sampling matrices (output -> input coordinates in [-1, 1]) around the identity."""
    angle = np.deg2rad(rng.uniform(-ROTATION_DEG, ROTATION_DEG, n))
    zoom = np.exp(rng.uniform(math.log(ZOOM[0]), math.log(ZOOM[1]), n))  # >1 zooms in (crop)
    flip = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    tx, ty = rng.uniform(-SHIFT, SHIFT, (2, n))
    c, s = np.cos(angle) / zoom, np.sin(angle) / zoom
    theta = np.stack([np.stack([c * flip, -s, tx], 1), np.stack([s * flip, c, ty], 1)], 1)
    return torch.as_tensor(theta, dtype=torch.float32)


def geometric(images: torch.Tensor, theta: torch.Tensor, masks: torch.Tensor | None = None):
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if masks is None:
        return out, None
    return out, F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def window(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    n = images.shape[0]
    shape = (n, 1, 1, 1)
    contrast = torch.as_tensor(np.exp(rng.uniform(*np.log(CONTRAST), n)), dtype=torch.float32).view(shape)
    bright = torch.as_tensor(rng.uniform(-BRIGHTNESS, BRIGHTNESS, n), dtype=torch.float32).view(shape)
    gamma = torch.as_tensor(np.exp(rng.uniform(*np.log(GAMMA), n)), dtype=torch.float32).view(shape)
    out = ((images - 0.5) * contrast + 0.5 + bright).clamp(0.0, 1.0)
    return out.pow(gamma)


def low_resolution(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    size = images.shape[-1]
    out = images.clone()
    for i in np.nonzero(rng.random(images.shape[0]) < P_LOW_RES)[0]:
        small = int(rng.integers(LOW_RES[0], LOW_RES[1] + 1))
        shrunk = F.interpolate(images[i:i + 1], size=(small, small), mode="bilinear", antialias=True,
                               align_corners=False)
        out[i:i + 1] = F.interpolate(shrunk, size=(size, size), mode="bilinear", align_corners=False)
    return out


def annotations(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Draw arrow-like strokes and text-like dash blocks, black or white (skimage.draw)."""
    from skimage.draw import line_aa, rectangle

    out = images.numpy().copy()
    size = out.shape[-1]
    for i in range(out.shape[0]):
        img = out[i, 0]
        if rng.random() < P_STROKES:
            for _ in range(int(rng.integers(1, 4))):
                value = float(rng.choice([0.0, 1.0]))
                y0, x0 = rng.integers(8, size - 8, 2)
                length, angle = rng.uniform(12, 40), rng.uniform(0, 2 * np.pi)
                y1 = int(np.clip(y0 + length * np.sin(angle), 0, size - 1))
                x1 = int(np.clip(x0 + length * np.cos(angle), 0, size - 1))
                for dy in range(int(rng.integers(1, 3))):
                    rr, cc, val = line_aa(int(y0) + dy, int(x0), min(y1 + dy, size - 1), x1)
                    img[rr, cc] = img[rr, cc] * (1 - val) + value * val
        if rng.random() < P_TEXT:
            value = float(rng.choice([0.0, 1.0]))
            top = int(rng.choice([2, size - 14]))
            left = int(rng.integers(2, size - 60))
            for k in range(int(rng.integers(2, 7))):
                w = int(rng.integers(3, 9))
                rr, cc = rectangle((top, left + k * 9), extent=(int(rng.integers(5, 10)), w), shape=img.shape)
                img[rr, cc] = value
    return torch.from_numpy(out)


def frame(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Against framing shortcuts (profile "frame"): with p = ``P_FRAME`` a random crop inside the figure, the rest
    set to air (moves the body outline and the figure edge), then with p = ``P_FRAME`` a band of air (0) or white (1),
    3-20 % of the side wide, over each of a random subset of the borders (hides the table, captions)."""
    size = images.shape[-1]
    out = images.clone()
    for i in range(out.shape[0]):
        if rng.random() < P_FRAME:  # crop inside the figure (60-100 % of the side each way), keep the pixel scale
            h, w = (rng.uniform(0.6, 1.0, 2) * size).astype(int)
            y0, x0 = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            keep = torch.zeros_like(out[i])
            keep[:, y0:y0 + h, x0:x0 + w] = 1.0
            out[i] = out[i] * keep
        if rng.random() < P_FRAME:  # bands over the borders
            value = float(rng.choice([0.0, 1.0]))
            for side in np.nonzero(rng.random(4) < 0.5)[0]:
                band = int(rng.uniform(0.03, 0.2) * size)
                if side == 0:
                    out[i, :, :band] = value
                elif side == 1:
                    out[i, :, -band:] = value
                elif side == 2:
                    out[i, :, :, :band] = value
                else:
                    out[i, :, :, -band:] = value
    return out


def augment(images: torch.Tensor, rng: np.random.Generator, masks: torch.Tensor | None = None,
            profile: str = "figure"):
    """A randomly transformed copy of a batch of unit squares (and of its masks); see the module doc.

    profile: "paper" (geometry only), "figure" (everything above; the default here), "flips" (horizontal flips only,
    the floor's recipe) or
    "frame" ("flips" plus ``frame``: random crops inside the figure and border bands, against framing shortcuts).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    if profile == "paper":
        return geometric(images, random_affine(images.shape[0], rng), masks)
    if profile in ("flips", "frame"):
        flip = torch.as_tensor(rng.random(images.shape[0]) < 0.5).view(-1, 1, 1, 1)
        out = torch.where(flip, images.flip(-1), images)
        if masks is not None:
            masks = torch.where(flip, masks.flip(-1), masks)
        return (frame(out, rng) if profile == "frame" else out), masks
    out, masks = geometric(images, random_affine(images.shape[0], rng), masks)
    out = window(out, rng)
    out = low_resolution(out, rng)
    out = annotations(out, rng)
    sigma = torch.as_tensor(rng.uniform(0, NOISE_SIGMA, out.shape[0]), dtype=torch.float32).view(-1, 1, 1, 1)
    out = (out + sigma * torch.randn(out.shape, generator=None)).clamp(0.0, 1.0)
    return out, masks
