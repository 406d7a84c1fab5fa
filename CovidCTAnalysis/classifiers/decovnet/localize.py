"""Weakly-supervised lesion localization and the lesion hit rate of DeCoVNet (seed 002, §II-E, Fig. 3, §II-H).

§II-E: CAM regions from DeCoVNet "had a good recall, but ... many false positive predictions"; "3DCC activation" from
the unsupervised lung segmentation: "the variance (including the standard deviation and the number of connected
components) in a 7x7 window for each pixel"; "the 3DCC activation region with the largest size was selected and
termed as R_3dcc. Lastly, the CAM activation region that had the largest overlap with R_3dcc was selected as the
final COVID-19 lesion localization result."

Our reading, step by step (everything on the model grid, see ``inputs.py``):

1. CAM: §III-D applies CAM "on the deep feature before the progressive classifier and the weights in the final fully
   connected layer". The FC weights score the progressive classifier's last features, not the ResBlocks' output
   before it, so the map on that output weights its channels by the mean gradient of the COVID-19 evidence (the
   COVID-19 logit minus the non-COVID one): Grad-CAM, CAM's generalization to such a layer (``infer.CAM_LAYER``
   "backbone", the default). CAM as Zhou et al. define it, on the classifier's last features with the FC weights
   ``w[1] - w[0]``, is ``infer.CAM_LAYER`` "classifier". Either way negative evidence is set to 0, the map is scaled
   to max 1 and upsampled (trilinear) to the input grid. The default was chosen on the training split (below).
2. CAM activation regions: 3-D connected components of CAM >= ``CAM_THRESHOLD`` (half the maximum).
3. 3DCC activation: the unsupervised segmentation is the threshold at ``AIR_HU`` (-600 HU, the binarization of the
   classical lung segmentation the paper cites, Liao et al. [27]) inside the lung mask: lung air vs anything
   denser (vessels, lesions). For each voxel, the standard deviation of that binary map in a 7x7 in-plane window,
   counted over lung voxels only (so the lung border itself is not an edge). A binary map's standard deviation
   sqrt(p (1 - p)) is high where air and dense tissue mix within the window - the ragged, partly aerated texture of
   ground glass and the rims of consolidations - and low in clean parenchyma and around vessels crossing the slice.
   The activation is 2 x std (0..1), kind "std"; the paper also names "the number of connected components" in the
   window: kind "std-cc" multiplies the std by the count of dense components in the window (``component_count``).
4. 3DCC activation regions: 3-D components (26-connected) of activation >= ``ACTIVATION_THRESHOLDS[kind]``; R_3dcc
   is the largest.
5. The localized lesion is the CAM region with the largest overlap (voxels) with R_3dcc; when no CAM region
   touches R_3dcc (or there is no R_3dcc) nothing is localized (``VARIANT`` "cam+3dcc", the paper). Variant
   "cam+3dcc+fallback" takes the CAM region holding the CAM maximum then (our addition; ``source`` says which).
   Its centre of mass is the lesion point. CAM regions (step 2) are taken inside the lung mask, on the CAM scaled
   to its in-lung maximum (``lung_cam``: a lesion is a lung finding); the heatmap output stays the whole map.

The CAM layer, the activation kind and its threshold were chosen on the training split of the semi-synthetic set by
the hit rate of step 5 (``scripts/decovnet_localization.py``, which then reports Table V on the test split): the
backbone layer (0.92 against 0.46 for the classifier layer), "std" at 0.6 (24 of 26 hits; "std-cc" at best 23).

Hit rate (§II-H, after Oquab et al. [31]): for each case predicted positive that is truly positive, a hit when the
centre of the most confident 3-D lesion (the localized region) lies inside any annotated box; hits / true positives.
Boxes are physical (LPS mm, voxel edges), so a centre from any grid compares with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from .inputs import WINDOW_HU

CAM_THRESHOLD = 0.5
AIR_HU = -600.0
WINDOW = 7
MIN_LUNG_FRACTION = 0.25  # a window must hold this much lung for its standard deviation to count

_CONNECT_26 = np.ones((3, 3, 3), bool)


def upsample(volume: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Trilinear resize of a (t, h, w) map to ``shape`` (half-pixel aligned, as the network's pooling)."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(volume, np.float32))[None, None]
    return F.interpolate(x, size=tuple(int(s) for s in shape), mode="trilinear", align_corners=False)[0, 0].numpy()


def regions(binary: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected 3-D components: (labels, count)."""
    return ndi.label(binary, structure=_CONNECT_26)


