"""Right/left lung separation that survives lungs touching at the anterior or posterior junction.

Two lungs that touch (the anterior junction line is two pleural layers thin, and on a coarse grid partial volume
fills it with lung-like values) form one connected component. Cutting at the narrowest neck of that component
is not safe: a lung can have a neck narrower than a long junction. The junction is, however, always near the
midline and always a little brighter than the lungs on either side. So the joined component is split by a
marker-based watershed on the image itself: the markers are the component's voxels well right and well left of the
body's midline, the floods run through dark lung and meet on the bright junction line (a low ridge added along the
midline decides where partial volume hides the junction). The part at lower x
(patient's right in LPS) is label 1, the other label 2 (docs/CONTRACTS.md).

A component across the midline is not always two lungs: when the field of view cuts the body off at one side (or
after a pneumonectomy) the view may hold one lung, and the body's mean x, taken for the midline, then runs through
it. Two joined lungs fall apart into two pieces side by side in many axial slices (below the junctions the heart lies
between them), so a component is split only when such slices hold `TWO_LUNG_SLICE_FRACTION` of it; else it is one
lung. A one-slice or short input shows too few slices to tell: it is one lung only when the body is cut by one side
edge of the image. One lung takes the side of the other lung's component when that is in view, else the side whose
chest wall is in view (the body is cut at the other side), else the side of the midline most of it lies on. Where the
body is cut at one side the two lungs are parted half way between them (median over the slices where they lie apart)
instead of at the body's mean x.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..labels import LEFT_LUNG, RIGHT_LUNG
from .morphology import FACES, IN_PLANE

#: A component is "both lungs" when at least this fraction of it lies on each side of the midline.
JOINED_SIDE_FRACTION = 0.2
#: Voxels further than this (mm) from the body's midline seed the watershed of their side.
MARKER_OFFSET_MM = 25.0
#: Height (HU) of the ridge along the midline added to the watershed relief (a visible junction line is higher).
MIDLINE_RIDGE = 60.0
#: A component across the midline is two lungs when at least this fraction of it lies in axial slices where it falls
#: apart into two pieces side by side (measured: demo CTs seeds 0-2 and imlab 001/002, 0.66-0.75; cropped to one lung,
#: at most 0.013; with a strip 6-12 voxels wide of the other lung in view, 0.001-0.72: a strip too thin to show
#: joins the lung beside it; the touching ellipsoids of test_lungs_split, 0.22) ...
TWO_LUNG_SLICE_FRACTION = 0.05
#: ... pieces side by side: x-extents apart, the smaller at least this fraction of the larger.
SIDE_PIECE_FRACTION = 0.03
#: Without such slices a component is one lung only when at least this tall (mm): a short stack may lie wholly at the
#: junction.
MIN_EVIDENCE_HEIGHT_MM = 100.0
#: The body is cut by a side edge of the image when it covers at least this length (mm) of the edge column ...
CUT_EDGE_MM = 50.0
#: ... in at least this fraction of the slices holding lung.
CUT_SLICE_FRACTION = 0.5
#: A second lung-like component at least this fraction of the largest is the other lung.
SECOND_LUNG_FRACTION = 0.1


def _side_fractions(mask: np.ndarray, midline_x: float) -> tuple[float, float]:
    counts = mask.sum(axis=(0, 1))
    total = max(int(counts.sum()), 1)
    right = counts[: int(np.floor(midline_x)) + 1].sum() / total
    return float(right), float(1.0 - right)


def _split_joined(mask: np.ndarray, values: np.ndarray, spacing, midline_x: float) -> np.ndarray:
    """Labels 1/2 for a component holding both lungs: watershed from the parts well away from the midline.

    Markers: the component's voxels more than `MARKER_OFFSET_MM` right (label 1) or left (label 2) of the
    midline. The relief is the image itself: flooding proceeds through the dark lung and the two floods meet on the
    brighter junction line (two pleural layers), wherever it runs.
    """
    x_mm = (np.arange(mask.shape[2]) - midline_x) * spacing[0]
    markers = np.zeros(mask.shape, np.uint8)
    markers[mask & (x_mm < -MARKER_OFFSET_MM)[None, None, :]] = RIGHT_LUNG
    markers[mask & (x_mm > MARKER_OFFSET_MM)[None, None, :]] = LEFT_LUNG
    # lightly smoothed so that noise and parenchymal texture do not steer the floods, plus a low ridge along the
    # midline so that where partial volume hides the junction the floods meet at the midline
    smooth = ndi.gaussian_filter(values.astype(np.float32), [0 if mask.shape[0] == 1 else 1.0, 1.0, 1.0])
    ridge = MIDLINE_RIDGE * np.clip(1.0 - np.abs(x_mm) / MARKER_OFFSET_MM, 0.0, 1.0)
    relief = np.where(mask, smooth + ridge[None, None, :].astype(np.float32), np.float32(1e4)).astype(np.float32)
    ws = sitk.MorphologicalWatershedFromMarkers(sitk.GetImageFromArray(relief), sitk.GetImageFromArray(markers),
                                                markWatershedLine=False, fullyConnected=False)
    out = sitk.GetArrayFromImage(ws).astype(np.uint8)
    out[~mask] = 0
    return out


def body_cut_sides(body: np.ndarray, lungs: np.ndarray, spacing) -> tuple[bool, bool]:
    """Whether the body runs off the image's low-x and high-x edges (`CUT_EDGE_MM`) in the slices holding lung."""
    slices = lungs.any(axis=(1, 2))
    if not slices.any():
        return False, False
    edge_mm = body[slices][:, :, [0, -1]].sum(axis=1) * float(spacing[1])  # (slices, 2): body along each edge
    low, high = (edge_mm >= CUT_EDGE_MM).mean(axis=0) >= CUT_SLICE_FRACTION
    return bool(low), bool(high)


