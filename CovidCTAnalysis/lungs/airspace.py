"""Air inside the body: intensity levels, the air threshold, outside air, and which air pockets are lung.

Air versus tissue is the two-class split that seed 001 (§2.3) makes with k-means on every slice and that the
unsupervised method behind seed 002's lung masks (§II-D, ref. [27]) starts from. On real HU we do not need to learn
the two centres: air is -1000 HU and soft tissue about 0 HU, and the threshold sits half way (-500 HU), the usual
choice of classical lung segmenters. A display-windowed stack (8-bit JPEG/PNG mapped to HU through an *assumed*
window) carries HU only approximately, so there the two centres are measured (k-means with k = 2 on the body's
voxels, as in seed 001) and the same relative threshold is used.

Air pockets inside the body are lung, airway, or gas in the gut. Lung parenchyma holds vessels and interstitium and
so averages about -850 HU on a ~2.5 mm grid, whereas bowel and stomach gas, the trachea and the main bronchi are
almost pure air. We call a pocket lung-like when its volume is not tiny and fewer than `MAX_PURE_AIR_FRACTION` of
its interior voxels are within 5% of the air level. Limitation (chosen, documented): severe emphysema with most
of the lung near -1000 HU would fail this test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..errors import LungsNotFoundError
from .morphology import FACES, IN_PLANE, edge_connected_in_plane, opening

#: Fraction of the air-to-tissue range below which a voxel is "pure air" (-950 HU on real HU).
PURE_AIR_FRACTION = 0.05
#: Relative position of the air threshold between the air and soft-tissue levels (-500 HU on real HU).
AIR_THRESHOLD_FRACTION = 0.5
#: A lung-like pocket has at most this fraction of pure-air voxels in its interior (bowel gas: 0.6-0.97,
#: normal lung on a 2.5-3 mm grid: 0.0-0.11 on the data we measured).
MAX_PURE_AIR_FRACTION = 0.35
#: Smallest lung-like pocket, in ml, or in cm2 per slice for images only a few slices deep.
MIN_LUNG_ML = 15.0
MIN_LUNG_CM2 = 2.0
#: Pure-air blobs from this size (ml, or cm2 per slice for thin images) are tested for a soft-tissue wall ...
MIN_GAS_ML = 1.0
MIN_GAS_CM2 = 0.5
#: ... and are gas (not lung) when at least this fraction of a shell a few mm around them is soft tissue.
GAS_WALL_FRACTION = 0.65
#: The shell: from 5 to 12 mm out (beyond the partial-volume rim of the blob's wall).
GAS_SHELL_MM = (5.0, 12.0)


@dataclass(frozen=True)
class Levels:
    """The air and soft-tissue intensity levels of one image (HU or approximate HU)."""

    air: float
    tissue: float

    def at(self, fraction: float) -> float:
        """The intensity `fraction` of the way from air (0) to soft tissue (1)."""
        return self.air + fraction * (self.tissue - self.air)

    @property
    def threshold(self) -> float:
        return self.at(AIR_THRESHOLD_FRACTION)


def intensity_levels(values: np.ndarray, display_windowed: bool) -> Levels:
    """Air and soft-tissue levels: physical (-1000, 0) HU on real HU, measured by 2-means on display-windowed data.

    For display-windowed data the values at the very bottom of the range (padding outside the scanner's field of
    view, saturated black) are left out before clustering. The low cluster mixes air around the body and lung, so
    its lower quartile is taken as the air level; the high cluster's mean is the soft-tissue level.
    """
    if not display_windowed:
        return Levels(-1000.0, 0.0)
    v = values.ravel()[:: max(1, values.size // 400_000)].astype(np.float64)
    lo, hi = float(v.min()), float(v.max())
    v = v[v > lo + 0.01 * max(hi - lo, 1e-6)]
    if v.size < 100 or np.ptp(v) <= 0:
        raise LungsNotFoundError(None, "no lungs found in the image (no contrast between air and tissue)")
    a, b = np.percentile(v, [10, 90])
    for _ in range(50):  # 1-D k-means (Lloyd) with two centres
        split = 0.5 * (a + b)
        low, high = v[v < split], v[v >= split]
        if not low.size or not high.size:
            break
        na, nb = float(low.mean()), float(high.mean())
        if abs(na - a) < 1e-3 and abs(nb - b) < 1e-3:
            break
        a, b = na, nb
    low = v[v < 0.5 * (a + b)]
    air = float(np.percentile(low, 25)) if low.size else a
    if b - air <= 0:
        raise LungsNotFoundError(None, "no lungs found in the image (no contrast between air and tissue)")
    return Levels(air, float(b))


@dataclass
class AirPockets:
    """Air inside the body and the part of it that is lung-like."""

    inner_air: np.ndarray  # bool (z, y, x): all air except the air around the body
    lungs: np.ndarray  # bool (z, y, x): the lung-like pockets (trachea and bronchi still included)
    n_rejected: int  # pockets rejected as gut gas, trachea or noise
    outside: np.ndarray  # bool (z, y, x): the air around the body


def _min_ml(depth: int, spacing, min_ml: float, min_cm2: float) -> float:
    """Smallest volume (ml) that counts: `min_ml`, or `min_cm2` per slice for images only a few slices deep."""
    return min(min_ml, min_cm2 * depth * spacing[2] / 10.0)


def _pure_air_fractions(values: np.ndarray, labels: np.ndarray, n: int, mask: np.ndarray,
                        pure_level: float) -> np.ndarray:
    """Per label, the fraction of its interior voxels (in-plane eroded) below `pure_level`."""
    interior = ndi.binary_erosion(mask, structure=IN_PLANE)
    interior_labels = labels[interior]
    n_interior = np.bincount(interior_labels, minlength=n + 1)
    n_pure = np.bincount(interior_labels[values[interior] < pure_level], minlength=n + 1)
    # pockets too thin to have an interior are judged on all their voxels
    thin = n_interior < 8
    if thin.any():
        n_interior = np.where(thin, np.bincount(labels.ravel(), minlength=n + 1), n_interior)
        n_pure = np.where(thin, np.bincount(labels[mask & (values < pure_level)], minlength=n + 1), n_pure)
    return n_pure / np.maximum(n_interior, 1)


def _select_lung_like(values: np.ndarray, region: np.ndarray, spacing, levels: Levels,
                      allowed: np.ndarray) -> tuple[np.ndarray, int]:
    """Lung-like pockets of `region`, judged after a one-voxel opening and grown back within `allowed`."""
    structure = IN_PLANE if values.shape[0] == 1 else FACES
    core = opening(region, structure)
    labels, n = ndi.label(core, structure=structure)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    pure_fraction = _pure_air_fractions(values, labels, n, core, levels.at(PURE_AIR_FRACTION))
    size_ok = sizes * float(np.prod(spacing)) / 1000.0 >= _min_ml(values.shape[0], spacing, MIN_LUNG_ML, MIN_LUNG_CM2)
    lung_like = size_ok & (pure_fraction <= MAX_PURE_AIR_FRACTION)
    lung_like[0] = False
    rejected = ~lung_like
    rejected[0] = False
    # grow the lung-like cores back (geodesic reconstruction), keeping clear of the rejected pockets
    barrier = ndi.binary_dilation(rejected[labels], structure=structure) & ~lung_like[labels]
    grown, m = ndi.label(allowed & ~barrier, structure=structure)
    hit = np.zeros(m + 1, dtype=bool)
    hit[np.unique(grown[lung_like[labels]])] = True
    hit[0] = False
    return hit[grown], int(rejected[1:].sum())


def walled_gas(values: np.ndarray, lungs: np.ndarray, spacing, levels: Levels) -> np.ndarray:
    """Pure-air blobs inside `lungs` that are walled by soft tissue: gut gas seen through the diaphragm, trachea.

    A blob of nearly pure air inside the lung candidates is a bulla or a bronchus when lung surrounds it, but the
    stomach bubble or the trachea when, a few millimetres out, soft tissue surrounds most of it. Returns the
    candidate voxels that belong to (or lie within one voxel of) such walled blobs.
    """
    structure = IN_PLANE if values.shape[0] == 1 else FACES
    pure = opening(lungs & (values < levels.at(PURE_AIR_FRACTION)), structure)
    labels, n = ndi.label(pure, structure=structure)
    if n == 0:
        return np.zeros_like(lungs)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    big = sizes * float(np.prod(spacing)) / 1000.0 >= _min_ml(values.shape[0], spacing, MIN_GAS_ML, MIN_GAS_CM2)
    big[0] = False
    if not big.any():
        return np.zeros_like(lungs)
    sampling = (spacing[2], spacing[1], spacing[0])
    distance, nearest = ndi.distance_transform_edt(labels == 0, sampling=sampling, return_indices=True)
    owner = labels[tuple(nearest)]
    inner_mm = max(GAS_SHELL_MM[0], float(min(spacing[:2])))
    outer_mm = max(GAS_SHELL_MM[1], inner_mm + 1.5 * float(max(spacing[:2])))
    shell = (distance > inner_mm) & (distance <= outer_mm)
    wall = shell & (values >= levels.threshold)
    tissue_fraction = np.bincount(owner[wall], minlength=n + 1) / np.maximum(
        np.bincount(owner[shell], minlength=n + 1), 1)
    gas = big & (tissue_fraction >= GAS_WALL_FRACTION)
    gas[0] = False
    return lungs & gas[owner] & (distance <= 1.5 * float(max(spacing[:2])))


def outside_air(air: np.ndarray) -> np.ndarray:
    """Air around the body: air connected, within its axial slice, to the slice's edge.

    Limitation (chosen): a lung cut by the edge of the image (a crop, a field of view narrower than the chest) is
    taken for outside air there. Letting lung-like edge pockets in would also let in the foam of the table and
    the mattress (about -800 HU, textured like lung).
    """
    return edge_connected_in_plane(air)


def find_air_pockets(values: np.ndarray, spacing, levels: Levels) -> AirPockets:
    """Threshold, drop the air around the body (connected to the slice edge), keep the lung-like pockets.

    `spacing` is (x, y, z) in mm. Pockets are judged after an opening (a one-voxel cross) that cuts thin
    partial-volume bridges; the lung-like ones are grown back into the air they connect to, except the vicinity
    of rejected pockets. Pure-air blobs walled by soft tissue (the stomach bubble seen through a thin diaphragm,
    the trachea) are then cut out and the selection is repeated on what is left.
    """
    air = values < levels.threshold
    outside = outside_air(air)
    inner = air & ~outside
    lungs, n_rejected = _select_lung_like(values, inner, spacing, levels, inner)
    gas = walled_gas(values, lungs, spacing, levels)
    if gas.any():
        lungs &= ~gas
        lungs, more = _select_lung_like(values, lungs, spacing, levels, lungs)
        n_rejected += more
    return AirPockets(inner, lungs, n_rejected, outside)
