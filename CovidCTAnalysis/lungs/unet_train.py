"""Training lungs-unet: slices on the network grid, augmentation (with lesions pasted on the pleura), loss, loop.

Seed 002 §II-F3 augments "random affine transformation and color jittering": rotation 0 +- 10 deg, translations
+- 10 %, scaling +- 20 %, shearing +- 10 deg in width; brightness +- 50 %, contrast +- 30 %. We use those ranges on
HU (contrast = a gain on HU around -600, brightness = an offset), plus what our data need (chosen here, not in the
paper):

- left-right flips (the network is binary, sides are assigned after it, so a flip needs no label swap);
- display-window saturation: with probability ``SATURATE_P`` the HU are clipped at a top value in [100, 400]
  (display-windowed JPEG stacks carry no HU above about 150);
- lower resolution: with probability ``BLUR_P`` the slice is shrunk by 1.3-2.5 and enlarged again (128-pixel,
  3 mm CTs);
- noise: Gaussian, sigma 0-30 HU;
- **lesions on the pleura** (issue 3, lungmask issue #35): with probability ``LESION_P`` per slice, 1-3 dense
  (consolidation, -150..60 HU) or ground-glass (-700..-350 HU) blobs are pasted on the costal lung border, centred
  on a border pixel of the lung mask less than ``COSTAL_DEPTH_PX`` from the skin and clipped to the mask, so they
  lie against the chest wall and are labelled lung. (A first run that pasted blobs up to 55 mm on any border, the
  mediastinal one included, learned that soft tissue next to lung is lung: it took pericardial fat and a
  fluid-filled stomach for lung on imlab id002, Dice 0.92. The model card keeps that result.)

Loss: binary cross-entropy plus a soft Dice on the lung (batch-pooled).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from ..models.training import Source, adamw_warmup_cosine, draw_batch, optimize_step
from .unet import HU_WINDOW, INPUT_SIZE, normalize_hu, to_network_grid

LESION_P = 0.5
#: Border pixels at most this deep under the skin (network-grid pixels, ~1.8 mm) are costal pleura.
COSTAL_DEPTH_PX = 25
#: Fraction of the pasted blobs that are dense (consolidation); the others are ground glass.
DENSE_FRACTION = 0.6
#: Blob semi-axes (network-grid pixels).
LESION_RADIUS_PX = (4, 18)
SATURATE_P = 0.4
BLUR_P = 0.3


def volume_to_slices(hu: np.ndarray, lungs: np.ndarray, keep: np.ndarray | None = None):
    """HU (float16) and binary lung targets (uint8) on the network grid for the slices of a (z, y, x) volume."""
    keep = np.arange(hu.shape[0]) if keep is None else np.asarray(keep)
    imgs = np.empty((len(keep), INPUT_SIZE, INPUT_SIZE), np.float16)
    tgts = np.empty((len(keep), INPUT_SIZE, INPUT_SIZE), np.uint8)
    for start in range(0, len(keep), 16):
        sel = keep[start:start + 16]
        x = torch.from_numpy(np.ascontiguousarray(hu[sel], dtype=np.float32))[:, None]
        m = torch.from_numpy((lungs[sel] > 0).astype(np.float32))[:, None]
        imgs[start:start + len(sel)] = to_network_grid(x)[:, 0].numpy().astype(np.float16)
        tgts[start:start + len(sel)] = (to_network_grid(m, pad_value=0.0)[:, 0] >= 0.5).numpy()
    return imgs, tgts


def paste_pleural_lesions(hu: np.ndarray, lung: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of one HU slice with 1-3 dense or ground-glass blobs on the lung border (inside the lung mask)."""
    out = hu.astype(np.float32, copy=True)
    if lung.sum() < 200:
        return out
    border = lung & ~ndi.binary_erosion(lung)
    body = ndi.binary_fill_holes(out > -500.0)
    border &= ndi.distance_transform_edt(body) < COSTAL_DEPTH_PX
    ys, xs = np.nonzero(border)
    if len(ys) == 0:
        return out
    yy, xx = np.mgrid[0:lung.shape[0], 0:lung.shape[1]]
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(len(ys)))
        ry, rx = rng.uniform(*LESION_RADIUS_PX, size=2)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - ys[k], xx - xs[k]
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        blob = ((u / rx) ** 2 + (v / ry) ** 2 <= 1.0) & lung
        if not blob.any():
            continue
        dense = rng.random() < DENSE_FRACTION
        level = rng.uniform(-150, 60) if dense else rng.uniform(-700, -350)
        alpha = ndi.gaussian_filter(blob.astype(np.float32), 1.0) * lung
        texture = level + rng.normal(0, 25, size=out.shape).astype(np.float32)
        out = np.where(blob, (1 - alpha) * out + alpha * texture, out)
    return out


