"""COVID-19-like lesions for the demo CT: ground-glass opacities and consolidations with known truth.

Their distribution follows the typical COVID-19 pattern reported on CT (bilateral, peripheral/subpleural,
posterior and lower-lobe predominance; e.g. Bernheim et al., Radiology 2020; Chung et al., Radiology 2020): most
lesions sit on the pleura, and at least one consolidation and one ground-glass opacity are flush with the chest
wall, the case where threshold-based lung segmentation wrongly leaves the lesion out of the lung.

A lesion is an irregular blob: a sum of axis-aligned Gaussian bumps modulated by (1 + a low-amplitude sum of
separable cosines), thresholded. Everything separates into 1-D factors, so a lesion costs a few passes over its box.
Its size is calibrated by Monte Carlo in physical space (inside the lung), then the voxel truth is what counts.

Ground-glass opacities: 3-5 broad bumps, -660..-520 HU with texture and an ill-defined margin; vessels are painted
after them and stay visible through them (render.py). Consolidations look like the subpleural, lobular to segmental
COVID-19 consolidations of the same reports: 6-9 smaller bumps spread along the pleura (a plaque or wedge with its
base on the chest wall, thinner toward the hilum), a lobulated margin (stronger, finer cosine modulation), -70..+30
HU with +-18..30 HU of heterogeneity, and one or two air bronchograms (air tubes from the lesion's deep side toward
the pleura, fading out before its margin). The truth of a consolidation includes its air bronchograms, as in
radiologists' masks.
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
    bronchi: np.ndarray | None = None   # (n, 7) air bronchograms: start xyz, end xyz, radius (mm)

    def scaled(self, f: float) -> "LesionShape":
        """The same lesion grown by factor f about its placement point."""
        c = self.centre + (self.centres - self.centre) * f
        w = self.waves.copy()
        w[:, 1:4] /= f
        w[:, 4:7] += self.centre[None, :] * w[:, 1:4] * (f - 1.0)
        br = None
        if self.bronchi is not None:
            br = self.bronchi.copy()
            br[:, 0:3] = self.centre + (br[:, 0:3] - self.centre) * f
            br[:, 3:6] = self.centre + (br[:, 3:6] - self.centre) * f
        return LesionShape(self.label, self.side, self.centre, c, self.sigmas * f, self.weights, w,
                           self.hu, self.texture, self.edge, br)

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

    def bronchogram(self, x, y, z) -> np.ndarray | None:
        """Air-bronchogram coverage (0..1, partial volume over one in-plane voxel) at the outer product of 1-D
        axes x, y, z -> (z, y, x); None when the lesion has none."""
        if self.bronchi is None or not len(self.bronchi):
            return None
        h = float(min(abs(x[1] - x[0]) if len(x) > 1 else 1.0, abs(y[1] - y[0]) if len(y) > 1 else 1.0))
        px, py, pz = x[None, None, :], y[None, :, None], z[:, None, None]
        cover = np.zeros((len(z), len(y), len(x)), np.float32)
        for ax, ay, az, bx, by, bz, r in self.bronchi:
            d = np.array([bx - ax, by - ay, bz - az], np.float32)
            dd = max(float(d @ d), 1e-9)
            t = ((px - ax) * d[0] + (py - ay) * d[1] + (pz - az) * d[2]) / dd
            np.clip(t, 0.0, 1.0, out=t)
            dist = np.sqrt((px - ax - t * d[0]) ** 2 + (py - ay - t * d[1]) ** 2 + (pz - az - t * d[2]) ** 2)
            amp = min(1.0, 2.2 * r / h)                  # a lumen thinner than a voxel only darkens it
            np.maximum(cover, amp * np.clip((r - dist) / h + 0.5, 0.0, 1.0), out=cover)
        return cover

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


def _random_shape(rng, label, side, centre, radius, direction=None) -> LesionShape:
    """A lesion of about `radius` (mm) at `centre`; direction (unit, toward the nearest pleura) orients a
    consolidation along the chest wall (without it a consolidation is blob-shaped like a GGO)."""
    if label == CONSOLIDATION and direction is not None:
        return _consolidation_shape(rng, side, centre, radius, direction)
    k = int(rng.integers(3, 6))
    offsets = rng.normal(scale=0.42 * radius, size=(k, 3))
    offsets[0] = 0.0
    sig = radius * rng.uniform(0.42, 0.62, size=(k, 3))
    sig[:, 2] *= rng.uniform(0.9, 1.4)              # often a little longer cranio-caudally
    weights = rng.uniform(0.7, 1.0, size=k)
    weights[0] = 1.0
    waves = _margin_waves(rng, 3, (0.10, 0.20), (0.4, 1.0), 1.2 * radius)
    if label == GGO:
        hu, texture, edge = rng.uniform(-660.0, -520.0), rng.uniform(35.0, 55.0), 0.35
    else:
        hu, texture, edge = _consolidation_density(rng)
    return LesionShape(label, side, np.asarray(centre, float), centre + offsets, sig, weights, waves,
                       float(hu), float(texture), edge)


def _margin_waves(rng, m: int, amplitude, frequency, wavelength: float) -> np.ndarray:
    """``m`` sinusoidal ripples of the lesion margin: rows (relative amplitude, 3 spatial frequencies, 3 phases)."""
    return np.column_stack([
        rng.uniform(*amplitude, m),
        rng.uniform(*frequency, (m, 3)) * (2 * np.pi / wavelength),
        rng.uniform(0, 2 * np.pi, (m, 3)),
    ])


def _consolidation_density(rng) -> tuple[float, float, float]:
    """(mean HU, texture SD in HU, edge softness) of a consolidation: soft-tissue density, uneven, sharp-edged."""
    return rng.uniform(-70.0, 30.0), rng.uniform(18.0, 30.0), 0.12


def _frame(direction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit outward normal u and two tangents: t1 horizontal, t2 roughly cranio-caudal along the pleura."""
    u = np.asarray(direction, float)
    u = u / np.linalg.norm(u)
    t1 = np.cross(u, [0.0, 0.0, 1.0])
    if np.linalg.norm(t1) < 1e-3:
        t1 = np.cross(u, [1.0, 0.0, 0.0])
    t1 /= np.linalg.norm(t1)
    return u, t1, np.cross(u, t1)


