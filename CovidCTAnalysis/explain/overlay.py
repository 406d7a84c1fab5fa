"""Heatmap overlays for figures and reports (no matplotlib needed: a fixed 'jet'-like colour ramp)."""

from __future__ import annotations

import numpy as np


def heat_colors(heat: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB float (blue - cyan - yellow - red), the usual CAM ramp."""
    h = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4 * h - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * h - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * h - 1), 0, 1)
    return np.stack([r, g, b], axis=-1)


def overlay_rgb(gray: np.ndarray, heat: np.ndarray, alpha: float = 0.5, floor: float = 0.15) -> np.ndarray:
    """Blend a [0, 1] heatmap over a [0, 1] gray image; heat below ``floor`` leaves the image untouched. uint8 RGB."""
    g = np.clip(np.asarray(gray, dtype=np.float32), 0.0, 1.0)[..., None].repeat(3, axis=-1)
    h = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    a = np.where(h > floor, alpha * np.sqrt(h), 0.0)[..., None]
    out = (1 - a) * g + a * heat_colors(h)
    return np.rint(out * 255).astype(np.uint8)