def _side_by_side(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axial slices (z indices) whose two largest in-plane pieces of `mask` lie side by side (x-extents apart, the
    smaller at least `SIDE_PIECE_FRACTION` of the larger), and the x (voxels) half way between the two in each."""
    pieces, n = ndi.label(mask, structure=IN_PLANE)
    if n < 2:
        return np.zeros(0, int), np.zeros(0)
    size = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    boxes = ndi.find_objects(pieces)
    z = np.array([b[0].start for b in boxes])
    x0, x1 = np.array([b[2].start for b in boxes]), np.array([b[2].stop for b in boxes])
    order = np.lexsort((-size, z))  # by slice, the largest piece first
    zs, first = np.unique(z[order], return_index=True)
    second = np.minimum(first + 1, n - 1)
    a, b = order[first], order[second]
    lo, hi = np.where(x0[a] <= x0[b], a, b), np.where(x0[a] <= x0[b], b, a)
    apart = (z[b] == zs) & (a != b) & (size[b] >= SIDE_PIECE_FRACTION * size[a]) & (x1[lo] <= x0[hi])
    return zs[apart], 0.5 * (x1[lo] - 1 + x0[hi])[apart]


def _holds_two_lungs(mask: np.ndarray, spacing, body_cut) -> bool:
    """Whether a component across the midline is two lungs rather than one (module docstring)."""
    zs, _ = _side_by_side(mask)
    per_slice = mask.sum(axis=(1, 2))
    if per_slice[zs].sum() >= TWO_LUNG_SLICE_FRACTION * per_slice.sum():
        return True
    held = np.flatnonzero(per_slice)
    if (held[-1] - held[0] + 1) * float(spacing[2]) >= MIN_EVIDENCE_HEIGHT_MM:
        return False
    return body_cut[0] == body_cut[1]  # too few slices to tell: one lung only in a view cut at one side


def _one_lung_side(mask: np.ndarray, second: np.ndarray, midline_x: float, body_cut) -> int:
    """The side of one lung: beside the other lung (`second`, the next largest component) when that is in view, else
    the side whose chest wall is in view, else the side of the midline most of it lies on."""
    if second.sum() >= SECOND_LUNG_FRACTION * mask.sum():
        return RIGHT_LUNG if ndi.center_of_mass(mask)[2] < ndi.center_of_mass(second)[2] else LEFT_LUNG
    if body_cut[0] != body_cut[1]:
        return LEFT_LUNG if body_cut[0] else RIGHT_LUNG
    right_frac, left_frac = _side_fractions(mask, midline_x)
    return RIGHT_LUNG if right_frac > left_frac else LEFT_LUNG


def split_right_left(lungs: np.ndarray, values: np.ndarray, spacing, midline_x: float,
                     body_cut: tuple[bool, bool] = (False, False)) -> np.ndarray:
    """uint8 labels (0, 1 right, 2 left) from a lung mask whose lungs may touch; `midline_x` in voxels.

    body_cut: whether the body runs off the image's low-x and high-x edges (`body_cut_sides`): the midline is then
    not the body's centre, and a view cut at one side that holds one lung holds the lung of the other side.
    """
    structure = IN_PLANE if lungs.shape[0] == 1 else FACES
    out = np.zeros(lungs.shape, np.uint8)
    lab, n = ndi.label(lungs, structure=structure)
    if n == 0:
        return out
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    first = lab == largest
    right_frac, left_frac = _side_fractions(first, midline_x)
    one_lung = None  # the side of the largest component when it is one lung lying across the midline
    if min(right_frac, left_frac) >= JOINED_SIDE_FRACTION:
        if _holds_two_lungs(first, spacing, body_cut):
            if body_cut[0] != body_cut[1]:  # the body's mean x is off its centre: part half way between the lungs
                _, gaps = _side_by_side(first)
                midline_x = float(np.median(gaps)) if gaps.size else midline_x
            out = _split_joined(first, values, spacing, midline_x)
            if not out.any():  # no part lies far enough from the midline to seed a side: a small midline blob
                one_lung = RIGHT_LUNG if right_frac > left_frac else LEFT_LUNG
                out[first] = one_lung
        else:
            sizes[largest] = 0
            second = lab == int(np.argmax(sizes)) if sizes.any() else np.zeros(lungs.shape, bool)
            one_lung = _one_lung_side(first, second, midline_x, body_cut)
            out[first] = one_lung
    else:
        out[first] = RIGHT_LUNG if right_frac > left_frac else LEFT_LUNG
    # every other lung-like part joins the lung on its side of the midline; beside one lung across the midline, it
    # joins that lung unless it lies beyond the lung's medial edge
    other = lungs & ~first
    if other.any():
        olab, on = ndi.label(other, structure=structure)
        centres = ndi.center_of_mass(other, olab, range(1, on + 1))
        xs = np.flatnonzero(first.any(axis=(0, 1)))
        for k, c in enumerate(centres, start=1):
            if one_lung is None:
                out[olab == k] = RIGHT_LUNG if c[2] < midline_x else LEFT_LUNG
            elif (c[2] > xs[-1]) if one_lung == RIGHT_LUNG else (c[2] < xs[0]):
                out[olab == k] = LEFT_LUNG if one_lung == RIGHT_LUNG else RIGHT_LUNG
            else:
                out[olab == k] = one_lung
    return out
