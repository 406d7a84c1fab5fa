"""Weakly-supervised lesion localization and the lesion hit rate of DeCoVNet (seed 002, §II-E, Fig. 3, §II-H).

§II-E: CAM regions from DeCoVNet "had a good recall, but ... many false positive predictions"; "3DCC activation" from
the unsupervised lung segmentation: "the variance (including the standard deviation and the number of connected
components) in a 7x7 window for each pixel"; "the 3DCC activation region with the largest size was selected and
termed as R_3dcc. Lastly, the CAM activation region that had the largest overlap with R_3dcc was selected as the
final COVID-19 lesion localization result."

Our reading, step by step (everything on the model grid, see ``inputs.py``):

1. CAM (Zhou et al. 2016, as applied in §III-D "on the deep feature ... and the weights in the final fully
   connected layer"): the last feature maps (32 x 4 x 14 x 21) weighted by the FC weights. With two softmax outputs
   the COVID-19 evidence is the logit difference, so the weights are ``w[1] - w[0]``; negative evidence is set to 0,
   the map is scaled to max 1 and upsampled (trilinear) to the input grid (``explain.cam``, ``COVID_EVIDENCE``).
2. CAM activation regions: 3-D connected components of CAM >= ``CAM_THRESHOLD`` (half the maximum).
3. 3DCC activation: the unsupervised segmentation is the threshold at ``AIR_HU`` (-600 HU, the binarization of the
   classical lung segmentation the paper cites, Liao et al. [27]) inside the lung mask: lung air vs anything
   denser (vessels, lesions). For each voxel, the standard deviation of that binary map in a 7x7 in-plane window,
   counted over lung voxels only (so the lung border itself is not an edge). A binary map's standard deviation
   sqrt(p (1 - p)) is high where air and dense tissue mix within the window - the ragged, partly aerated texture of
   ground glass and the rims of consolidations - and low in clean parenchyma and around thin vessels, which fill a
   small fraction of a window. The activation is 2 x std (0..1). The paper also counts connected components in the
   window; we use the standard deviation alone (the count adds no separate statement we could reproduce).
4. 3DCC activation regions: 3-D components (26-connected) of activation >= ``ACTIVATION_THRESHOLD``; R_3dcc is the
   largest.
5. The localized lesion is the CAM region with the largest overlap (voxels) with R_3dcc; when no CAM region
   touches R_3dcc (or there is no R_3dcc) the CAM region holding the CAM maximum is taken and ``source`` says so.
   Its centre of mass is the lesion point. CAM regions (step 2) are taken inside the lung mask, on the CAM scaled
   to its in-lung maximum (``lung_cam``: a lesion is a lung finding); the heatmap output stays the whole CAM.

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
ACTIVATION_THRESHOLD = 0.8
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


def activation_3dcc(ct01: np.ndarray, lungs: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """3DCC activation (step 3): 2 x std of the air/dense map in a window x window in-plane window, lung voxels only.

    ct01: CT normalized by ``inputs.normalize_hu`` (t, h, w); lungs: boolean (t, h, w).
    """
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
    act[~lung | ~enough] = 0.0
    return act.astype(np.float32)


@dataclass(frozen=True)
class Localization:
    """The localized lesion on the model grid: its mask, R_3dcc, the CAM regions and how it was chosen."""

    mask: np.ndarray
    r3dcc: np.ndarray
    cam_regions: np.ndarray
    n_cam_regions: int
    source: str  # "cam+3dcc" (largest overlap with R_3dcc) or "cam-max" (no overlap: the CAM maximum's region)
    overlap_voxels: int

    @property
    def empty(self) -> bool:
        return not self.mask.any()


def select_cam_region(cam: np.ndarray, r3dcc: np.ndarray,
                      threshold: float = CAM_THRESHOLD) -> tuple[np.ndarray, np.ndarray, int, str, int]:
    """(selected mask, CAM region labels, count, source, overlap) - step 5 before the lung restriction."""
    cam_labels, n = regions(cam >= threshold)
    if n == 0:
        return np.zeros(cam.shape, bool), cam_labels, 0, "none", 0
    overlap = np.bincount(cam_labels[r3dcc.astype(bool)].ravel(), minlength=n + 1)
    overlap[0] = 0
    if overlap.max() > 0:
        best = int(np.argmax(overlap))
        return cam_labels == best, cam_labels, n, "cam+3dcc", int(overlap[best])
    peak = np.unravel_index(int(np.argmax(np.where(cam_labels > 0, cam, -np.inf))), cam.shape)
    return cam_labels == cam_labels[peak], cam_labels, n, "cam-max", 0


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


def localize(ct01: np.ndarray, lungs: np.ndarray, cam: np.ndarray, threshold: float = CAM_THRESHOLD) -> Localization:
    """Steps 2-5 on one input: ct01 and lungs (t, h, w) of the model input, cam on the same grid (0..1).

    CAM regions are components of ``lung_cam`` >= threshold: inside the lungs, relative to the in-lung maximum.
    """
    lungs = np.asarray(lungs, bool)
    r3dcc = largest_region(activation_3dcc(ct01, lungs) >= ACTIVATION_THRESHOLD)
    chosen, cam_labels, n, source, overlap = select_cam_region(lung_cam(cam, lungs), r3dcc, threshold)
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
