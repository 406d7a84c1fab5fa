"""Bones of the demo chest: thoracic spine, ribs with costal cartilages, sternum, scapulae and clavicles.

HU follow the usual CT values: cortical bone ~ +700, cancellous (marrow) bone ~ +250, intervertebral disc ~ +85,
costal cartilage ~ +110, spinal canal ~ +20. Ribs are bands following the outside of the thoracic cavity, one
per 22.5 mm posteriorly, sloping down anteriorly (the lower the rib, the steeper), 11th and 12th ribs floating.
"""

from __future__ import annotations

import numpy as np

from .anatomy import Anatomy
from .grid import smoothstep
from .tubes import Tubes

CORTEX, MARROW, DISC, CARTILAGE, CANAL = 700.0, 250.0, 85.0, 110.0, 20.0
RIB_TOP, RIB_STEP, N_RIBS = 292.0, 22.5, 12
RIB_DROP0, RIB_DROP_STEP = 35.0, 5.5       # anterior drop (mm) of rib k: RIB_DROP0 + k * RIB_DROP_STEP
RIB_PHI_START = 0.42                       # angle from the posterior midline where the rib band starts
RIB_OFFSET, RIB_HALF_R, RIB_HALF_Z = 6.0, 3.6, 6.5   # rib centre outside the cavity; half thickness; half height


def rib_drop(phi):
    """Fraction of the anterior drop reached at angle phi (0 posterior midline, pi anterior midline)."""
    return ((1.0 - np.cos(phi)) / 2.0) ** 1.3


def outside_distance(cavity_value, rho):
    """Approximate distance (mm) outside the cavity surface from its superellipse value and the radius."""
    return (cavity_value - 1.0) * rho / 2.4


