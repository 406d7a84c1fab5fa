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
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import LungsNotFoundError
from .morphology import FACES, IN_PLANE, dilate, edge_connected_in_plane, fill_holes_in_plane, opening

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
#: Outside air is flooded from the image edge through voxels below this fraction of the air-to-tissue range
#: (-950 HU on real HU, like ``PURE_AIR_FRACTION``; lung parenchyma is about -850 HU on the coarse grid) ...
OUTSIDE_AIR_FRACTION = 0.05
#: ... and grown this far over the partial-volume rim of the skin.
OUTSIDE_RIM_MM = 5.0
#: Edge-touching air not reached so is lung cut by the image edge when at least this fraction of the ring
#: `EDGE_POCKET_RING_MM` around it (the image edge excluded) is tissue rather than outside air.
EDGE_POCKET_WALL_FRACTION = 0.7
EDGE_POCKET_RING_MM = 5.0
#: ... and is not a band from side to side (`_side_to_side_bands`: table foam).
BAND_ROW_COVER = 0.9
BAND_ROW_FRACTION = 0.5
#: ... and lies inside the body's outline (`_inside_body_outline`): at least this fraction of it inside the convex
#: hull of its slice's tissue after an in-plane opening of this radius (which removes a table's thin shell).
BODY_HULL_FRACTION = 0.5
BODY_OPENING_MM = 2.0


@dataclass(frozen=True)
class Levels:
    """The air and soft-tissue intensity levels of one image (HU or approximate HU), and the darkest air seen.

    ``floor`` (display-windowed images only) is where the "nearly pure air" tests measure from: a tight crop of a
    figure may hold no air but lung, whose darker quarter then sets ``air``; measured from there, a third of the lung
    would count as pure air and the lung would be rejected as gas.
    """

    air: float
    tissue: float
    floor: float | None = None

    def at(self, fraction: float) -> float:
        """The intensity `fraction` of the way from air (0) to soft tissue (1)."""
        return self.air + fraction * (self.tissue - self.air)

    def pure(self, fraction: float) -> float:
        """The intensity `fraction` of the way from the darkest air (``floor``, else ``air``) to soft tissue."""
        base = self.air if self.floor is None else min(self.floor, self.air)
        return base + fraction * (self.tissue - base)

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
    air, floor = (float(q) for q in np.percentile(low, [25, 1])) if low.size else (a, a)
    if b - air <= 0:
        raise LungsNotFoundError(None, "no lungs found in the image (no contrast between air and tissue)")
    return Levels(air, float(b), floor)


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
    pure_fraction = _pure_air_fractions(values, labels, n, core, levels.pure(PURE_AIR_FRACTION))
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
    pure = opening(lungs & (values < levels.pure(PURE_AIR_FRACTION)), structure)
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


def outside_air(values: np.ndarray, air: np.ndarray, spacing, levels: Levels) -> np.ndarray:
    """Air around the body: the air of each axial slice reached from the slice's edge through nearly pure air.

    The air around the patient is pure (-1000 HU; on a figure the black background), whereas lung parenchyma
    averages about -850 HU. So outside air is flooded from the slice edge through voxels below
    `OUTSIDE_AIR_FRACTION` of the air-to-tissue range (after an opening, so that scattered pure voxels of a lung
    cannot carry the flood inside) and grown `OUTSIDE_RIM_MM` over the partial-volume rim of the skin. Edge-touching
    air left over is a lung cut by the edge of the image (a tight crop, a narrow field of view) when tissue walls it
    in: tissue makes up `EDGE_POCKET_WALL_FRACTION` of the ring `EDGE_POCKET_RING_MM` around it, and of that ring's
    part along the image sides the pocket touches (a cut lung lies between the cut chest walls). The foam of the
    table and the mattress, textured like lung, stays outside: in a full field of view it meets the outside air, in
    a crop narrower than the patient it is a band from side to side (`_side_to_side_bands`), and where the back lies
    on a curved table it is an arc between the body and the table, not between walls of the body
    (`_inside_body_outline`). `spacing` is (x, y, z) in mm.
    """
    edge = edge_connected_in_plane(air)
    if not edge.any():
        return edge
    pure = opening(values < levels.pure(OUTSIDE_AIR_FRACTION), IN_PLANE) & edge
    flooded = edge_connected_in_plane(pure)
    outside = edge & (flooded | dilate(flooded, spacing, OUTSIDE_RIM_MM, in_plane_only=True))
    left = edge & ~outside
    # judged with their holes (vessels, lesions) filled, so that the ring is what lies around them
    pockets, n = ndi.label(fill_holes_in_plane(left), structure=IN_PLANE)
    if n == 0:
        return outside
    ring = dilate(pockets > 0, spacing, EDGE_POCKET_RING_MM, in_plane_only=True) & (pockets == 0)
    owner = ndi.grey_dilation(pockets, footprint=_ring_footprint(spacing)) * ring
    walled = _walled(owner, ~air, outside, n) & _walled(_along_the_cut(owner, pockets, n), ~air, outside, n)
    walled &= ~_side_to_side_bands(pockets, n)
    if walled.any():
        walled &= _inside_body_outline(np.where(walled[pockets], pockets, 0), n, ~air, spacing)
    return outside | left & ~walled[pockets]


