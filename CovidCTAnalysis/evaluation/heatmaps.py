"""Quality of a classifier's explanation map against where the disease is, for every classifier.

- Pointing game (Zhang et al. 2018): a hit when the map's maximum falls inside the reference mask dilated by
  ``POINTING_TOLERANCE_PX`` pixels (in-plane); the score is the share of images with a hit. A map with no heat
  (all zero) is a miss: it points nowhere.
- Energy lift: (share of the map's mass inside the mask) / (share of the image the mask covers). 1 is what a
  uniform map scores; higher means the map concentrates on the mask. Undefined (None) for a map without mass.
- Mass inside a region (e.g. the lungs of a CT volume): share of the map's mass inside the region.

Maps are non-negative (negative values are clipped to 0 first). Mask and map must be on the same grid.
"""

from __future__ import annotations

import numpy as np

POINTING_TOLERANCE_PX = 5


def _pair(heat, mask) -> tuple[np.ndarray, np.ndarray]:
    h = np.clip(np.asarray(heat, dtype=np.float64), 0.0, None)
    m = np.asarray(mask) > 0
    if h.shape != m.shape:
        raise ValueError(f"map {h.shape} and mask {m.shape} are not on the same grid")
    return h, m


def pointing_hit(heat, mask, tolerance_px: int = POINTING_TOLERANCE_PX) -> bool:
    """Whether the map's maximum lies inside ``mask`` dilated in-plane by ``tolerance_px`` (2-D or (z, y, x))."""
    from scipy import ndimage as ndi

    h, m = _pair(heat, mask)
    if h.max(initial=0.0) <= 0.0:
        return False
    if tolerance_px > 0:
        r = tolerance_px
        yy, xx = np.ogrid[-r:r + 1, -r:r + 1]
        disk = (yy ** 2 + xx ** 2) <= r * r
        m = ndi.binary_dilation(m, structure=disk if m.ndim == 2 else disk[None])
    return bool(m.flat[int(np.argmax(h))])


def mass_inside(heat, region) -> float | None:
    """Share of the map's mass inside ``region``; None for a map without mass."""
    h, m = _pair(heat, region)
    total = h.sum()
    return float(h[m].sum() / total) if total > 0 else None


def energy_lift(heat, mask) -> float | None:
    """(mass share inside ``mask``) / (area share of ``mask``); None without mass or without mask."""
    h, m = _pair(heat, mask)
    share = mass_inside(h, m)
    area = m.mean()
    if share is None or area == 0:
        return None
    return float(share / area)


def summarize(heats, masks, tolerance_px: int = POINTING_TOLERANCE_PX, n_boot: int = 2000, seed: int = 0) -> dict:
    """Pointing game and energy lift over pairs of maps and masks, with percentile bootstrap 95 % CIs (cases
    resampled): {"n", "pointing_game", "pointing_ci95", "energy_lift_mean", "energy_lift_median",
    "energy_lift_ci95", "hits", "lifts"}."""
    hits = np.array([pointing_hit(h, m, tolerance_px) for h, m in zip(heats, masks)], dtype=float)
    lifts = [energy_lift(h, m) for h, m in zip(heats, masks)]
    valid = np.array([v for v in lifts if v is not None], dtype=float)
    rng = np.random.default_rng(seed)

    def ci(values: np.ndarray) -> list[float] | None:
        if values.size < 2:
            return None
        boots = values[rng.integers(0, values.size, (n_boot, values.size))].mean(axis=1)
        return [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]

    return {"n": int(hits.size), "pointing_game": float(hits.mean()) if hits.size else None,
            "pointing_ci95": ci(hits),
            "energy_lift_mean": float(valid.mean()) if valid.size else None,
            "energy_lift_median": float(np.median(valid)) if valid.size else None,
            "energy_lift_ci95": ci(valid), "hits": hits.astype(int).tolist(), "lifts": lifts}