def _affine(batch: int, gen: torch.Generator) -> torch.Tensor:
    """Random 2x3 affine matrices (rotation 10 deg, scale 20 %, translation 10 %, shear 10 deg: §II-F3)."""
    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(batch, generator=gen)

    rot = u(-10, 10) * math.pi / 180
    scale = u(0.8, 1.2)
    shear = u(-10, 10) * math.pi / 180
    tx, ty = u(-0.1, 0.1), u(-0.1, 0.1)
    cos, sin = torch.cos(rot), torch.sin(rot)
    a = torch.zeros(batch, 2, 3)
    a[:, 0, 0] = cos / scale
    a[:, 0, 1] = (-sin + torch.tan(shear) * cos) / scale
    a[:, 1, 0] = sin / scale
    a[:, 1, 1] = (cos + torch.tan(shear) * sin) / scale
    a[:, 0, 2] = tx
    a[:, 1, 2] = ty
    return a


def augment_batch(hu: torch.Tensor, target: torch.Tensor, gen: torch.Generator, crop: int | None = None):
    """Augmented network input ([B, 1, S, S] normalized) and target ([B, S, S] float 0/1) from HU slices."""
    b = hu.shape[0]

    def u(lo, hi, n=b):
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    # intensity on HU: contrast (gain around -600 HU), brightness (offset), display-window saturation, noise
    gain = u(0.85, 1.15)[:, None, None, None]
    offset = u(-60, 60)[:, None, None, None]
    x = (hu + 600.0) * gain - 600.0 + offset
    sat = torch.rand(b, generator=gen) < SATURATE_P
    top = torch.where(sat, u(100, 400), torch.full((b,), HU_WINDOW[1]))[:, None, None, None]
    x = torch.minimum(x, top)
    x = x + torch.randn(x.shape, generator=gen) * u(0, 30)[:, None, None, None]
    x = normalize_hu(x)
    # resolution
    for i in torch.nonzero(torch.rand(b, generator=gen) < BLUR_P).flatten().tolist():
        f = float(u(1.3, 2.5, 1))
        small = F.interpolate(x[i:i + 1], scale_factor=1 / f, mode="bilinear", antialias=True, align_corners=False)
        x[i:i + 1] = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
    # geometry: affine (padding 0 = air after normalization), left-right flip
    grid = F.affine_grid(_affine(b, gen), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    y = F.grid_sample(target[:, None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    flip = torch.rand(b, generator=gen) < 0.5
    x[flip] = x[flip].flip(-1)
    y[flip] = y[flip].flip(-1)
    y = (y[:, 0] >= 0.5).float()
    if crop is not None and crop < x.shape[-1]:
        oy, ox = (int(torch.randint(0, x.shape[-1] - crop + 1, (1,), generator=gen)) for _ in range(2))
        x, y = x[..., oy:oy + crop, ox:ox + crop], y[..., oy:oy + crop, ox:ox + crop]
    return x, y


def lung_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy + soft Dice (batch-pooled) of lung logits [B, 1, H, W] against a 0/1 target [B, H, W]."""
    logits = logits.float()[:, 0]
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def train(net, sources: list[Source], iterations: int, *, lr: float = 2e-3, batch: int = 12, crop: int | None = 160,
          seed: int = 0, log=print) -> dict:
    """AdamW, 5 % linear warm-up, cosine decay; each slice of a batch drawn from a source by weight; bf16 autocast
    on CPUs that have it."""
    from ..models.device import bf16_supported

    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt, sched = adamw_warmup_cosine(net, lr, iterations)
    bf16 = bf16_supported(torch.device("cpu"))
    net.train()
    t0 = time.time()
    running, curve = [], []

    def with_lesions(img, tgt, rng):
        return paste_pleural_lesions(img, tgt > 0, rng) if tgt.any() and rng.random() < LESION_P else img

    for it in range(iterations):
        imgs, tgts = draw_batch(sources, rng, batch, with_lesions)
        x = torch.from_numpy(imgs)[:, None]
        y = torch.from_numpy(tgts)
        x, y = augment_batch(x, y, gen, crop)
        running.append(optimize_step(net, opt, sched, x, y, lung_loss, bf16))
        if (it + 1) % 25 == 0 or it + 1 == iterations:
            curve.append([it + 1, round(float(np.mean(running[-25:])), 4), round(time.time() - t0, 1)])
            log(f"iteration {it + 1}/{iterations} loss {curve[-1][1]:.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{curve[-1][2]:.0f} s")
    net.eval()
    return {"iterations": iterations, "lr": lr, "batch": batch, "crop": crop, "seed": seed,
            "seconds": round(time.time() - t0, 1), "final_loss": float(np.mean(running[-25:])), "loss_curve": curve}