def _along_the_cut(owner: np.ndarray, pockets: np.ndarray, n: int) -> np.ndarray:
    """`owner` kept on the image sides only, each side for the pockets that touch it: what lies along the image's
    edge beyond the ends of the cut (for a cut lung, the cut chest wall)."""
    out = np.zeros_like(owner)
    for side in (np.s_[:, 0, :], np.s_[:, -1, :], np.s_[:, :, 0], np.s_[:, :, -1]):
        touches = np.zeros(n + 1, bool)
        touches[np.unique(pockets[side])] = True
        touches[0] = False
        out[side] = np.where(touches[owner[side]], owner[side], 0)
    return out


def _walled(owner: np.ndarray, tissue: np.ndarray, outside: np.ndarray, n: int) -> np.ndarray:
    """Per pocket (1..n, the label `owner` gives its ring's voxels): tissue, not outside air, makes up its ring."""
    wall = np.bincount(owner[(owner > 0) & tissue], minlength=n + 1)
    open_air = np.bincount(owner[(owner > 0) & outside], minlength=n + 1)
    walled = wall >= EDGE_POCKET_WALL_FRACTION * np.maximum(wall + open_air, 1)
    walled[0] = False
    return walled


def _side_to_side_bands(pockets: np.ndarray, n: int) -> np.ndarray:
    """Per pocket (1..n): a band running from the right to the left side of its slice in most of its rows (at least
    `BAND_ROW_FRACTION` of them covered, holes filled, over `BAND_ROW_COVER` of the width): the foam between the
    back and the table in a crop narrower than the patient. A lung touches one side of a crop (the side that cut
    it); both lungs joined at the anterior junction touch both sides, but in a few rows only."""
    hit = np.zeros(n + 1, bool)
    hit[np.intersect1d(pockets[:, :, 0], pockets[:, :, -1])] = True
    hit[0] = False
    for k in np.flatnonzero(hit):
        cover = (pockets == k).sum(axis=2) / pockets.shape[2]  # (z, y): fraction of each row
        rows = cover > 0
        hit[k] = (cover >= BAND_ROW_COVER).sum() >= BAND_ROW_FRACTION * rows.sum()
    return hit


def _inside_body_outline(pockets: np.ndarray, n: int, tissue: np.ndarray, spacing) -> np.ndarray:
    """Per pocket (1..n): at least `BODY_HULL_FRACTION` of it lies inside the convex hull of its slices' body.

    A lung cut by the image edge lies inside the body's outline (between the cut chest walls). The mattress under
    a patient on a curved table, and a figure's black corners, lie outside it: between the body and the table's
    thin shell, which the opening that defines the body removes (`BODY_OPENING_MM`), or beyond the skin.
    The price: a crop cut deep into the lungs from all four sides, which shows the mediastinum and no chest wall,
    loses the lung parts outside the mediastinum's hull (measured in the lungs-classic card).
    """
    from skimage.morphology import convex_hull_image

    zs = np.flatnonzero(pockets.reshape(pockets.shape[0], -1).any(axis=1))
    r = [max(1, int(round(BODY_OPENING_MM / s))) for s in spacing[:2]] + [0]
    body = sitk.BinaryMorphologicalOpening(sitk.GetImageFromArray(tissue[zs].astype(np.uint8)), r, sitk.sitkBall)
    body = sitk.GetArrayViewFromImage(body) > 0
    inside = np.zeros(n + 1, np.int64)
    for k, z in enumerate(zs):
        if body[k].any():
            hull = convex_hull_image(body[k])
            inside += np.bincount(pockets[z][hull], minlength=n + 1)
    size = np.bincount(pockets[zs].ravel(), minlength=n + 1)
    keep = inside >= BODY_HULL_FRACTION * np.maximum(size, 1)
    keep[0] = False
    return keep


def _ring_footprint(spacing) -> np.ndarray:
    """In-plane footprint reaching `EDGE_POCKET_RING_MM` (one slice deep), to hand each ring voxel its pocket."""
    ry, rx = (max(1, int(round(EDGE_POCKET_RING_MM / s))) for s in (spacing[1], spacing[0]))
    y, x = np.ogrid[-ry: ry + 1, -rx: rx + 1]
    return ((y / ry) ** 2 + (x / rx) ** 2 <= 1.0)[None]


def find_air_pockets(values: np.ndarray, spacing, levels: Levels) -> AirPockets:
    """Threshold, drop the air around the body (`outside_air`), keep the lung-like pockets.

    `spacing` is (x, y, z) in mm. Pockets are judged after an opening (a one-voxel cross) that cuts thin
    partial-volume bridges; the lung-like ones are grown back into the air they connect to, except the vicinity
    of rejected pockets. Pure-air blobs walled by soft tissue (the stomach bubble seen through a thin diaphragm,
    the trachea) are then cut out and the selection is repeated on what is left.
    """
    air = values < levels.threshold
    outside = outside_air(values, air, spacing, levels)
    inner = air & ~outside
    lungs, n_rejected = _select_lung_like(values, inner, spacing, levels, inner)
    gas = walled_gas(values, lungs, spacing, levels)
    if gas.any():
        lungs &= ~gas
        lungs, more = _select_lung_like(values, lungs, spacing, levels, lungs)
        n_rejected += more
    return AirPockets(inner, lungs, n_rejected, outside)