def largest_region(binary: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of ``binary`` (all False when empty)."""
    labels, n = regions(binary)
    if n == 0:
        return np.zeros(binary.shape, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _box_sum(values: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Per slice, the sum of ``values`` (t, h, w) over rows i + rows[0] .. i + rows[1] and columns j + cols[0] ..
    j + cols[1] (values outside the array count 0); output (t, h, w)."""
    t, h, w = values.shape
    (r0, r1), (c0, c1) = rows, cols
    padded = np.zeros((t, h + r1 - r0 + 1, w + c1 - c0 + 1), np.float64)
    padded[:, -r0:-r0 + h, -c0:-c0 + w] = values  # padded row i - r0 holds row i
    c = np.pad(padded.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
    hr, hc = r1 - r0 + 1, c1 - c0 + 1
    return (c[:, hr:hr + h, hc:hc + w] - c[:, :h, hc:hc + w] - c[:, hr:hr + h, :w] + c[:, :h, :w])


def component_count(binary: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Number of 4-connected components of ``binary`` (t, h, w) in each pixel's window x window crop, per slice.

    Counted as the crop's Euler number (components minus holes; a 7 x 7 window rarely holds a hole): pixels minus
    adjacent pairs (horizontal and vertical) plus 2 x 2 blocks, each counted when it lies wholly inside the crop, so
    every term is a box sum and the count is exact for the cropped window.
    """
    b = np.asarray(binary, bool)
    half = window // 2
    pixels = b.astype(np.float64)
    across = (b[:, :, :-1] & b[:, :, 1:]).astype(np.float64)  # pair (r, c)-(r, c+1), stored at (r, c)
    down = (b[:, :-1, :] & b[:, 1:, :]).astype(np.float64)  # pair (r, c)-(r+1, c)
    blocks = (b[:, :-1, :-1] & b[:, :-1, 1:] & b[:, 1:, :-1] & b[:, 1:, 1:]).astype(np.float64)
    t, h, w = b.shape
    full = (-half, half)
    inner = (-half, half - 1)  # a pair or block starting here still ends inside the window
    euler = (_box_sum(pixels, full, full)
             - _box_sum(np.pad(across, ((0, 0), (0, 0), (0, 1))), full, inner)
             - _box_sum(np.pad(down, ((0, 0), (0, 1), (0, 0))), inner, full)
             + _box_sum(np.pad(blocks, ((0, 0), (0, 1), (0, 1))), inner, inner))
    return np.round(euler).astype(np.float32)


#: 3DCC activations (step 3): "std" the standard deviation of the air / dense map alone; "std-cc" its product with
#: the count of dense components in the window (scaled by ``CC_FULL``, at most 1), the paper's "standard deviation
#: and the number of connected components" (§II-E). Which is the default, and the threshold of each, was chosen on
#: the training split of the semi-synthetic set (scripts/decovnet_localization.py; the card's Table V).
ACTIVATIONS = ("std", "std-cc")
ACTIVATION = "std"
#: Components in a 7 x 7 window at which the count term saturates: a window crossed by one vessel holds 1, the
#: fragmented dense texture of ground glass several.
CC_FULL = 3.0


def activation_3dcc(ct01: np.ndarray, lungs: np.ndarray, window: int = WINDOW, kind: str = ACTIVATION
                    ) -> np.ndarray:
    """3DCC activation (step 3), 0..1: 2 x std of the air/dense map in a window x window in-plane window, lung voxels
    only; for ``kind`` "std-cc" times the window's dense-component count / ``CC_FULL`` (at most 1).

    ct01: CT normalized by ``inputs.normalize_hu`` (t, h, w); lungs: boolean (t, h, w).
    """
    if kind not in ACTIVATIONS:
        raise ValueError(f"unknown 3DCC activation {kind!r}; choose one of {', '.join(ACTIVATIONS)}")
    lo, hi = WINDOW_HU
    air_level = (AIR_HU - lo) / (hi - lo)
    lung = np.asarray(lungs, bool)
    air = ((np.asarray(ct01) < air_level) & lung).astype(np.float32)
    size = (1, window, window)
    lung_f = ndi.uniform_filter(lung.astype(np.float32), size=size, mode="constant")
    air_f = ndi.uniform_filter(air, size=size, mode="constant")
    enough = lung_f >= MIN_LUNG_FRACTION
    p = np.where(enough, air_f / np.maximum(lung_f, 1e-6), 1.0)
    p = np.clip(p, 0.0, 1.0)
    act = 2.0 * np.sqrt(p * (1.0 - p))
    if kind == "std-cc":
        dense = lung & (air == 0)
        act = act * np.clip(component_count(dense, window) / CC_FULL, 0.0, 1.0)
    act[~lung | ~enough] = 0.0
    return act.astype(np.float32)


@dataclass(frozen=True)
class Localization:
    """The localized lesion on the model grid: its mask, R_3dcc, the CAM regions and how it was chosen."""

    mask: np.ndarray
    r3dcc: np.ndarray
    cam_regions: np.ndarray
    n_cam_regions: int
    source: str  # see VARIANTS; "none" when nothing was localized
    overlap_voxels: int

    @property
    def empty(self) -> bool:
        return not self.mask.any()


#: Table V's rows: "cam" the CAM region holding the CAM maximum (CAM alone), "3dcc" R_3dcc itself (3DCC activation
#: alone), "cam+3dcc" the CAM region overlapping R_3dcc most (§II-E: nothing when none overlaps), and
#: "cam+3dcc+fallback" the same falling back to "cam" when none overlaps (our addition, not in the paper).
VARIANTS = ("cam", "3dcc", "cam+3dcc", "cam+3dcc+fallback")
VARIANT = "cam+3dcc"
#: Threshold of each 3DCC activation for its regions (chosen with ACTIVATION, see there).
ACTIVATION_THRESHOLDS = {"std": 0.6, "std-cc": 0.5}


def _cam_max_region(cam: np.ndarray, cam_labels: np.ndarray) -> np.ndarray:
    peak = np.unravel_index(int(np.argmax(np.where(cam_labels > 0, cam, -np.inf))), cam.shape)
    return cam_labels == cam_labels[peak]


def select_cam_region(cam: np.ndarray, r3dcc: np.ndarray, threshold: float = CAM_THRESHOLD,
                      variant: str = VARIANT) -> tuple[np.ndarray, np.ndarray, int, str, int]:
    """(selected mask, CAM region labels, count, source, overlap) - step 5 before the lung restriction."""
    cam_labels, n = regions(cam >= threshold)
    none = np.zeros(cam.shape, bool)
    if variant == "3dcc":
        return (r3dcc.astype(bool), cam_labels, n, "3dcc", 0) if r3dcc.any() else (none, cam_labels, n, "none", 0)
    if n == 0:
        return none, cam_labels, 0, "none", 0
    if variant == "cam":
        return _cam_max_region(cam, cam_labels), cam_labels, n, "cam", 0
    overlap = np.bincount(cam_labels[r3dcc.astype(bool)].ravel(), minlength=n + 1)
    overlap[0] = 0
    if overlap.max() > 0:
        best = int(np.argmax(overlap))
        return cam_labels == best, cam_labels, n, "cam+3dcc", int(overlap[best])
    if variant == "cam+3dcc+fallback":
        return _cam_max_region(cam, cam_labels), cam_labels, n, "cam-max", 0
    return none, cam_labels, n, "none", 0


def lung_cam(cam: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """The CAM inside the lungs, scaled to its in-lung maximum (0 everywhere when the lungs hold no evidence).

    Our choice (step 2): the paper's network sees "the segmented 3D lung region" (abstract) and a lesion is a lung
    finding, so CAM regions are sought inside the lung mask. Without this, a CAM peak outside the lungs - seen with
    the shipped weights at the posterior edge of the model grid, whose receptive field covers the posterior lungs
    - would be returned as the lesion.
    """
    inside = np.where(np.asarray(lungs, bool), np.asarray(cam, np.float32), 0.0)
    top = float(inside.max()) if inside.size else 0.0
    return (inside / top if top > 0 else np.zeros_like(inside)).astype(np.float32)


def localize(ct01: np.ndarray, lungs: np.ndarray, cam: np.ndarray, threshold: float = CAM_THRESHOLD, *,
             variant: str = VARIANT, activation: str = ACTIVATION) -> Localization:
    """Steps 2-5 on one input: ct01 and lungs (t, h, w) of the model input, cam on the same grid (0..1).

    CAM regions are components of ``lung_cam`` >= threshold: inside the lungs, relative to the in-lung maximum.
    variant: one of ``VARIANTS`` (Table V); activation: one of ``ACTIVATIONS``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown localization {variant!r}; choose one of {', '.join(VARIANTS)}")
    lungs = np.asarray(lungs, bool)
    act = activation_3dcc(ct01, lungs, kind=activation)
    r3dcc = largest_region(act >= ACTIVATION_THRESHOLDS[activation])
    chosen, cam_labels, n, source, overlap = select_cam_region(lung_cam(cam, lungs), r3dcc, threshold, variant)
    return Localization(mask=chosen & lungs, r3dcc=r3dcc, cam_regions=cam_labels, n_cam_regions=n, source=source,
                        overlap_voxels=overlap)


def centre_index(mask: np.ndarray) -> tuple[float, float, float] | None:
    """Centre of mass of a (z, y, x) mask as a continuous index (x, y, z), None when empty."""
    if not np.any(mask):
        return None
    z, y, x = ndi.center_of_mass(np.asarray(mask, np.float32))
    return float(x), float(y), float(z)


def centre_mm(mask: np.ndarray, grid) -> tuple[float, float, float] | None:
    """Centre of mass of a mask on a SimpleITK grid, as an LPS point in mm."""
    index = centre_index(mask)
    return None if index is None else tuple(float(v) for v in grid.TransformContinuousIndexToPhysicalPoint(index))


# ---------------------------------------------------------------------------------------------- hit rate (§II-H)

Box = dict  # {"min_mm": [x, y, z], "max_mm": [x, y, z]}


def box_from_mask(mask: np.ndarray, spacing: Sequence[float], origin: Sequence[float] = (0.0, 0.0, 0.0)) -> Box:
    """Physical box (voxel edges, LPS mm) of a (z, y, x) mask on an identity-direction grid."""
    zyx = np.nonzero(mask)
    lo = [float(zyx[2].min()), float(zyx[1].min()), float(zyx[0].min())]
    hi = [float(zyx[2].max()), float(zyx[1].max()), float(zyx[0].max())]
    return {"min_mm": [origin[i] + (lo[i] - 0.5) * spacing[i] for i in range(3)],
            "max_mm": [origin[i] + (hi[i] + 0.5) * spacing[i] for i in range(3)]}


def in_box(point: Sequence[float], box: Box) -> bool:
    return all(box["min_mm"][i] <= point[i] <= box["max_mm"][i] for i in range(3))


def is_hit(point: Sequence[float] | None, boxes: Sequence[Box]) -> bool:
    """A lesion point is a hit when it lies inside any annotated box."""
    return point is not None and any(in_box(point, b) for b in boxes)


def hit_rate(cases: Sequence[dict], threshold: float = 0.5) -> dict:
    """§II-H over cases {"label": 0/1, "probability": p, "centre_mm": point or None, "boxes": [Box, ...]}.

    Only true positives (label 1 and p >= threshold) count; a true positive without a localized lesion is a miss.
    Returns {"hit_rate": hits / true positives (None without any), "hits", "true_positives"}.
    """
    tps = [c for c in cases if c["label"] == 1 and c["probability"] >= threshold]
    hits = sum(is_hit(c.get("centre_mm"), c["boxes"]) for c in tps)
    return {"hit_rate": hits / len(tps) if tps else None, "hits": int(hits), "true_positives": len(tps)}
