"""Tapered tubes (cone segments) as signed distance fields: vessels, airways, the aorta, clavicles.

A tube set is a list of straight segments a->b whose radius varies linearly from ra to rb. Its signed distance
at a point is min over segments of (distance to the segment axis - local radius): negative inside. The field is
evaluated either at scattered points (for placing things inside the lungs) or on the voxels of a slab, segment by
segment inside each segment's bounding box, which keeps the work proportional to the tubes' volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Grid


@dataclass
class Tubes:
    """Segments a[i] -> b[i] (mm, shape (n, 3)) with radii ra[i] -> rb[i] (mm)."""

    a: np.ndarray
    b: np.ndarray
    ra: np.ndarray
    rb: np.ndarray

    @classmethod
    def empty(cls) -> "Tubes":
        z = np.zeros((0, 3))
        return cls(z, z.copy(), np.zeros(0), np.zeros(0))

    @classmethod
    def from_polyline(cls, points) -> "Tubes":
        """A polyline of (x, y, z, radius) rows -> its consecutive segments."""
        p = np.asarray(points, dtype=float)
        return cls(p[:-1, :3], p[1:, :3], p[:-1, 3], p[1:, 3])

    @classmethod
    def concat(cls, parts) -> "Tubes":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("a", "b", "ra", "rb")))

    def __len__(self) -> int:
        return len(self.ra)

    def select(self, keep) -> "Tubes":
        return Tubes(self.a[keep], self.b[keep], self.ra[keep], self.rb[keep])

    def scaled(self, factor: float = 1.0, add: float = 0.0) -> "Tubes":
        """Same centre lines with radii r * factor + add (e.g. an airway's outer wall from its lumen)."""
        return Tubes(self.a, self.b, self.ra * factor + add, self.rb * factor + add)

    def sdf_points(self, pts: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Signed distance (mm) of points (n, 3) to the union of the tubes; +inf when there are none."""
        pts = np.asarray(pts, dtype=float)
        out = np.full(len(pts), np.inf)
        if not len(self):
            return out
        d = self.b - self.a
        dd = np.maximum((d * d).sum(1), 1e-12)
        for s in range(0, len(pts), chunk):
            p = pts[s:s + chunk, None, :] - self.a[None]
            t = np.clip((p * d[None]).sum(2) / dd, 0.0, 1.0)
            q = p - t[..., None] * d[None]
            dist = np.sqrt((q * q).sum(2)) - (self.ra + t * (self.rb - self.ra))
            out[s:s + chunk] = dist.min(1)
        return out

    def rasterize_min(self, field: np.ndarray, grid: Grid, z0: int, reach: float = 0.0) -> None:
        """field[z, y, x] (a slab starting at slice z0) = min(field, signed distance), within `reach` mm of the tubes.

        Every voxel within `reach` mm of a tube gets the exact distance; further ones may keep their value.
        """
        for view, dist, radius in self._boxes(grid, z0, field.shape[0], reach, 0.0):
            dist -= radius
            np.minimum(field[view], dist, out=field[view])

    def rasterize_coverage(self, field: np.ndarray, grid: Grid, z0: int, z_squash: float = 0.0) -> None:
        """field = max(field, coverage): the fraction of each voxel a tube fills, for partial-volume rendering.

        Coverage ramps from 1 to 0 over one in-plane voxel h across the tube wall; a tube thinner than a voxel
        is scaled down by ~2r/h (its share of the voxel), so fine vessels fade out on coarse grids instead of
        being drawn a voxel wide. `z_squash` (mm) shortens distances along z, a cheap stand-in for the slice
        thickness that keeps thin oblique vessels continuous in thick slices.
        """
        h = float(min(grid.spacing[:2]))
        for view, dist, radius in self._boxes(grid, z0, field.shape[0], h, z_squash):
            amp = np.minimum(radius * (2.2 / h), 1.0)
            dist -= radius
            dist *= -1.0 / h
            dist += 0.5
            np.clip(dist, 0.0, 1.0, out=dist)
            dist *= amp
            np.maximum(field[view], dist, out=field[view])

    def _boxes(self, grid: Grid, z0: int, nz: int, reach: float, z_squash: float):
        """For each segment near the slab: (slab view, distance to its axis, local radius) on its bounding box."""
        if not len(self):
            return
        org = np.asarray(grid.origin)
        spc = np.asarray(grid.spacing)
        size = np.asarray(grid.size)
        zlo = org[2] + z0 * spc[2]
        zhi = zlo + (nz - 1) * spc[2]
        rmax = np.maximum(self.ra, self.rb) + reach
        lo = np.minimum(self.a, self.b) - rmax[:, None]
        hi = np.maximum(self.a, self.b) + rmax[:, None]
        lo[:, 2] -= z_squash
        hi[:, 2] += z_squash
        hit = np.nonzero((hi[:, 2] >= zlo) & (lo[:, 2] <= zhi))[0]
        if not len(hit):
            return
        i0 = np.maximum(np.floor((lo[hit] - org) / spc).astype(int), 0)
        i1 = np.minimum(np.ceil((hi[hit] - org) / spc).astype(int) + 1, size)
        i0[:, 2] = np.maximum(i0[:, 2], z0)
        i1[:, 2] = np.minimum(i1[:, 2], z0 + nz)
        ok = np.all(i1 > i0, axis=1)
        axes = [grid.axis(0), grid.axis(1), grid.axis(2)]
        a32 = self.a.astype(np.float32)
        d32 = (self.b - self.a).astype(np.float32)
        dd = np.maximum((d32.astype(float) ** 2).sum(1), 1e-12)
        dn = (d32 / dd[:, None]).astype(np.float32)
        ra = self.ra.astype(np.float32)
        dr = (self.rb - self.ra).astype(np.float32)
        for j in np.nonzero(ok)[0]:
            i = hit[j]
            (x0, y0, zz0), (x1, y1, zz1) = i0[j], i1[j]
            a, d, n = a32[i], d32[i], dn[i]
            px = axes[0][x0:x1][None, None, :] - a[0]
            py = axes[1][y0:y1][None, :, None] - a[1]
            pz = axes[2][zz0:zz1][:, None, None] - a[2]
            t = (py * n[1] + px * n[0]) + pz * n[2]
            np.clip(t, 0.0, 1.0, out=t)
            qx = px - t * d[0]
            qx *= qx
            qy = py - t * d[1]
            qx += qy * qy
            qz = pz - t * d[2]
            if z_squash:
                qz = np.maximum(np.abs(qz) - z_squash, 0.0)
            qx += qz * qz
            dist = np.sqrt(qx, out=qx)
            t *= dr[i]
            t += ra[i]
            yield (slice(zz0 - z0, zz1 - z0), slice(y0, y1), slice(x0, x1)), dist, t