def _consolidation_shape(rng, side, centre, radius, direction) -> LesionShape:
    """A subpleural lobular/segmental consolidation: bumps spread along the pleura (base on the chest wall,
    thinner toward the hilum), a lobulated margin, heterogeneous soft-tissue density, air bronchograms."""
    u, t1, t2 = _frame(direction)
    centre = np.asarray(centre, float)
    k = int(rng.integers(6, 10))
    along1 = rng.normal(scale=0.55 * radius, size=k)
    along2 = rng.normal(scale=0.75 * radius, size=k)
    depth = rng.uniform(-0.45, 0.25, size=k) * radius      # + toward the pleura
    offsets = along1[:, None] * t1 + along2[:, None] * t2 + depth[:, None] * u
    offsets[0] = 0.0
    sig = radius * rng.uniform(0.30, 0.46, size=(k, 3))
    weights = rng.uniform(0.6, 1.0, size=k)
    weights[0] = 1.0
    waves = _margin_waves(rng, 4, (0.15, 0.28), (0.6, 1.4), 1.0 * radius)  # a lobulated margin
    hu, texture, edge = _consolidation_density(rng)
    bronchi = []
    for _ in range(int(rng.integers(1, 3))):     # from the deep side, obliquely along the lesion toward the pleura
        lateral = rng.normal(scale=0.2 * radius, size=2)
        start = centre - 0.35 * radius * u + lateral[0] * t1 + lateral[1] * t2
        run = rng.normal(size=2)
        run *= 0.6 * radius / np.linalg.norm(run)
        end = start + 0.5 * radius * u + run[0] * t1 + run[1] * t2
        bronchi.append([*start, *end, rng.uniform(1.1, 1.8)])
    return LesionShape(CONSOLIDATION, side, centre, centre + offsets, sig, weights, waves, float(hu),
                       float(texture), edge, np.asarray(bronchi, float))


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
            shape = _random_shape(rng, label, side, centre, radius, direction)
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
