"""Dense lesions against the costal pleura are lung: two complementary fills, both kept clear of the mediastinum.

The classical failure of threshold-based lung masks (and of networks trained on them; lungmask issue #35) is a
consolidation flush with the chest wall: it is as dense as the intercostal muscles, so the mask stops at the
lesion's inner edge and the lesion falls outside the lung. A closing of the lung mask does not fix this: the ball
escapes into the chest wall and beyond, so it only bridges narrow notches. What we decided, after trying the
alternatives on the imlab CTs (normal lungs: every addition is an error) and on the demo CT (known lesions):

1. Bites (`pleural_bites`). The costal surface follows the rib cage and is convex in every axial slice, so a lesion
   against it leaves a pocket between the lung and its own axial convex hull. Pockets of the hull made by anatomy
   (heart, hilum, vertebral body, aorta) have their mouth - the hull edge closing the pocket - facing the midline;
   the liver dome and the heart inside a thin basal crescent leave wide, large pockets. So a pocket is filled when
   its mouth faces more than `MEDIAL_ANGLE_DEG` away from the medial direction, it is `MIN_DEPTH_MM` to (lung
   thickness) deep, at most `MAX_AREA_CM2` and `MAX_AREA_FRACTION` of the lung section, and its mouth at most
   `MAX_MOUTH_MM` long. Needs no bone, so it also works on display-windowed stacks.
2. Rib-bounded (`rib_bounded`). A lesion that takes a lung's corner (paravertebral gutter) or punches through a
   thin basal crescent leaves no axial pocket. Such tissue still lies *between* the aerated lung and a rib: the
   directions away from the nearest lung voxel and away from the nearest rib voxel are nearly opposite (distance
   maps, SimpleITK). It is filled when, in addition, the gap is wider than the normal pleural layer
   (`MIN_GAP_MM`), it lies inside the lung's own 3-D envelope (a closing with `ENVELOPE_MM`: a lesion has aerated
   lung above, below or around it, the muscles between ribs and scapula have not) and outside the mediastinal column (`MEDIASTINAL_HALF_WIDTH_MM` each side
   of the midline: aorta, oesophagus, heart). Ribs are smoothed-image bone in pieces of at least `MIN_BONE_ML`
   (noise speckles are not bone), outside the spine/sternum column. With the rib cage as the only outer wall and
   no envelope, the imlab CTs lost the chest-wall muscles to the lungs (5 mm slices show fragmentary ribs; the
   scapulae then act as the wall), so the envelope is essential.

Limitations (chosen, documented): a consolidation that replaces a whole dependent lobe (no aerated lung around it)
is neither a bite nor inside the envelope and stays outside - a learned model is needed there; a pleural effusion
that indents the lung is filled like a consolidation (HU cannot tell them apart); lesions against the mediastinal
pleura are left to the closing in `fill.py`.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from .morphology import FACES, IN_PLANE, bounding_box

#: A pocket whose mouth faces within this angle of the midline is mediastinal anatomy (not filled).
MEDIAL_ANGLE_DEG = 50.0
#: Smallest depth (mm) of a pocket worth filling (rib impressions and partial-volume notches are shallower).
MIN_DEPTH_MM = 4.0
#: Largest pocket (cm2 in one slice) taken as a lesion bite.
MAX_AREA_CM2 = 15.0
#: ... and at most this fraction of the lung's own area in that slice ...
MAX_AREA_FRACTION = 0.25
#: ... with a mouth at most this long (mm): the heart and the liver dome leave wide impressions.
MAX_MOUTH_MM = 60.0

#: Rib-bounded fill: the lung's own envelope (a closing with this radius, mm) bounds the search ...
ENVELOPE_MM = 25.0
#: ... bone pieces of at least this volume (ml) away from the midline column (mm) are ribs ...
MIN_BONE_ML = 0.3
SPINE_HALF_WIDTH_MM = 30.0
#: ... nothing is added within this distance (mm) of the midline (aorta, oesophagus, azygos, heart) ...
MEDIASTINAL_HALF_WIDTH_MM = 35.0
#: ... and tissue in a lung-to-rib gap of this width (mm), with lung and rib on opposite sides, is lesion.
MIN_GAP_MM = 7.0
MAX_GAP_MM = 45.0
COS_MIN = 0.5

_FOUR = ndi.generate_binary_structure(2, 1)


def _mouth_faces_midline(xs, ys, centre, spacing_xy, medial_sign: float, cos_limit: float) -> bool:
    """Whether the outward normal of a pocket's mouth (the hull edge closing it) points toward the midline.

    The mouth pixels lie along a straight hull edge (or a few): the normal is perpendicular to their principal
    direction, oriented away from the pocket's centre.
    """
    px = xs * spacing_xy[0]
    py = ys * spacing_xy[1]
    mx, my = px.mean(), py.mean()
    out_x, out_y = mx - centre[1] * spacing_xy[0], my - centre[0] * spacing_xy[1]
    if len(xs) >= 3:
        cov = np.cov(np.stack([px - mx, py - my]))
        w, v = np.linalg.eigh(cov)
        nx, ny = v[0, 0], v[1, 0]  # eigenvector of the smallest eigenvalue: across the edge
        if nx * out_x + ny * out_y < 0:
            nx, ny = -nx, -ny
    else:
        nx, ny = out_x, out_y
    norm = np.hypot(nx, ny)
    return bool(norm > 0 and medial_sign * nx / norm >= cos_limit)


def _pockets_in_slice(lung: np.ndarray, blocked: np.ndarray, spacing_xy, medial_sign: float) -> np.ndarray:
    """Pockets of one lung's convex hull in one axial slice that pass the tests of the module doc."""
    out = np.zeros_like(lung)
    if lung.sum() < 10:
        return out
    hull = convex_hull_image(lung)
    pocket = hull & ~lung & ~blocked
    if not pocket.any():
        return out
    pieces, n = ndi.label(pocket, structure=_FOUR)
    # depth: distance (mm) from outside the hull, measured inside the hull
    depth = ndi.distance_transform_edt(hull, sampling=(spacing_xy[1], spacing_xy[0]))
    outside = ~hull
    mouth = ndi.binary_dilation(outside, structure=_FOUR) & pocket
    pixel_cm2 = spacing_xy[0] * spacing_xy[1] / 100.0
    areas = np.bincount(pieces.ravel(), minlength=n + 1) * pixel_cm2
    max_depth = ndi.maximum(depth, pieces, index=np.arange(1, n + 1))
    cos_limit = np.cos(np.deg2rad(MEDIAL_ANGLE_DEG))
    # a bite is a dent in a lung thicker than the dent is deep, and smaller than the lung's own section: the hull
    # of a thin basal crescent (lung around the liver dome or the stomach) encloses abdomen, not lesion
    lung_area = lung.sum() * pixel_cm2
    lung_thickness = 2.0 * ndi.distance_transform_edt(lung, sampling=(spacing_xy[1], spacing_xy[0])).max()
    for k in range(1, n + 1):
        if areas[k] > min(MAX_AREA_CM2, MAX_AREA_FRACTION * lung_area) or not (
                MIN_DEPTH_MM <= max_depth[k - 1] <= lung_thickness):
            continue
        piece = pieces == k
        ys, xs = np.nonzero(piece & mouth)
        if not len(xs):
            continue  # enclosed: a hole, handled by hole filling
        span = np.hypot(np.ptp(xs) * spacing_xy[0], np.ptp(ys) * spacing_xy[1])
        if span > MAX_MOUTH_MM:
            continue  # an organ's impression (heart, liver dome), not a lesion's bite
        if _mouth_faces_midline(xs, ys, ndi.center_of_mass(piece), spacing_xy, medial_sign, cos_limit):
            continue  # mediastinal anatomy
        out |= piece
    return out


