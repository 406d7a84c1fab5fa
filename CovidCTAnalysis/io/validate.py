"""Sanity limits for images before and after reading (headers first, so a lying header costs nothing).

Limits chosen (no paper defines them):
- at most ``MAX_AXIS`` = 4096 voxels along any axis and ``MAX_VOXELS`` = 2**31 voxels in all: well above any
  clinical CT (512 x 512 x ~1500 thin slices) or slice figure, well below a corrupt header claiming 100000**3;
- what analyzing that many voxels needs must fit in the memory available now (memory.py);
- at least ``MIN_INPLANE`` = 16 voxels along the two largest axes: a 1 x 1 or 8 x 8 "image" is not a CT slice;
- spacing finite, > 0 and within 0.01 - 100 mm (CT voxels are 0.2 - 10 mm; a header in metres or microns is refused);
- the direction matrix must be orthonormal (a rotation, possibly with flips);
- voxel values finite, within +-``MAX_ABS_VALUE`` = 1e6 (HU span -1024 to about 30000 with metal; a value of 1e300
  is corrupt data, and would overflow the float32 the pipeline works in) and not all equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .memory import check_memory

MAX_AXIS = 4096
MAX_VOXELS = 2**31
MIN_INPLANE = 16
MIN_SPACING_MM = 0.01
MAX_SPACING_MM = 100.0
MAX_ABS_VALUE = 1e6
#: A display window on the HU scale (the widest in use, bone, is about 2000-4000 HU).
MAX_WINDOW_WIDTH = 10000.0
MAX_ABS_LEVEL = 5000.0


def _fmt_size(size: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in size)


def check_size(path: Path, size: Sequence[int]) -> None:
    """Refuse absurd or degenerate sizes (from a header, before any pixel is read)."""
    size = [int(s) for s in size]
    if any(s < 1 for s in size):
        raise InputError(path, f"declares an empty image (size {_fmt_size(size)})")
    if max(size) > MAX_AXIS:
        raise InputError(path, f"declares a size of {_fmt_size(size)} voxels, beyond the limit of {MAX_AXIS} "
                               "per axis (corrupt header?)")
    if math.prod(size) > MAX_VOXELS:
        raise InputError(path, f"declares {math.prod(size)} voxels ({_fmt_size(size)}), beyond the limit of "
                               f"{MAX_VOXELS} (corrupt header?)")
    largest = sorted(size, reverse=True)[:2]
    if len(largest) < 2 or largest[1] < MIN_INPLANE:
        raise InputError(path, f"is only {_fmt_size(size)} pixels; a CT slice needs at least "
                               f"{MIN_INPLANE}x{MIN_INPLANE}")
    check_memory(path, size)


def check_spacing(path: Path, spacing: Sequence[float], what: str = "voxel spacing") -> None:
    spacing = [float(s) for s in spacing]
    shown = ", ".join(f"{s:g}" for s in spacing)
    if not all(math.isfinite(s) for s in spacing):
        raise InputError(path, f"has an invalid {what} ({shown}): not a number")
    if any(s <= 0 for s in spacing):
        raise InputError(path, f"has an invalid {what} ({shown} mm): spacing must be positive")
    if any(s < MIN_SPACING_MM or s > MAX_SPACING_MM for s in spacing):
        raise InputError(path, f"has an implausible {what} ({shown} mm); CT voxels are "
                               f"{MIN_SPACING_MM:g}-{MAX_SPACING_MM:g} mm")


def check_direction(path: Path, direction: Sequence[float]) -> None:
    n = int(round(math.sqrt(len(direction))))
    d = np.asarray(direction, dtype=float).reshape(n, n)
    if not np.all(np.isfinite(d)) or not np.allclose(d.T @ d, np.eye(n), atol=1e-3):
        raise InputError(path, "has an invalid orientation (its direction matrix is not a rotation)")


def check_origin(path: Path, origin: Sequence[float]) -> None:
    if not all(math.isfinite(float(o)) for o in origin):
        raise InputError(path, "has an invalid origin (not a number)")


def raise_non_finite(path: Path, count: int) -> None:
    noun = "voxel that is not a finite number" if count == 1 else "voxels that are not finite numbers"
    raise InputError(path, f"has {count} {noun} (NaN or infinity)")


def check_values(path: Path, image: sitk.Image) -> tuple[float, float]:
    """Finite and not constant; returns (min, max). Two vectorised passes, no copy."""
    a = sitk.GetArrayViewFromImage(image)
    lo, hi = float(np.min(a)), float(np.max(a))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise_non_finite(path, int(np.count_nonzero(~np.isfinite(a))))
    if max(-lo, hi) > MAX_ABS_VALUE:
        raise InputError(path, f"has voxel values from {lo:g} to {hi:g}, beyond the +-{MAX_ABS_VALUE:g} any CT "
                               "holds (corrupt data or not a CT)")
    if lo == hi:
        raise InputError(path, f"is blank: every voxel has the same value ({lo:g})")
    return lo, hi


def check_window(path: Path | None, window: Sequence[float] | None) -> tuple[float, float] | None:
    """A display window (width, level) as given by ``--window``: two finite numbers, width > 0."""
    if window is None:
        return None
    w = tuple(float(v) for v in window)
    if len(w) != 2 or not all(math.isfinite(v) for v in w):
        raise InputError(path, f"window {window!r} must be two numbers: WIDTH,LEVEL")
    if w[0] <= 0:
        raise InputError(path, f"window width {w[0]:g} must be positive")
    if w[0] > MAX_WINDOW_WIDTH or abs(w[1]) > MAX_ABS_LEVEL:
        raise InputError(path, f"window {w[0]:g},{w[1]:g} is outside the HU scale (width up to "
                               f"{MAX_WINDOW_WIDTH:g}, level within +-{MAX_ABS_LEVEL:g})")
    return w


def check_spacing_option(path: Path | None, spacing: Sequence[float] | None) -> tuple[float, float, float] | None:
    """A spacing stated by ``--spacing X,Y,Z`` (mm)."""
    if spacing is None:
        return None
    s = tuple(float(v) for v in spacing)
    if len(s) != 3:
        raise InputError(path, f"spacing {spacing!r} must be three numbers: X,Y,Z in mm")
    check_spacing(path if path is not None else Path("--spacing"), s, what="stated spacing")
    return s  # type: ignore[return-value]
