"""The two grids of the classical segmentation: a coarse ~2.5 mm grid for the morphology, the input grid for edges.

Shape decisions (which pocket is lung, where the lungs part, what to fill) need a few million voxels, not the
~80 million of a thin-slice CT, so they are made on a grid shrunk by whole factors (block means, SimpleITK
BinShrink). The result is then carried back to the input grid: voxels deep inside or far outside the coarse mask
keep the coarse answer; in a band one coarse voxel wide on either side of its border, a voxel is lung when the
input is below a *local* threshold - half way between the aerated lung nearby and soft tissue, so that the outer
layer of a ground-glass opacity against the chest wall stays lung - or when the coarse step filled it (vessels,
dense lesions). Only element-wise operations run on the input grid, slab by slab (bounded memory).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .morphology import FACES, IN_PLANE, bounding_box

#: Target spacing of the coarse grid (mm), in-plane and along z.
COARSE_MM = 2.5
#: Gaussian sigma (mm) of an optional smoothing before the band threshold on the input grid. 0: none; on the demo
#: CT (noise ~20 HU) smoothing by 1 mm cost 0.1 Dice points and a third of the run time, so it is off.
BAND_SMOOTHING_MM = 0.0
#: Gaussian sigma (mm) of the neighbourhood whose aerated lung sets the local border threshold.
LOCAL_LEVEL_MM = 5.0
#: The local border threshold lies this fraction of the way from the nearby lung level to soft tissue.
LOCAL_FRACTION = 0.5
#: The local border threshold goes at most this fraction of the way from the global threshold to soft tissue.
MAX_LOCAL_FRACTION = 0.6


def shrink_factors(spacing, size, target_mm: float = COARSE_MM) -> tuple[int, int, int]:
    """Whole shrink factors (x, y, z) bringing each spacing near `target_mm` (1 for already coarse axes).

    An axis is never shrunk below 4 voxels (a 2-slice DICOM series keeps its 2 slices)."""
    f = [max(1, int(np.floor(target_mm / s + 0.5))) for s in spacing]
    return tuple(max(1, min(k, n // 4)) for k, n in zip(f, size))  # type: ignore[return-value]


def to_coarse(image: sitk.Image, factors) -> sitk.Image:
    """Block means over `factors` voxels (no aliasing of thin bright vessels into the air)."""
    if all(f == 1 for f in factors):
        return image
    return sitk.BinShrink(image, [int(f) for f in factors])


def _grow_labels(labels: np.ndarray) -> np.ndarray:
    """Each label grown by one voxel (face neighbours) into the background; the higher label wins ties."""
    img = sitk.GetImageFromArray(labels)
    radius = [1, 1, 0 if labels.shape[0] == 1 else 1]
    grown = sitk.GetArrayFromImage(sitk.GrayscaleDilate(img, radius, sitk.sitkCross))
    return np.where(labels > 0, labels, grown)


def _shrink_labels(labels: np.ndarray) -> np.ndarray:
    """Each label without its border voxels (face neighbours of another value)."""
    from scipy import ndimage as ndi

    structure = IN_PLANE if labels.shape[0] == 1 else FACES
    out = np.zeros_like(labels)
    for v in np.unique(labels[labels > 0]):
        out[ndi.binary_erosion(labels == v, structure=structure, border_value=1)] = v
    return out


def smooth(image: sitk.Image, sigma_mm: float) -> sitk.Image:
    """Recursive Gaussian along the axes long enough for it (ITK needs at least 4 voxels); a one-slice image in 2-D."""
    if sigma_mm <= 0:
        return image
    if image.GetSize()[2] == 1:
        plane = sitk.SmoothingRecursiveGaussian(image[:, :, 0], sigma_mm) if min(image.GetSize()[:2]) >= 4 else image[:, :, 0]
        out = sitk.JoinSeries(plane)
        out.CopyInformation(image)
        return out
    if min(image.GetSize()) < 4:
        return image
    return sitk.SmoothingRecursiveGaussian(image, sigma_mm)


def local_thresholds(values: np.ndarray, labels: np.ndarray, spacing, threshold: float, tissue: float) -> np.ndarray:
    """Per coarse voxel, the border threshold half way between the nearby aerated lung and soft tissue.

    Near normal lung (about -850 HU) this is about -425 HU; near ground glass (about -600 HU) about -300 HU, so
    that a ground-glass opacity against the chest wall keeps its outer layer. Never below the global threshold,
    never above `MAX_LOCAL_FRACTION` of the way from the global threshold to tissue.
    """
    from scipy import ndimage as ndi

    air_lung = ((labels > 0) & (values < threshold)).astype(np.float32)
    sigma = [LOCAL_LEVEL_MM / spacing[2] if values.shape[0] > 1 else 0.0, LOCAL_LEVEL_MM / spacing[1],
             LOCAL_LEVEL_MM / spacing[0]]
    weight = ndi.gaussian_filter(air_lung, sigma)
    level = ndi.gaussian_filter(values * air_lung, sigma) / np.maximum(weight, 1e-3)
    local = np.where(weight > 0.02, level + LOCAL_FRACTION * (tissue - level), threshold)
    return np.clip(local, threshold, threshold + MAX_LOCAL_FRACTION * (tissue - threshold)).astype(np.float32)


def to_fine(image: sitk.Image, factors, coarse_labels: np.ndarray, filled: np.ndarray, thresholds: np.ndarray,
            smoothing_mm: float = BAND_SMOOTHING_MM, slab: int = 24) -> np.ndarray:
    """Carry coarse labels (z, y, x on the coarse grid) back to `image`'s grid, refining the border (module doc).

    `filled`: coarse voxels that are lung although not air (vessels, lesions added by the filling steps);
    `thresholds`: the coarse per-voxel border thresholds (`local_thresholds`). The input grid is processed in
    slabs of `slab` coarse slices to bound memory. Returns uint8 labels on the input grid (numpy, z, y, x).
    """
    fine_shape = image.GetSize()[::-1]
    out = np.zeros(fine_shape, np.uint8)
    box = bounding_box(coarse_labels > 0, margin=(1, 1, 1))
    if box is None:
        return out
    core = _shrink_labels(coarse_labels)
    band = _grow_labels(coarse_labels)
    band[core > 0] = 0
    keep_filled = np.where(filled, coarse_labels, 0).astype(np.uint8)
    fz, fy, fx = factors[2], factors[1], factors[0]
    ys = slice(box[1].start * fy, min(box[1].stop * fy, fine_shape[1]))
    xs = slice(box[2].start * fx, min(box[2].stop * fx, fine_shape[2]))
    pad = int(np.ceil(3.0 * smoothing_mm / image.GetSpacing()[2])) if fine_shape[0] > 1 else 0

    for cz0 in range(box[0].start, box[0].stop, slab):
        cz1 = min(cz0 + slab, box[0].stop)
        zs = slice(cz0 * fz, min(cz1 * fz, fine_shape[0]))
        if zs.start >= zs.stop:
            break

        # fine index -> coarse index along each axis (nearest neighbour = the block a fine voxel belongs to)
        index = np.ix_(np.arange(zs.start, zs.stop) // fz, np.arange(ys.start, ys.stop) // fy,
                       np.arange(xs.start, xs.stop) // fx)

        def up(a: np.ndarray) -> np.ndarray:
            """Nearest-neighbour upsampling of a coarse array onto the fine region of this slab."""
            return a[index]

        region = up(core)
        b = up(band)
        if b.any():
            z0, z1 = max(zs.start - pad, 0), min(zs.stop + pad, fine_shape[0])
            fine = smooth(image[xs.start: xs.stop, ys.start: ys.stop, z0:z1], smoothing_mm)
            values = sitk.GetArrayViewFromImage(fine)[zs.start - z0: zs.stop - z0]
            sel = (b > 0) & (values < up(thresholds))
            region[sel] = b[sel]
        f = up(keep_filled)
        region[f > 0] = f[f > 0]
        out[zs, ys, xs] = region
    return out