def pleural_bites(labels: np.ndarray, values: np.ndarray, spacing, dense_level: float, bone_level: float,
                  midline_x: float) -> np.ndarray:
    """Labels (1/2) of the voxels in costal bites of each lung (module doc): non-bone, denser than air."""
    out = np.zeros_like(labels)
    tissue = (values >= dense_level) & (values < bone_level)
    for side in (1, 2):
        lung = labels == side
        other = (labels > 0) & ~lung
        zs = np.flatnonzero(lung.any(axis=(1, 2)))
        for z in zs:
            ys, xs = np.nonzero(lung[z])
            # one pixel of margin so that the hull's edge is inside the box (the pockets' mouths must be seen)
            y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, lung.shape[1])
            x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, lung.shape[2])
            box = (slice(y0, y1), slice(x0, x1))
            # the medial direction: toward the body's midline from this lung's centre in this slice
            medial_sign = 1.0 if xs.mean() < midline_x else -1.0
            bite = _pockets_in_slice(lung[z][box], other[z][box], spacing, medial_sign)
            bite &= tissue[z][box]
            sub = out[z][box]
            sub[bite & (sub == 0)] = side
    return out


# ------------------------------------------------------------------------------------------ rib-bounded fill
def _distance(mask: np.ndarray, spacing) -> np.ndarray:
    """Euclidean distance (mm) to the nearest voxel of `mask` (0 inside); SimpleITK's Maurer transform."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing))
    d = sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
    return np.maximum(sitk.GetArrayFromImage(d), 0.0)


def _closing_by_distance(mask: np.ndarray, spacing, radius_mm: float) -> np.ndarray:
    """Exact Euclidean closing with a ball of `radius_mm`, from two distance maps (cost independent of the radius).

    The array is padded by the radius so that nothing is closed against the array's edges."""
    pad = [(0, 0) if n == 1 else (int(np.ceil(radius_mm / s)) + 1,) * 2
           for n, s in zip(mask.shape, (spacing[2], spacing[1], spacing[0]))]
    padded = np.pad(mask, pad)
    dilated = _distance(padded, spacing) <= radius_mm
    closed = _distance(~dilated, spacing) > radius_mm
    return closed[tuple(slice(p[0], p[0] + n) for p, n in zip(pad, mask.shape))]