def paint_ribs(img, anatomy: Anatomy, cav, z, phi, rho, keep):
    """Ribs and costal cartilages into img (slab) where `keep`; cav: cavity value; phi, rho: 2-D angle, radius.

    Only the shell just outside the cavity is evaluated (gathered voxels), which is where ribs can be.
    """
    ny, nx = phi.shape[-2:]
    reach = (RIB_OFFSET + RIB_HALF_R) * 2.4
    shell = (cav > 1.0) & (cav < 1.0 + reach / np.maximum(rho, 1.0)) & keep & (phi > RIB_PHI_START)
    flat = np.flatnonzero(shell)
    if not len(flat):
        return
    plane = flat % (ny * nx)
    p = phi.reshape(-1)[plane]
    r = rho.reshape(-1)[plane]
    zz = np.broadcast_to(z, (len(z), 1, 1)).reshape(-1)[flat // (ny * nx)]
    g = rib_drop(p)
    pitch = RIB_STEP + RIB_DROP_STEP * g
    kf = (RIB_TOP - RIB_DROP0 * g - zz) / pitch              # fractional rib index
    k = np.rint(kf)
    dz = (kf - k) * pitch
    dr = outside_distance(cav.reshape(-1)[flat], r) - RIB_OFFSET
    q = (dz / RIB_HALF_Z) ** 2 + (dr / RIB_HALF_R) ** 2
    rib = (q < 1.0) & (k >= 0) & (k < N_RIBS)
    rib &= p < np.where(k >= 10, 2.0, np.where(k >= 7, 2.75, 2.95))
    cart = p > np.where(k >= 7, 2.4, 2.5)
    hu = np.where(cart, CARTILAGE, np.where(q > 0.4, CORTEX, MARROW)).astype(img.dtype)
    img.reshape(-1)[flat[rib]] = hu[rib]


def rib_necks(anatomy: Anatomy) -> Tubes:
    """Short tubes from each rib's posterior end to the side of its vertebra (the rib necks and heads)."""
    parts = []
    yv = anatomy.vertebra_y
    for k in range(N_RIBS):
        zk = RIB_TOP - k * RIB_STEP
        for sign in (-1.0, 1.0):
            t = np.linspace(20.0, 200.0, 721)
            px = sign * np.sin(RIB_PHI_START) * t
            py = np.cos(RIB_PHI_START) * t
            cav = anatomy.cavity(px, py, np.full_like(t, zk))
            i = int(np.argmax(cav >= 1.0))
            rho = np.hypot(px[i], py[i]) + RIB_OFFSET
            start = (sign * np.sin(RIB_PHI_START) * rho, np.cos(RIB_PHI_START) * rho, zk)
            parts.append(Tubes.from_polyline([
                (sign * 16.0, yv + 4.0, zk + 4.0, 4.0),
                (sign * 31.0, yv + 26.0, zk + 2.0, 4.2),
                (*start, 4.0),
            ]))
    return Tubes.concat(parts)


def clavicles(anatomy: Anatomy) -> Tubes:
    s = anatomy.scale
    parts = []
    for sign in (-1.0, 1.0):
        parts.append(Tubes.from_polyline([
            (sign * 20 * s, -92 * s, 268, 7.0), (sign * 60 * s, -92 * s, 280, 6.5),
            (sign * 100 * s, -78 * s, 288, 6.0), (sign * 118 * s, -55 * s, 292, 6.5),
        ]))
    return Tubes.concat(parts)


def paint_tube_bone(img, sdf, keep, h):
    """Bone from a tube signed distance: cortex in the outer 1.8 mm, marrow inside, partial volume at the edge."""
    flat = np.flatnonzero(sdf < 0.5 * h)
    flat = flat[keep.reshape(-1)[flat]]
    d = sdf.reshape(-1)[flat]
    w = np.clip(0.5 - d / h, 0.0, 1.0)
    hu = np.where(d > -1.8, CORTEX, MARROW).astype(np.float32)
    pix = img.reshape(-1)
    pix[flat] += w * (hu - pix[flat])


def paint_spine(img, anatomy: Anatomy, x, y, z):
    """Vertebral bodies, discs, spinal canal, arches, spinous and transverse processes (slab, in place)."""
    yv = anatomy.vertebra_y
    rv = anatomy.vertebral_radius(z)
    u = np.mod(z - 7.0, 25.0)                      # position within one vertebra (disc at u < 5)
    disc = u < 5.0
    arch_level = (u > 3.0) & (u < 21.0)
    r2 = x * x + (y - yv) ** 2
    body = r2 < rv * rv
    yc = yv + rv + 7.0
    c2 = x * x + (y - yc) ** 2
    canal = c2 < 7.5 ** 2
    arch = (c2 < 13.0 ** 2) & ~canal & (y > yv) & arch_level
    spinous = (np.abs(x) < 3.5 - (y - yc - 10.0) * 0.06) & (y > yc + 10.0) & (y < yc + 30.0) & (u > 8.0) & (u < 22.0)
    transverse = (np.abs(y - (yc - 1.0)) < 5.0) & (np.abs(x) > 10.0) & (np.abs(x) < 34.0) & (u > 9.0) & (u < 19.0)
    bone_hu = np.where(r2 > (rv - 2.0) ** 2, CORTEX, MARROW)
    np.copyto(img, np.where(disc, DISC, bone_hu).astype(img.dtype), where=body)
    np.copyto(img, np.float32(600.0), where=arch | spinous | transverse)
    np.copyto(img, np.float32(CANAL), where=canal & ~body)


def paint_sternum(img, anatomy: Anatomy, x, y, z):
    """Manubrium, body and xiphoid, just in front of the cavity (slab, in place)."""
    _, b = anatomy.body_axes(z)
    front = -(b - 21.0 * anatomy.scale)
    manubrium = (z > 222.0) & (z < 272.0)
    w = np.where(manubrium, 26.0, np.where(z > 112.0, 15.0, 7.0))
    t = np.where(manubrium, 8.0, 6.0)
    ys = front - t - 2.0
    q = (x / w) ** 2 + ((y - ys) / t) ** 2
    inside = (q < 1.0) & (z > 95.0) & (z < 272.0)
    np.copyto(img, np.where(q > 0.45, CORTEX, MARROW).astype(img.dtype), where=inside)


def paint_scapulae(img, cav, z, phi, rho):
    """Scapular blades: thin plates behind the posterolateral ribs, tapering to the inferior angle."""
    if z.max() <= 165.0 or z.min() >= 275.0:
        return
    d = outside_distance(cav, rho)
    top = smoothstep((z - 165.0) / 45.0) * (z < 275.0)
    plate = (d > 17.0) & (d < 21.0) & (phi > 0.55) & (phi < 0.55 + 0.75 * top) & (z > 165.0)
    np.copyto(img, np.float32(450.0), where=plate)
