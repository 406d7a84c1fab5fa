"""The voxel grid of the demo CT and the small numerical helpers the phantom is built with.

Physical coordinates are DICOM LPS millimetres: x toward the patient's left, y posterior, z superior. The
anatomy is defined in these coordinates, independent of the grid, so a coarse and a fine demo CT of the same
seed show the same patient. The phantom is evaluated slab by slab (a few slices at a time) so that memory
stays bounded for 512x512x300 volumes; every shape is written so that non-linear functions act on small
broadcast arrays (one axis or one slice) and full slab arrays only see additions, products and comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Default field of view: an adult thorax, ~350 mm in-plane, 300 mm cranio-caudal from the root of the
# neck to the upper abdomen. ANATOMY_CENTRE is the physical point the field of view is centred on.
DEFAULT_FOV_MM = (350.0, 350.0, 300.0)
ANATOMY_CENTRE_MM = (0.0, 0.0, 150.0)


@dataclass(frozen=True)
class Grid:
    """An axis-aligned voxel grid: size (x, y, z), spacing in mm, origin (centre of voxel 0) in mm."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @classmethod
    def centred(cls, size, spacing=None) -> "Grid":
        """A grid of `size` voxels centred on the anatomy; spacing defaults to the adult-thorax field of view."""
        size = tuple(int(n) for n in size)
        if len(size) != 3 or min(size) < 1:
            raise ValueError(f"size must be three positive integers (x, y, z), got {size}")
        if spacing is None:
            spacing = tuple(f / n for f, n in zip(DEFAULT_FOV_MM, size))
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ValueError(f"spacing must be three positive numbers in mm, got {spacing}")
        origin = tuple(c - (n - 1) / 2 * s for c, n, s in zip(ANATOMY_CENTRE_MM, size, spacing))
        return cls(size, spacing, origin)

    def axis(self, i: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Physical coordinates (float32) of voxel centres along axis i (0 x, 1 y, 2 z), for indices start:stop."""
        stop = self.size[i] if stop is None else stop
        return (self.origin[i] + self.spacing[i] * np.arange(start, stop)).astype(np.float32)

    def index_range(self, i: int, lo_mm: float, hi_mm: float) -> tuple[int, int]:
        """Half-open index range of the voxels along axis i whose centres may fall within [lo_mm, hi_mm]."""
        a = int(np.floor((lo_mm - self.origin[i]) / self.spacing[i]))
        b = int(np.ceil((hi_mm - self.origin[i]) / self.spacing[i])) + 1
        return max(a, 0), min(b, self.size[i])

    def box(self, lo_mm, hi_mm) -> tuple[tuple[int, int], ...]:
        """Index ranges (x, y, z), half-open, of the voxels that may fall within a physical box."""
        return tuple(self.index_range(i, lo_mm[i], hi_mm[i]) for i in range(3))

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0


def smoothstep(t):
    """0 below 0, 1 above 1, a C1 cubic in between (used for tapering anatomy along z)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def lerp_axis(values: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of `values` along `axis` at fractional indices `coords` (clamped at the ends)."""
    n = values.shape[axis]
    c = np.clip(coords, 0, n - 1)
    i0 = np.floor(c).astype(np.intp)
    i0 = np.minimum(i0, max(n - 2, 0))
    i1 = np.minimum(i0 + 1, n - 1)
    w = (c - i0).astype(np.float32)
    shape = [1] * values.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    a = np.take(values, i0, axis=axis)
    b = np.take(values, i1, axis=axis)
    b -= a
    b *= w
    a += b
    return a


class CoarseField:
    """A smooth random field on a coarse physical lattice, sampled on the voxel grid by trilinear interpolation.

    Used for the mild low-frequency texture of lung parenchyma and of ground-glass lesions. The lattice is
    physical (fixed mm step), so the texture is the same patient texture whatever the voxel grid.
    """

    def __init__(self, rng: np.random.Generator, step_mm: float, lo_mm, hi_mm, smooth: float = 1.0):
        from scipy.ndimage import gaussian_filter

        self.step = float(step_mm)
        self.lo = np.asarray(lo_mm, dtype=float)
        shape = tuple(int(np.ceil((h - l) / step_mm)) + 2 for l, h in zip(lo_mm, hi_mm))
        field = gaussian_filter(rng.standard_normal(shape[::-1]), smooth, mode="wrap")
        field /= field.std() + 1e-12
        self.values = field.astype(np.float32)  # array order z, y, x

    def sample(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, scale: float = 1.0,
               offset_y: np.ndarray | None = None) -> np.ndarray:
        """scale * field + offset_y[y] at the outer product of 1-D axes x, y, z -> array (z, y, x).

        The affine part is applied before the last (full-size) interpolation, where it is cheap.
        """
        v = lerp_axis(self.values, (z - self.lo[2]) / self.step, 0)
        v = lerp_axis(v, (y - self.lo[1]) / self.step, 1)
        v *= np.float32(scale)
        if offset_y is not None:
            v += offset_y.astype(np.float32)[None, :, None]
        return lerp_axis(v, (x - self.lo[0]) / self.step, 2)