def _direction(distance: np.ndarray, spacing) -> list[np.ndarray]:
    """Unit vectors (z, y, x components) of the distance map's gradient: away from the nearest mask voxel."""
    step = (spacing[2], spacing[1], spacing[0])
    grads = [np.gradient(distance, step[a], axis=a) if distance.shape[a] > 1 else np.zeros_like(distance)
             for a in range(3)]
    norm = np.sqrt(sum(g * g for g in grads)) + 1e-6
    return [g / norm for g in grads]


def fill_pleural(labels: np.ndarray, values: np.ndarray, spacing, dense_level: float, bone_level: float,
                 body: np.ndarray, midline_x: float) -> np.ndarray:
    """Labels with both pleural fills of the module doc added (bites first, then the rib-bounded fill)."""
    out = labels.copy()
    bites = pleural_bites(out, values, spacing, dense_level, bone_level, midline_x)
    add = (bites > 0) & (out == 0)
    out[add] = bites[add]
    ribs = rib_mask(values, body, spacing, bone_level, midline_x)
    bounded = rib_bounded(out, values, spacing, dense_level, bone_level, ribs, midline_x)
    add = (bounded > 0) & (out == 0)
    out[add] = bounded[add]
    return out


def rib_mask(values: np.ndarray, body: np.ndarray, spacing, bone_level: float, midline_x: float) -> np.ndarray:
    """Bone of the rib cage: the lightly smoothed image above `bone_level`, inside the body, in pieces of at least
    `MIN_BONE_ML` (noise speckles are not bone), outside the midline column (spine, sternum)."""
    smooth = ndi.gaussian_filter(values, [0 if values.shape[0] == 1 else 0.5, 0.7, 0.7])
    bone = (smooth >= bone_level) & body
    structure = ndi.generate_binary_structure(3, 3)
    if values.shape[0] == 1:
        structure[0] = structure[2] = False
    pieces, n = ndi.label(bone, structure=structure)
    if n == 0:
        return bone
    voxel_ml = float(np.prod(spacing)) / 1000.0
    big = np.bincount(pieces.ravel(), minlength=n + 1) * voxel_ml >= MIN_BONE_ML
    big[0] = False
    x_mm = (np.arange(values.shape[2]) - midline_x) * spacing[0]
    return big[pieces] & (np.abs(x_mm) >= SPINE_HALF_WIDTH_MM)[None, None, :]


def rib_bounded(labels: np.ndarray, values: np.ndarray, spacing, dense_level: float, bone_level: float,
                ribs: np.ndarray, midline_x: float) -> np.ndarray:
    """Labels (1/2) of dense voxels lying between a lung and the ribs, inside the lung's envelope (module doc)."""
    out = np.zeros_like(labels)
    if not ribs.any():
        return out
    x_mm = (np.arange(values.shape[2]) - midline_x) * spacing[0]
    lateral = (np.abs(x_mm) >= MEDIASTINAL_HALF_WIDTH_MM)[None, None, :]
    tissue = (values >= dense_level) & (values < bone_level) & lateral & (labels == 0)
    structure = IN_PLANE if labels.shape[0] == 1 else FACES
    margin = tuple(0 if n == 1 else int(np.ceil(MAX_GAP_MM / s)) + 1
                   for n, s in zip(labels.shape, (spacing[2], spacing[1], spacing[0])))
    for side in (1, 2):
        box = bounding_box(labels == side, margin)
        if box is None:
            continue
        lung = labels[box] == side
        envelope = _closing_by_distance(lung, spacing, ENVELOPE_MM)
        candidate = envelope & ~lung & tissue[box]
        if not candidate.any():
            continue
        d_lung = _distance(lung, spacing)
        d_rib = _distance(ribs[box], spacing)
        gap = d_lung + d_rib
        candidate &= (gap >= MIN_GAP_MM) & (gap <= MAX_GAP_MM)
        if not candidate.any():
            continue
        g_lung = _direction(d_lung, spacing)
        g_rib = _direction(d_rib, spacing)
        candidate &= sum(a * b for a, b in zip(g_lung, g_rib)) <= -COS_MIN
        pieces, n = ndi.label(candidate, structure=structure)
        touching = np.zeros(n + 1, bool)
        touching[np.unique(pieces[ndi.binary_dilation(lung, structure=structure) & candidate])] = True
        touching[0] = False
        sub = out[box]
        sub[touching[pieces] & (sub == 0)] = side
    return out
