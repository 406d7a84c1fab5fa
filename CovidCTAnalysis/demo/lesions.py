"""COVID-19-like lesions for the demo CT: ground-glass opacities and consolidations with known truth.

Their distribution follows the typical COVID-19 pattern reported on CT (bilateral, peripheral/subpleural,
posterior and lower-lobe predominance; e.g. Bernheim et al., Radiology 2020; Chung et al., Radiology 2020): most
lesions sit on the pleura, and at least one consolidation and one ground-glass opacity are flush with the chest
wall, the case where threshold-based lung segmentation wrongly leaves the lesion out of the lung.

A lesion is an irregular blob: a sum of 3-5 axis-aligned Gaussian bumps modulated by (1 + a low-amplitude sum of
separable cosines), thresholded. Everything separates into 1-D factors, so a lesion costs a few passes over its box.
Its size is calibrated by Monte Carlo in physical space (inside the lung), then the voxel truth is what counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import LEFT, RIGHT, Anatomy
from .tubes import Tubes

GGO, CONSOLIDATION = 1, 2  # labels.GGO / labels.CONSOLIDATION
THRESHOLD = 0.5


@dataclass
class LesionShape:
    """One lesion in physical space: label, side, bumps (centres, sigmas, weights) and a perturbation."""

    label: int
    side: int
    centre: np.ndarray          # (3,) the placement point (not the centre of mass of the voxels)
    centres: np.ndarray         # (k, 3) bump centres (mm)
    sigmas: np.ndarray          # (k, 3) bump sigmas along x, y, z (mm)
    weights: np.ndarray         # (k,)
    waves: np.ndarray           # (m, 7): amplitude, kx, ky, kz, phase_x, phase_y, phase_z
    hu: float                   # base attenuation
    texture: float              # texture amplitude (HU)
    edge: float                 # width of the soft margin in field units (GGO: ill-defined margin)

    def scaled(self, f: float) -> "LesionShape":
        """The same lesion grown by factor f about its placement point."""
        c = self.centre + (self.centres - self.centre) * f
        w = self.waves.copy()
        w[:, 1:4] /= f
        w[:, 4:7] += self.centre[None, :] * w[:, 1:4] * (f - 1.0)
        return LesionShape(self.label, self.side, self.centre, c, self.sigmas * f, self.weights, w,
                           self.hu, self.texture, self.edge)

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """Physical bounding box (lo, hi) outside which the field is below threshold."""
        reach = 2.6 * self.sigmas
        return (self.centres - reach).min(0), (self.centres + reach).max(0)

    def field(self, x, y, z) -> np.ndarray:
        """Blob field at the outer product of 1-D axes x, y, z -> (z, y, x); inside where > THRESHOLD."""
        bumps = None
        for c, s, wt in zip(self.centres, self.sigmas, self.weights):
            fx = np.exp(-0.5 * ((x - c[0]) / s[0]) ** 2).astype(np.float32)
            fy = np.exp(-0.5 * ((y - c[1]) / s[1]) ** 2).astype(np.float32)
            fz = np.exp(-0.5 * ((z - c[2]) / s[2]) ** 2).astype(np.float32) * np.float32(wt)
            term = fz[:, None, None] * np.outer(fy, fx)[None]
            bumps = term if bumps is None else bumps + term
        waves = np.ones_like(bumps)
        for amp, kx, ky, kz, px, py, pz in self.waves:
            cx = np.cos(kx * x + px).astype(np.float32)
            cy = np.cos(ky * y + py).astype(np.float32)
            cz = (amp * np.cos(kz * z + pz)).astype(np.float32)
            waves += cz[:, None, None] * np.outer(cy, cx)[None]
        bumps *= waves
        return bumps

    def field_points(self, pts: np.ndarray) -> np.ndarray:
        bumps = np.zeros(len(pts))
        for c, s, wt in zip(self.centres, self.sigmas, self.weights):
            bumps += wt * np.exp(-0.5 * (((pts - c) / s) ** 2).sum(1))
        waves = np.ones(len(pts))
        for amp, kx, ky, kz, px, py, pz in self.waves:
            waves += amp * np.cos(kx * pts[:, 0] + px) * np.cos(ky * pts[:, 1] + py) * np.cos(kz * pts[:, 2] + pz)
        return bumps * waves


# Roles: (label, side, touches the pleura, where, target volume range in mL). The first two guarantee the
# pleural consolidation and ground-glass opacity; the last is a deeper, non-pleural opacity.
ROLES = (
    (CONSOLIDATION, RIGHT, True, "posterior-lower", (8.0, 25.0)),
    (GGO, LEFT, True, "posterior-lower", (12.0, 38.0)),
    (GGO, RIGHT, True, "lateral", (6.0, 20.0)),
    (CONSOLIDATION, LEFT, True, "posterior-lower", (4.0, 14.0)),
    (GGO, LEFT, True, "anterior-upper", (3.0, 12.0)),
    (GGO, RIGHT, True, "posterior-upper", (4.0, 15.0)),
    (GGO, RIGHT, False, "deep", (2.5, 8.0)),
)


def _direction(rng, where: str, side: int) -> np.ndarray:
    """Outward direction for a role: mostly in-plane, toward the named part of the chest wall."""
    lateral = -1.0 if side == RIGHT else 1.0
    if where.startswith("posterior"):
        ang = rng.uniform(0.15, 0.9)        # angle from straight posterior toward lateral
        v = np.array([lateral * np.sin(ang), np.cos(ang), rng.uniform(-0.25, 0.05)])
    elif where == "lateral":
        ang = rng.uniform(-0.4, 0.4)
        v = np.array([lateral * np.cos(ang), np.sin(ang), rng.uniform(-0.2, 0.2)])
    elif where == "anterior-upper":
        ang = rng.uniform(0.3, 0.9)
        v = np.array([lateral * np.sin(ang), -np.cos(ang), rng.uniform(-0.1, 0.2)])
    else:
        v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _exit_point(anatomy: Anatomy, tubes: Tubes, start, direction, side, length=220.0, step=1.0):
    """First point where a ray from `start` leaves the lung (None if it never does within `length`)."""
    t = np.arange(0.0, length, step)
    pts = start[None, :] + t[:, None] * direction[None, :]
    inside = anatomy.lung_points(pts, side, tubes)
    out = np.nonzero(~inside)[0]
    if not len(out) or out[0] == 0:
        return None
    return pts[out[0] - 1], float(t[out[0] - 1])


def _random_shape(rng, label, side, centre, radius) -> LesionShape:
    k = int(rng.integers(3, 6))
    offsets = rng.normal(scale=0.42 * radius, size=(k, 3))
    offsets[0] = 0.0
    sig = radius * rng.uniform(0.42, 0.62, size=(k, 3))
    sig[:, 2] *= rng.uniform(0.9, 1.4)              # often a little longer cranio-caudally
    weights = rng.uniform(0.7, 1.0, size=k)
    weights[0] = 1.0
    m = 3
    waves = np.column_stack([
        rng.uniform(0.10, 0.20, m),                  # relative amplitude
        rng.uniform(0.4, 1.0, (m, 3)) * (2 * np.pi / (1.2 * radius)),
        rng.uniform(0, 2 * np.pi, (m, 3)),
    ])
    if label == GGO:
        hu, texture, edge = rng.uniform(-660.0, -520.0), rng.uniform(35.0, 55.0), 0.35
    else:
        hu, texture, edge = rng.uniform(-40.0, 35.0), rng.uniform(10.0, 18.0), 0.08
    return LesionShape(label, side, np.asarray(centre, float), centre + offsets, sig, weights, waves,
                       float(hu), float(texture), edge)


def _volume_ml(shape: LesionShape, anatomy: Anatomy, tubes: Tubes, rng, n=6000) -> float:
    lo, hi = shape.box()
    pts = rng.uniform(lo, hi, size=(n, 3))
    hit = shape.field_points(pts) > THRESHOLD
    if hit.any():
        hit[hit] = anatomy.lung_points(pts[hit], shape.side, tubes)
    return float(hit.mean() * np.prod(hi - lo) / 1000.0)


def plan(anatomy: Anatomy, tubes: Tubes, lung_points: dict[int, np.ndarray],
         rng: np.random.Generator) -> list[LesionShape]:
    """Place one lesion per role. lung_points: points sampled inside each lung (anchors for the rays)."""
    placed: list[tuple[np.ndarray, float]] = []
    shapes = []
    for label, side, touching, where, (vmin, vmax) in ROLES:
        target = float(np.exp(rng.uniform(np.log(vmin), np.log(vmax))))
        radius = (3.0 * target * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
        cand = lung_points[side]
        x, y, z = np.abs(cand[:, 0]), cand[:, 1], cand[:, 2]
        if where == "posterior-lower":
            keep = (z < 150.0) & (y > 0.0) & (x > 45.0)
        elif where == "posterior-upper":
            keep = (z > 165.0) & (z < 250.0) & (y > -10.0) & (x > 45.0)
        elif where == "anterior-upper":
            keep = (z > 160.0) & (z < 250.0) & (y < 0.0) & (x > 30.0)
        else:
            keep = (z > 110.0) & (z < 190.0)
        pool = cand[keep] if keep.any() else cand
        for _attempt in range(60):
            anchor = pool[rng.integers(len(pool))]
            direction = _direction(rng, where, side)
            hit = _exit_point(anatomy, tubes, anchor, direction, side)
            if hit is None:
                continue
            surface, dist = hit
            if touching:
                centre = surface - direction * (0.45 * radius)
            else:
                if dist < 2.0 * radius + 12.0:
                    continue
                centre = anchor + direction * (dist - radius - 12.0) * rng.uniform(0.2, 0.8)
                # keep deep lesions away from any pleura, in every direction
                dirs = rng.normal(size=(12, 3))
                dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
                if any((h := _exit_point(anatomy, tubes, centre, dv, side)) is None or h[1] < radius + 8.0
                       for dv in dirs):
                    continue
            if not anatomy.lung_points(centre[None], side, tubes)[0]:
                continue
            if any(np.linalg.norm(centre - c) < 1.25 * (radius + r) + 4.0 for c, r in placed):
                continue
            shape = _random_shape(rng, label, side, centre, radius)
            grown = 1.0
            for _ in range(2):  # calibrate the clipped volume toward the target
                v = _volume_ml(shape, anatomy, tubes, rng)
                if v <= 0:
                    break
                f = float(np.clip((target / v) ** (1.0 / 3.0), 0.7, 1.5))
                shape = shape.scaled(f)
                grown *= f
            placed.append((centre, radius * max(grown, 1.0) * 1.1))
            shapes.append(shape)
            break
    return shapes
