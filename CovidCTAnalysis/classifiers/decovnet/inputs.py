"""DeCoVNet input: the CT and its lung mask as two channels on the model grid (seed 002, §II-F2, Fig. 1).

§II-F2: "the CT volume was concatenated with the mask volume to obtain a CT-Mask volume ... resampled into a fixed
spatial resolution (e.g. 224x336) without changing the number of slices". What the paper leaves open, chosen here:

- Region: the paper's scans run "from apex to lung base" (§II-B) with a fixed 36 cm field of view. Our inputs do not
  (abdominal stacks, 128-pixel thorax volumes, cropped figures), so the model sees the lungs' bounding box (from the
  lung mask) plus ``MARGIN_MM`` in-plane and ``MARGIN_SLICES`` slices, widened to the 2:3 aspect of 224x336 so
  anatomy is never stretched; what falls outside the image is air. Without lung voxels the whole image is used.
- Grid: ``InputSpec``: in-plane (height, width) and the slice spacing. ``z_mm=None`` keeps every slice of the lung
  range as the paper does; a number resamples z to that spacing. The registry entry of the shipped weights states
  the grid they were trained on (see the model card) and inference always uses the registry's grid.
- Resampling: averaging by whole factors first where the grid is coarser (SimpleITK BinShrink, an anti-alias step),
  then linear interpolation onto the model grid; the mask is resampled the same way and thresholded at 0.5.
- Values (the paper states none for DeCoVNet): HU clipped to the lung window ``WINDOW_HU`` (width 1500, level
  -600) and scaled to 0..1. This is the window of the display-windowed slice stacks in ../shared/data, so a stack
  (approximate HU) and a CT in HU give the same input.

The model grid is a SimpleITK image geometry (origin, spacing, identity direction) in the CT's physical space, so
a map computed on it goes back to the canonical grid by ``to_canonical``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ...errors import InputError

#: (low, high) HU mapped to 0..1: the lung window, width 1500, level -600.
WINDOW_HU = (-1350.0, 150.0)
AIR_HU = -1024.0
MARGIN_MM = 10.0
MARGIN_SLICES = 1


@dataclass(frozen=True)
class InputSpec:
    """The model grid and the encoding of the two channels (see ``encode``).

    height, width: in-plane pixels; z_mm: slice spacing (None = every slice kept); lung_only: the CT channel shows
    the lungs only; mask_value: the lung mask channel's value inside the lungs. Defaults: the paper (Table I, §II-F2).
    """

    height: int = 224
    width: int = 336
    z_mm: float | None = None
    lung_only: bool = False
    mask_value: float = 1.0

    @classmethod
    def from_dict(cls, spec: dict | None) -> "InputSpec":
        """From a registry entry's ``input`` (keys in_plane [height, width], z_mm, lung_only, mask_value)."""
        spec = spec or {}
        h, w = spec.get("in_plane", (cls.height, cls.width))
        z = spec.get("z_mm")
        return cls(int(h), int(w), None if z is None else float(z), bool(spec.get("lung_only", False)),
                   float(spec.get("mask_value", 1.0)))

    def to_dict(self) -> dict:
        return {"in_plane": [self.height, self.width], "z_mm": self.z_mm, "lung_only": self.lung_only,
                "mask_value": self.mask_value}


@dataclass(frozen=True)
class ModelInput:
    """The network input (2, T, H, W) float32 and the grid it lies on (an empty SimpleITK image of that geometry)."""

    array: np.ndarray
    grid: sitk.Image

    @property
    def ct(self) -> np.ndarray:
        return self.array[0]

    @property
    def lungs(self) -> np.ndarray:
        return self.array[1] > 0.5


def normalize_hu(hu: np.ndarray) -> np.ndarray:
    """HU -> 0..1 through ``WINDOW_HU`` (float32)."""
    lo, hi = WINDOW_HU
    return np.clip((np.asarray(hu, np.float32) - lo) / (hi - lo), 0.0, 1.0)


