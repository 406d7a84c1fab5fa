"""Procedural adult chest anatomy as implicit shapes in LPS millimetres (x left, y posterior, z superior).

Every function takes broadcastable coordinate arrays: 1-D point lists of equal length, or the axes of a voxel slab
shaped (1, 1, nx), (1, ny, 1), (nz, 1, 1). Non-linear maths is done on the small per-axis or per-slice arrays and
combined by one addition, so shapes cost a few passes over a slab.

Proportions are those of an average adult on a supine inspiration chest CT (our choice, from standard anatomy,
not from the seed papers, which do not describe a phantom): body ~320 x 225 mm, lungs from the apex (z ~ 284 mm)
to the posterior costophrenic recesses (z ~ 30 mm), right hemidiaphragm ~ 12 mm higher than the left, heart
shifted to the left (cardiothoracic ratio ~ 0.5), carina at z ~ 190 mm, T1-T12 ribs sloping down anteriorly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .grid import smoothstep
from .tubes import Tubes

RIGHT, LEFT = 1, 2  # labels.RIGHT_LUNG / labels.LEFT_LUNG
MEDIASTINAL_MARGIN = 2.5  # mm of fat and pleura kept between a mediastinal tube and the lung


def superellipse(x, y, a, b_ant, b_post, px, py_ant, py_post, yc=0.0):
    """(|x|/a)^px + (|y-yc|/b)^py, with the anterior (y < yc) and posterior halves given their own b and py.

    Values below 1 are inside. a, b may depend on z (shape (nz, 1, 1)); only one full-size addition is made.
    """
    dy = y - yc
    ant = dy < 0
    b = np.where(ant, b_ant, b_post)
    py = np.where(ant, np.float32(py_ant), np.float32(py_post))
    return (np.abs(x) / a) ** px + (np.abs(dy) / b) ** py


@dataclass(frozen=True)
class Anatomy:
    """Parameters of one patient; `from_rng` varies them mildly per seed (always within adult norms)."""

    scale: float = 1.0            # in-plane size factor of the whole patient
    body_a: float = 158.0         # body lateral semi-axis (mm) at mid chest
    body_b: float = 112.0         # body antero-posterior semi-axis
    dome_right: float = 104.0     # z of the right hemidiaphragm dome top
    dome_left: float = 92.0       # left dome (lower: the liver lifts the right)
    apex_top: float = 284.0       # z of the lung apices
    midline: float = 3.0          # x of the plane separating right and left lungs (anterior junction line)
    junction_z: float = 198.0     # z where the anterior junction is thinnest (lungs touch)
    heart_centre: tuple = (28.0, -34.0, 102.0)
    heart_axes: tuple = (66.0, 45.0, 50.0)  # long axis, short axis, vertical
    heart_angle: float = float(np.deg2rad(40.0))   # long axis points anterior-left
    heart_floor: float = 74.0     # the central tendon of the diaphragm under the heart
    vertebra_y: float = 46.0      # y of the vertebral body centres
    carina: tuple = (0.0, 2.0, 190.0)
    tube_jitter: tuple = field(default=(0.0, 0.0, 0.0))

    @classmethod
    def from_rng(cls, rng: np.random.Generator) -> "Anatomy":
        u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
        return cls(
            scale=u(0.96, 1.04),
            dome_left=(left := u(86.0, 96.0)),
            dome_right=left + u(9.0, 15.0),
            apex_top=u(278.0, 288.0),
            junction_z=u(188.0, 206.0),
            heart_centre=(u(25.0, 31.0), u(-37.0, -31.0), u(98.0, 106.0)),
            heart_angle=float(np.deg2rad(u(35.0, 45.0))),
            tube_jitter=(u(-2.0, 2.0), u(-2.0, 2.0), u(-3.0, 3.0)),
        )

    # ---------------------------------------------------------------- body wall
    def body_axes(self, z):
        """Body semi-axes (a, b) at height z: constant over chest and upper abdomen, narrowing toward the neck."""
        t = smoothstep((z - 225.0) / 75.0)
        return self.scale * self.body_a * (1 - 0.17 * t), self.scale * self.body_b * (1 - 0.10 * t)

    def body(self, x, y, z, inset=0.0, inset_ant=None, inset_post=None):
        """Superellipse value of the body outline shrunk by `inset` mm (skin, fat layers); < 1 inside."""
        a, b = self.body_axes(z)
        ia = inset if inset_ant is None else inset_ant
        ip = inset if inset_post is None else inset_post
        return superellipse(x, y, a - inset, b - ia, b - ip, 2.3, 2.3, 3.0)

    def cavity(self, x, y, z):
        """Inner surface of the thoracic wall (parietal pleura / inner rib surface); < 1 inside."""
        a, b = self.body_axes(z)
        t = smoothstep((z - 190.0) / 95.0)   # the upper ribs close in toward the thoracic inlet
        return superellipse(x, y, a - (27.0 + 26.0 * t) * self.scale, b - (21.0 + 6.0 * t) * self.scale,
                            b - (22.0 + 6.0 * t) * self.scale, 2.2, 2.2, 2.8)

    # ---------------------------------------------------------------- diaphragm, apices
    def diaphragm(self, x, y):
        """Height (z, mm) of the diaphragm under each hemithorax: two domes, lowest posteriorly (the recesses)."""
        s = self.scale
        dy = y + 5.0
        ky = np.where(dy > 0, np.float32(58.0), np.float32(28.0)) * (dy / (80.0 * s)) ** 2
        right = self.dome_right - 38.0 * ((x + 62.0 * s) / (62.0 * s)) ** 2 - ky
        left = self.dome_left - 38.0 * ((x - 66.0 * s) / (62.0 * s)) ** 2 - ky
        return np.maximum(np.where(x < self.midline, right, left), 28.0)

    def apex(self, x, y, z, side):
        """Dome that narrows each lung into its apex above z = 150 mm (an ellipsoid with a blunt-cone top); < 1 inside.

        Centred medially and long antero-posteriorly, so that at the level of the great vessels it still lets the
        anterior-medial lung edges meet at the anterior junction line.
        """
        s = self.scale
        cx = (-55.0 if side == RIGHT else 55.0) * s
        rz = self.apex_top - 150.0
        return ((x - cx) / (95.0 * s)) ** 2 + ((y - 10.0) / (130.0 * s)) ** 2 \
            + (np.maximum(z - 150.0, 0.0) / rz) ** 1.4

    # ---------------------------------------------------------------- mediastinum
    def envelope_halfwidth(self, y, z):
        """Half-width (mm) around the midline of the mediastinal fat band between the lungs, per (y, z).

        Thin anteriorly (the anterior junction line: 0 mm over a few slices at `junction_z`, ~1.5-2 mm
        a little above and below), wider around the great vessels and trachea, wide at the thoracic inlet.
        """
        gap = np.interp(np.abs(z - self.junction_z), [0.0, 4.0, 20.0, 45.0, 80.0], [0.0, 0.0, 3.5, 10.0, 24.0])
        yy = y / self.scale
        mid = np.interp(yy, [-120.0, -50.0, -25.0, 0.0, 20.0, 36.0, 200.0], [0.0, 0.0, 18.0, 20.0, 14.0, 12.0, 12.0])
        inlet = smoothstep((z - 232.0) / 30.0) * 12.0
        return np.maximum(gap / 2.0, mid + inlet).astype(np.float32)

    def heart(self, x, y, z):
        """Quadratic form of the heart ellipsoid (< 1 inside), long axis rotated toward anterior-left."""
        cx, cy, cz = self.heart_centre
        ax, ay, az = self.heart_axes
        c, s = float(np.cos(self.heart_angle)), float(np.sin(self.heart_angle))
        dx, dy = x - cx, y - cy
        u = (dx * c - dy * s) / ax    # long axis: +x (left) and -y (anterior)
        v = (dx * s + dy * c) / ay
        return u * u + v * v + ((z - cz) / az) ** 2

    def vertebral_radius(self, z):
        return 15.0 + 8.0 * (1.0 - np.clip(z, 0, 300) / 300.0)

    def spine_block(self, x, y, z):
        """Vertebral body, posterior elements and paraspinal muscles: where no lung can be (bool)."""
        r = self.vertebral_radius(z) + 4.0
        body = x * x + (y - self.vertebra_y) ** 2 < r * r
        muscles = (x / (44.0 * self.scale)) ** 2 + ((y - self.vertebra_y - 42.0) / 46.0) ** 2 < 1.0
        return body | muscles

    def mediastinal_lines(self) -> dict[str, np.ndarray]:
        """Centre lines (x, y, z, radius rows, mm) of the mediastinal vessels and the oesophagus, by name.

        The pulmonary arteries end at the hila and the pulmonary veins start there: the intrapulmonary
        trees grow from those points.
        """
        lines = {
            # aorta: ascending, arch, descending (left anterolateral to the spine), abdominal
            "aorta": [(5, -26, 126, 14), (5, -23, 178, 15), (7, -14, 203, 14), (15, 4, 212, 13),
                      (25, 20, 208, 12.5), (30, 27, 192, 12), (29, 27, 150, 12), (24, 22, 100, 11.5),
                      (14, 12, 50, 11), (10, 8, 0, 11)],
            # pulmonary trunk from the right ventricle to its bifurcation, left and right pulmonary arteries
            "trunk": [(14, -52, 138, 12), (18, -34, 158, 14), (20, -14, 168, 13)],
            "left pa": [(20, -14, 168, 11), (38, -2, 172, 10), (50, 6, 166, 9)],
            "right pa": [(20, -14, 168, 11), (0, -6, 168, 11), (-25, -4, 166, 10), (-44, 0, 161, 9)],
            # superior vena cava into the right atrium; brachiocephalic veins
            "svc": [(-27, -14, 246, 9), (-28, -18, 190, 10), (-30, -22, 140, 11)],
            "right bcv": [(-30, -22, 300, 7), (-28, -18, 270, 8), (-27, -14, 246, 9)],
            "left bcv": [(30, -34, 300, 6), (24, -38, 262, 6.5), (8, -40, 244, 7), (-16, -28, 236, 8),
                         (-27, -14, 246, 9)],
            # arch branches
            "brachiocephalic": [(2, -14, 208, 7), (-10, -18, 240, 6.5), (-18, -16, 300, 6)],
            "left carotid": [(10, -6, 212, 5), (13, -10, 300, 5)],
            "left subclavian": [(21, 4, 212, 6), (26, 8, 250, 6), (32, 10, 300, 6)],
            # oesophagus down to the stomach
            "oesophagus": [(5, 18, 300, 7.5), (7, 22, 200, 8), (13, 19, 120, 8), (26, 2, 58, 8), (42, -14, 46, 8)],
            # pulmonary veins, from the lungs into the left atrium
            "right superior pv": [(-40, 4, 142, 6), (-22, 10, 128, 7), (0, 12, 122, 9)],
            "right inferior pv": [(-38, 16, 116, 6), (-20, 16, 118, 7), (0, 12, 122, 9)],
            "left superior pv": [(42, 6, 144, 6), (26, 12, 130, 7), (8, 14, 122, 9)],
            "left inferior pv": [(40, 16, 118, 6), (24, 16, 120, 7), (8, 14, 122, 9)],
        }
        j = np.array([*self.tube_jitter, 0.0])
        out = {}
        for name, line in lines.items():
            p = np.array(line, dtype=float)
            p[:, :2] *= self.scale
            out[name] = p + j
        return out

    def mediastinal_tubes(self) -> Tubes:
        """All mediastinal vessels and the oesophagus as one tube set."""
        return Tubes.concat([Tubes.from_polyline(p) for p in self.mediastinal_lines().values()])

    def trachea(self) -> np.ndarray:
        """Centre line of the trachea (x, y, z, lumen radius) from the top of the field down to the carina."""
        j = np.array([*self.tube_jitter[:2], 0.0, 0.0])
        cx, cy, cz = self.carina
        return np.array([(0, -26, 310, 9.0), (0, -12, 245, 9.5), (cx, cy, cz, 9.0)]) + j

    # ---------------------------------------------------------------- lungs
    def thorax(self, x, y, z, diaphragm=None):
        """Inside the thoracic cavity and above the diaphragm (bool)."""
        dia = self.diaphragm(x, y) if diaphragm is None else diaphragm
        return (self.cavity(x, y, z) < 1.0) & (z > dia)

    def heart_box(self):
        """Physical bounding box (lo, hi) of the pericardium."""
        cx, cy, cz = self.heart_centre
        r = 1.1 * max(self.heart_axes[:2])
        return (cx - r, cy - r, self.heart_floor - 5.0), (cx + r, cy + r, cz + 1.1 * self.heart_axes[2])

    def pericardium(self, x, y, z):
        """Heart with its pericardial fat (4-5 mm), standing on the diaphragm."""
        return (self.heart(x, y, z) < 1.18) & (z > self.heart_floor - 4.0)

    def lung(self, x, y, z, side, med_sdf, thorax=None, pericardium=None, margin=MEDIASTINAL_MARGIN):
        """Boolean lung region of one side; med_sdf: signed distance to the mediastinal tubes at (x, y, z).

        The lung fills the thorax (cavity above the diaphragm) below the apex, except the mediastinum:
        the fat band between the lungs, the heart in its pericardial fat, spine and paraspinal muscles, and
        `margin` mm of fat around every mediastinal tube. `thorax` and `pericardium` may be given when
        already computed.
        """
        inside = self.thorax(x, y, z) if thorax is None else thorax
        inside = inside & (self.apex(x, y, z, side) < 1.0)
        inside &= (x < self.midline) if side == RIGHT else (x >= self.midline)
        inside &= np.abs(x - self.midline) >= self.envelope_halfwidth(y, z)
        inside &= ~(self.pericardium(x, y, z) if pericardium is None else pericardium)
        inside &= ~self.spine_block(x, y, z)
        inside &= med_sdf >= margin
        return inside

    def lung_points(self, pts: np.ndarray, side: int, tubes: Tubes) -> np.ndarray:
        """`lung` at scattered points (n, 3) -> bool (n,); tubes: every mediastinal tube (vessels, airways)."""
        pts = np.asarray(pts, dtype=float)
        return self.lung(pts[:, 0], pts[:, 1], pts[:, 2], side, tubes.sdf_points(pts))

    def fissures(self, x, y, z, side):
        """Interlobar fissures of one lung: list of (signed distance in mm, unit normal (nx, ny, nz)).

        The oblique fissure: a surface from high posteriorly (z ~ 215-225 mm at the back) to the anterior
        diaphragm (z ~ 75 mm), separating the lower lobe (behind and below) from the upper (and middle) lobe.
        The right horizontal fissure is left out on purpose: nearly parallel to axial slices, it shows as a
        broad faint haze on thick slices that would mimic ground glass.
        """
        s = self.scale
        top = 215.0 if side == RIGHT else 225.0
        ya, za, yb = -70.0 * s, 75.0, 85.0 * s
        ty, tz = yb - ya, top - za
        norm = float(np.hypot(ty, tz))
        ny, nz = -tz / norm, ty / norm
        # laterally the fissure lies more anteriorly: on axial slices it runs from posteromedial to anterolateral
        k = -0.25
        c = 1.0 / np.sqrt(1.0 + k * k)
        oblique = ((y - ya) * (ny * c) + (z - za) * (nz * c)) + (np.abs(x) - 40.0 * s) * (k * c)
        return [(oblique, (k * c, ny * c, nz * c))]
