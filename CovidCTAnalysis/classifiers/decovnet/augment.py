"""DeCoVNet's online augmentation (seed 002, §II-F3).

"random affine transformation and color jittering. The affine transformation was composed of rotation (0 +- 10
degrees), horizontal and vertical translations (0 % +- 10 %), scaling (0 % +- 20 %) and shearing in the width dimension
(0 +- 10 degrees). The color jittering adjusted brightness (0 % +- 50 %) and contrast (0 % +- 30 %). For each
training sample, the parameters were randomly generated and the augmentation was identically applied for each slice."

So one ``AugmentParams`` is drawn per volume and one 2-D affine matrix warps every slice (torch ``affine_grid`` with
the same matrix for all T slices). Choices the paper leaves open:
- brightness multiplies the CT channel by b in [0.5, 1.5]; contrast moves it away from its volume mean by c in
  [0.7, 1.3] (the usual colour-jitter definitions); the result is clipped to 0..1; the lung-mask channel is only
  warped, never jittered, and stays binary (nearest neighbour);
- outside the warped image the CT is 0 (air at the window's low end) and the mask 0;
- translations are fractions of the width and height, the shear is along the width (x) axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROTATION_DEG = 10.0
TRANSLATION = 0.10
SCALE = 0.20
SHEAR_DEG = 10.0
BRIGHTNESS = 0.50
CONTRAST = 0.30


@dataclass(frozen=True)
class AugmentParams:
    rotation_deg: float = 0.0
    translate: tuple[float, float] = (0.0, 0.0)  # fraction of (width, height)
    scale: float = 1.0
    shear_deg: float = 0.0
    brightness: float = 1.0
    contrast: float = 1.0

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "AugmentParams":
        """One random draw within the ranges of §II-F3."""
        u = rng.uniform
        return cls(rotation_deg=u(-ROTATION_DEG, ROTATION_DEG),
                   translate=(u(-TRANSLATION, TRANSLATION), u(-TRANSLATION, TRANSLATION)),
                   scale=u(1 - SCALE, 1 + SCALE), shear_deg=u(-SHEAR_DEG, SHEAR_DEG),
                   brightness=u(1 - BRIGHTNESS, 1 + BRIGHTNESS), contrast=u(1 - CONTRAST, 1 + CONTRAST))

    def matrix(self, height: int, width: int) -> np.ndarray:
        """2x3 matrix mapping output to input coordinates in torch's normalized [-1, 1] frame (``affine_grid``).

        The forward transform (input -> output) = translate * rotate * shear * scale is built in pixel units about
        the image centre (so a rotation stays a rotation on a non-square slice), moved to the normalized frame and
        inverted.
        """
        a = math.radians(self.rotation_deg)
        rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
        shear = np.array([[1, math.tan(math.radians(self.shear_deg)), 0], [0, 1, 0], [0, 0, 1]])
        scale = np.diag([self.scale, self.scale, 1.0])
        move = np.array([[1, 0, self.translate[0] * width], [0, 1, self.translate[1] * height], [0, 0, 1]])
        forward = move @ rot @ shear @ scale
        to_normalized = np.diag([2.0 / width, 2.0 / height, 1.0])
        forward = to_normalized @ forward @ np.linalg.inv(to_normalized)
        return np.linalg.inv(forward)[:2]


def apply(volume: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Augment a (2, T, H, W) input (CT 0..1, lung mask 0/1) with one parameter set for every slice."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(volume), dtype=torch.float32)
    c, t, h, w = x.shape
    slices = x.permute(1, 0, 2, 3)  # (T, 2, H, W): one batch of slices, one matrix for all
    theta = torch.as_tensor(params.matrix(h, w), dtype=torch.float32).expand(t, 2, 3)
    grid = F.affine_grid(theta, (t, c, h, w), align_corners=False)
    ct = F.grid_sample(slices[:, :1], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    mask = F.grid_sample(slices[:, 1:], grid, mode="nearest", padding_mode="zeros", align_corners=False)
    ct = ct * params.brightness
    mean = ct.mean()
    ct = ((ct - mean) * params.contrast + mean).clamp(0.0, 1.0)
    return torch.cat([ct, mask], dim=1).permute(1, 0, 2, 3).contiguous().numpy()


def augment(volume: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, AugmentParams]:
    """Draw parameters once for this volume and apply them to all its slices."""
    params = AugmentParams.draw(rng)
    return apply(volume, params), params