def lung_box(lungs: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box (z, y, x slices) of the lung voxels of an array, None when there are none."""
    zyx = np.nonzero(lungs)
    if zyx[0].size == 0:
        return None
    return tuple(slice(int(a.min()), int(a.max()) + 1) for a in zyx)


def model_grid(ct_image: sitk.Image, lungs_array: np.ndarray, spec: InputSpec) -> sitk.Image:
    """The model grid of one CT: lung box + margins, 2:3 aspect, (spec.width, spec.height, T) voxels."""
    size = ct_image.GetSize()
    sp = np.array(ct_image.GetSpacing(), float)
    origin = np.array(ct_image.GetOrigin(), float)
    box = lung_box(lungs_array)
    if box is None:
        box = (slice(0, size[2]), slice(0, size[1]), slice(0, size[0]))
    zs, ys, xs = box
    # physical extent (edges of voxels) of the box, x and y with margin
    x0 = origin[0] + (xs.start - 0.5) * sp[0] - MARGIN_MM
    x1 = origin[0] + (xs.stop - 0.5) * sp[0] + MARGIN_MM
    y0 = origin[1] + (ys.start - 0.5) * sp[1] - MARGIN_MM
    y1 = origin[1] + (ys.stop - 0.5) * sp[1] + MARGIN_MM
    # widen the shorter side to the model's aspect (height / width)
    aspect = spec.height / spec.width
    w_mm, h_mm = x1 - x0, y1 - y0
    if h_mm < aspect * w_mm:
        grow = (aspect * w_mm - h_mm) / 2
        y0, y1 = y0 - grow, y1 + grow
    else:
        grow = (h_mm / aspect - w_mm) / 2
        x0, x1 = x0 - grow, x1 + grow
    z_first = max(zs.start - MARGIN_SLICES, 0)
    z_last = min(zs.stop - 1 + MARGIN_SLICES, size[2] - 1)
    if spec.z_mm is None or size[2] == 1:
        n_z, z_sp = z_last - z_first + 1, sp[2]
        z_origin = origin[2] + z_first * sp[2]
    else:
        extent = (z_last - z_first + 1) * sp[2]
        n_z = max(int(round(extent / spec.z_mm)), 1)
        z_sp = extent / n_z
        z_origin = origin[2] + (z_first - 0.5) * sp[2] + z_sp / 2
    out_sp = ((x1 - x0) / spec.width, (y1 - y0) / spec.height, z_sp)
    grid = sitk.Image(spec.width, spec.height, int(n_z), sitk.sitkUInt8)
    grid.SetSpacing(out_sp)
    grid.SetOrigin((x0 + out_sp[0] / 2, y0 + out_sp[1] / 2, z_origin))
    return grid


def _shrink_factors(image: sitk.Image, grid: sitk.Image) -> list[int]:
    return [max(int(g // s), 1) for g, s in zip(grid.GetSpacing(), image.GetSpacing())]


def resample_to(image: sitk.Image, grid: sitk.Image, default: float, interpolator=sitk.sitkLinear) -> np.ndarray:
    """``image`` on ``grid`` (array z, y, x float32): whole-factor averaging first, then linear interpolation."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    factors = _shrink_factors(image, grid)
    if max(factors) > 1:
        image = sitk.BinShrink(image, factors)
    out = sitk.Resample(image, grid, sitk.Transform(), interpolator, float(default), sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def prepare(ct_image: sitk.Image, lungs: sitk.Image, spec: InputSpec) -> ModelInput:
    """CT (canonical, HU) and lung labels (0/1/2 on the same grid) -> DeCoVNet input on the model grid."""
    if ct_image.GetSize() != lungs.GetSize():
        raise InputError(None, f"lung mask size {list(lungs.GetSize())} differs from the CT's "
                               f"{list(ct_image.GetSize())}")
    lung_array = sitk.GetArrayViewFromImage(lungs) > 0
    grid = model_grid(ct_image, lung_array, spec)
    ct = normalize_hu(resample_to(ct_image, grid, AIR_HU))
    binary = sitk.Cast(lungs > 0, sitk.sitkFloat32)
    binary.CopyInformation(lungs)
    mask = (resample_to(binary, grid, 0.0) > 0.5).astype(np.float32)
    return ModelInput(np.stack([ct, mask]), grid)


def prepare_arrays(hu: np.ndarray, lungs: np.ndarray, spacing, spec: InputSpec) -> ModelInput:
    """``prepare`` for arrays (z, y, x) with spacing (x, y, z) mm, origin 0 (training data)."""
    ct_image = sitk.GetImageFromArray(np.asarray(hu, np.float32))
    ct_image.SetSpacing(tuple(float(s) for s in spacing))
    lung_image = sitk.GetImageFromArray(np.asarray(lungs, np.uint8))
    lung_image.CopyInformation(ct_image)
    return prepare(ct_image, lung_image, spec)


def encode(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    """What the network sees, from a (2, T, H, W) input (CT 0..1, mask 0/1) after any augmentation.

    Paper (defaults): the two channels as they are. ``lung_only``: the CT channel becomes (CT - lung level) inside
    the lung mask and 0 outside, the lung level being the median CT value inside the mask (aerated lung, whatever
    the scanner, window or brightness jitter); ``mask_value`` scales the mask channel.
    Why these exist (model card): global max pooling passes gradient only through the strongest response, and at
    initialization that is a high-contrast edge both classes share (skin, table, mediastinum, the mask's own
    border). With ~500 training steps instead of the paper's ~42,000 the network trained on the paper's input did
    not learn (loss 0.69 after six epochs). Showing the lungs only, aerated lung at 0 like the convolutions' zero
    padding, and a faint mask channel leaves lesions and vessels as the strongest structures.
    """
    if not spec.lung_only and spec.mask_value == 1.0:
        return array
    ct, mask = array[0], array[1]
    if spec.lung_only:
        inside = mask > 0.5
        level = float(np.median(ct[inside])) if inside.any() else 0.0
        ct = (ct - level) * mask
    return np.stack([ct, mask * spec.mask_value]).astype(np.float32)


def to_canonical(array: np.ndarray, grid: sitk.Image, reference: sitk.Image, *, labels: bool = False) -> sitk.Image:
    """A map on the model grid back onto the CT's canonical grid (float32 linear, or uint8 nearest for labels)."""
    image = sitk.GetImageFromArray(np.asarray(array, np.uint8 if labels else np.float32))
    image.CopyInformation(grid)
    interp = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    pixel = sitk.sitkUInt8 if labels else sitk.sitkFloat32
    return sitk.Resample(image, reference, sitk.Transform(), interp, 0.0, pixel)
