"""Voxelizing the demo scene: HU image, lung truth and lesion instances, a few slices (one slab) at a time.

Order of painting in a slab: body wall, thorax and abdomen, heart and mediastinal tubes, lungs (truth), lung
parenchyma, fissures (thin lines), lesions (truth; consolidations with their own air bronchograms), intrapulmonary
vessels (visible through ground glass), bronchial walls, airway lumens (so bronchi stay air inside consolidations:
air bronchograms too), bones; then noise and the in-plane blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bones
from .anatomy import LEFT, MEDIASTINAL_MARGIN, RIGHT, Anatomy
from .grid import Grid
from .lesions import THRESHOLD
from .scene import Scene

AIR, FAT, SKIN, MUSCLE, BLOOD, MED_FAT = -1000.0, -100.0, 25.0, 40.0, 40.0, -90.0
LIVER, SPLEEN, STOMACH, ABDOMEN = 58.0, 48.0, 12.0, 25.0
LUNG_ANTERIOR, LUNG_POSTERIOR = -890.0, -845.0   # supine gravity gradient of normal parenchyma
LUNG_TEXTURE = 10.0
FISSURE_THICKNESS = 1.0                          # mm
NOISE_SIGMA = 50.0                               # white noise before the in-plane [1 2 1] blur: ~19 HU after
SLAB_VOXELS = 4_000_000                          # voxels per slab: bounds memory for large volumes
FAR = np.float32(1e4)                            # 'no tube near' signed distance (mm)


def render(scene: Scene, grid: Grid, rng_noise):
    """Voxelize the scene slab by slab -> (image float32 HU, lungs uint8 truth, lesion instance ids uint8)."""
    nx, ny, nz = grid.size
    image = np.empty((nz, ny, nx), np.float32)
    lungs = np.zeros((nz, ny, nx), np.uint8)
    instance = np.zeros((nz, ny, nx), np.uint8)
    step = max(1, SLAB_VOXELS // (nx * ny))
    x = grid.axis(0)[None, None, :]
    y = grid.axis(1)[None, :, None]
    a = scene.anatomy
    plane = dict(dia=a.diaphragm(x, y)[0][None], phi=np.abs(np.arctan2(x, y)), rho=np.hypot(x, y))
    noise = np.empty((step, ny, nx), np.float32)
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        slab = image[z0:z1]
        _render_slab(scene, grid, z0, z1, x, y, plane, slab, lungs[z0:z1], instance[z0:z1])
        buf = noise[:z1 - z0]
        rng_noise.standard_normal(out=buf, dtype=np.float32)
        buf *= NOISE_SIGMA
        slab += buf
        _blur_inplane(slab, buf)
        np.clip(slab, -1024.0, 3071.0, out=slab)
    return image, lungs, instance


def _blur_inplane(slab, tmp):
    """In-place [1 2 1]/4 blur along y then x (a Gaussian of sigma ~0.7 voxel: the kernel's noise correlation)."""
    for axis in (1, 2):
        lo = [slice(None)] * 3
        mid, hi = list(lo), list(lo)
        lo[axis], mid[axis], hi[axis] = slice(None, -2), slice(1, -1), slice(2, None)
        lo, mid, hi = tuple(lo), tuple(mid), tuple(hi)
        np.add(slab[lo], slab[hi], out=tmp[mid])
        tmp[mid] *= 0.25
        slab[mid] *= 0.5
        slab[mid] += tmp[mid]


def _blend(img, sdf, value, h, where=None):
    """img += w * (value - img), w = partial-volume coverage of a tube from its signed distance (sparse)."""
    flat = np.flatnonzero(sdf < 0.5 * h)
    if where is not None:
        flat = flat[where.reshape(-1)[flat]]
    w = np.clip(0.5 - sdf.reshape(-1)[flat] / h, 0.0, 1.0)
    pix = img.reshape(-1)
    pix[flat] += w * (np.float32(value) - pix[flat])


def _blend_coverage(img, cover, value, where=None):
    """img += cover * (value - img) where the coverage is positive (sparse)."""
    flat = np.flatnonzero(cover)
    if where is not None:
        flat = flat[where.reshape(-1)[flat]]
    pix = img.reshape(-1)
    pix[flat] += cover.reshape(-1)[flat] * (np.float32(value) - pix[flat])


def _sub_box(grid: Grid, lo, hi, x, y):
    """Index slices (y, x) and the matching sub-axes of an in-plane physical box."""
    ix, iy = grid.index_range(0, lo[0], hi[0]), grid.index_range(1, lo[1], hi[1])
    sx, sy = slice(*ix), slice(*iy)
    return (sy, sx), x[..., sx], y[:, sy]


@dataclass
class _Slab:
    """One slab being painted: its coordinates, its arrays (views into the volumes) and shared masks."""

    grid: Grid
    z0: int
    x: np.ndarray            # (1, 1, nx) mm
    y: np.ndarray            # (1, ny, 1) mm
    z: np.ndarray            # (nz, 1, 1) mm
    plane: dict              # per-slice 2-D maps: diaphragm height, angle and radius around the axis
    img: np.ndarray          # HU
    lungs: np.ndarray        # lung truth
    instance: np.ndarray     # lesion instance ids

    @property
    def h(self) -> float:
        return float(min(self.grid.spacing[:2]))


def _render_slab(scene: Scene, grid: Grid, z0, z1, x, y, plane, img, lungs, instance):
    a = scene.anatomy
    sl = _Slab(grid, z0, x, y, grid.axis(2, z0, z1)[:, None, None], plane, img, lungs, instance)
    body, cav_value = _paint_body_wall(a, sl)
    cavity = cav_value < 1.0
    below = sl.z < plane["dia"]
    thorax = cavity & ~below
    peri, heart = _heart(a, sl)
    med_sdf = np.full(img.shape, FAR, np.float32)
    scene.mediastinal.rasterize_min(med_sdf, grid, z0, reach=MEDIASTINAL_MARGIN + 2 * sl.h)
    _lung_truth(a, sl, thorax, peri, med_sdf)
    lung = lungs > 0
    _paint_abdomen(a, sl, cavity & below)
    med = _paint_mediastinum(a, sl, thorax, lung, peri, heart, med_sdf, body)
    del med_sdf, peri, heart
    _paint_parenchyma(scene, sl, lung)
    _paint_fissures(a, grid, x, y, sl.z, img, lungs)
    _paint_lesions(scene, grid, z0, z1, img, lungs, instance)
    _paint_airways_and_vessels(scene, sl, lung, med, cavity)
    _paint_bones(scene, sl, body & ~lung, cav_value)


def _paint_body_wall(a: Anatomy, sl: _Slab):
    """Air, then the body as muscle with subcutaneous fat and skin -> (body mask, cavity superellipse value)."""
    x, y, z, img = sl.x, sl.y, sl.z, sl.img
    img.fill(AIR)
    body = a.body(x, y, z) < 1.0
    np.copyto(img, np.float32(MUSCLE), where=body)
    np.copyto(img, np.float32(FAT), where=body & (a.body(x, y, z, 13.0 * a.scale, 9.0, 11.0) >= 1.0))
    np.copyto(img, np.float32(SKIN), where=body & (a.body(x, y, z, 2.2) >= 1.0))
    return body, a.cavity(x, y, z)


def _heart(a: Anatomy, sl: _Slab):
    """Pericardium (heart and its fat) and heart masks, evaluated in the heart's box only."""
    peri = np.zeros(sl.img.shape, bool)
    heart = np.zeros(sl.img.shape, bool)
    lo, hi = a.heart_box()
    if float(sl.z.max()) >= lo[2] and float(sl.z.min()) <= hi[2]:
        box, hx, hy = _sub_box(sl.grid, lo, hi, sl.x, sl.y)
        peri[(slice(None), *box)] = a.pericardium(hx, hy, sl.z)
        heart[(slice(None), *box)] = (a.heart(hx, hy, sl.z) < 1.0) & (sl.z > a.heart_floor)
    return peri, heart


def _lung_truth(a: Anatomy, sl: _Slab, thorax, peri, med_sdf):
    """Lung labels, one side at a time on its half of the slab (the halves overlap a little at the midline)."""
    half = int(np.searchsorted(sl.grid.axis(0), a.midline))
    for side, xs in ((RIGHT, slice(0, half + 4)), (LEFT, slice(max(half - 4, 0), None))):
        inside = a.lung(sl.x[..., xs], sl.y, sl.z, side, med_sdf[..., xs], thorax=thorax[..., xs],
                        pericardium=peri[..., xs])
        sl.lungs[..., xs][inside] = side


def _paint_abdomen(a: Anatomy, sl: _Slab, abdomen):
    """Under the diaphragm: liver (right and centre), stomach with its gas (air-fluid level), spleen."""
    x, y, z, img, s = sl.x, sl.y, sl.z, sl.img, a.scale
    if float(z.min()) >= float(sl.plane["dia"].max()):
        return
    np.copyto(img, np.float32(ABDOMEN), where=abdomen)
    np.copyto(img, np.float32(LIVER), where=abdomen & (x < 20.0 * s - 0.5 * (y + 20.0)))
    stomach = abdomen & ((((x - 58 * s) / (42 * s)) ** 2 + ((y + 25 * s) / (38 * s)) ** 2
                          + ((z - 50.0) / 42.0) ** 2) < 1.0) & (z < sl.plane["dia"] - 6.0)
    np.copyto(img, np.float32(STOMACH), where=stomach)
    np.copyto(img, np.float32(AIR), where=stomach & (y < -48.0 * s))   # supine: gas rises anteriorly
    spleen = abdomen & ((((x - 92 * s) / (28 * s)) ** 2 + ((y - 45 * s) / (48 * s)) ** 2
                         + ((z - 62.0) / 42.0) ** 2) < 1.0)
    np.copyto(img, np.float32(SPLEEN), where=spleen)


def _paint_mediastinum(a: Anatomy, sl: _Slab, thorax, lung, peri, heart, med_sdf, body):
    """Mediastinal fat, heart, great vessels; the rest of the thorax that is not lung stays chest-wall muscle."""
    x, y, z, img = sl.x, sl.y, sl.z, sl.img
    med = thorax & ~lung & ~a.spine_block(x, y, z) & (
        (np.abs(x - a.midline) < a.envelope_halfwidth(y, z)) | peri | (med_sdf < MEDIASTINAL_MARGIN))
    np.copyto(img, np.float32(MED_FAT), where=med)
    np.copyto(img, np.float32(BLOOD), where=heart & thorax & ~lung)
    _blend(img, med_sdf, BLOOD, sl.h, where=body & ~lung)
    return med


def _paint_parenchyma(scene: Scene, sl: _Slab, lung):
    """Lung parenchyma: supine gravity gradient + mild texture (both folded into the texture sampling)."""
    g = sl.grid
    gradient = LUNG_ANTERIOR + (LUNG_POSTERIOR - LUNG_ANTERIOR) * np.clip((g.axis(1) + 110.0) / 220.0, 0, 1)
    tex = scene.lung_texture.sample(g.axis(0), g.axis(1), sl.z.ravel(), scale=LUNG_TEXTURE, offset_y=gradient)
    np.copyto(sl.img, tex, where=lung)


def _paint_airways_and_vessels(scene: Scene, sl: _Slab, lung, med, cavity):
    """Intrapulmonary vessels (+40), bronchial walls, then airway lumens (air, also through consolidations)."""
    squash = 0.3 * sl.grid.spacing[2]
    cover = np.zeros(sl.img.shape, np.float32)
    for tubes, value, where, z_squash in ((scene.vessels, BLOOD, lung | med, squash),
                                          (scene.airway_wall, MUSCLE, lung, squash),
                                          (scene.bronchi, AIR, lung, 0.0),
                                          (scene.central_airways, AIR, cavity, 0.0)):
        cover.fill(0.0)
        tubes.rasterize_coverage(cover, sl.grid, sl.z0, z_squash=z_squash)
        _blend_coverage(sl.img, cover, value, where=where)


def _paint_bones(scene: Scene, sl: _Slab, keep, cav_value):
    """Ribs, scapulae, sternum, spine and the tube-shaped bones (rib necks, clavicles); never over lung."""
    a, img = scene.anatomy, sl.img
    bones.paint_ribs(img, a, cav_value, sl.z, sl.plane["phi"], sl.plane["rho"], keep)
    bones.paint_scapulae(img, cav_value, sl.z, sl.plane["phi"], sl.plane["rho"])
    for paint, lo, hi in ((bones.paint_sternum, (-35.0, -130.0), (35.0, -60.0)),
                          (bones.paint_spine, (-50.0, 10.0), (50.0, 125.0))):
        box, bx, by = _sub_box(sl.grid, lo, hi, sl.x, sl.y)
        paint(img[(slice(None), *box)], a, bx, by, sl.z)
    sdf = np.full(img.shape, FAR, np.float32)
    scene.bone_tubes.rasterize_min(sdf, sl.grid, sl.z0, reach=sl.h)
    bones.paint_tube_bone(img, sdf, keep, sl.h)


def _paint_fissures(a: Anatomy, grid: Grid, x, y, z, img, lungs):
    """Thin pleural lines (~1 mm) where the fissure surfaces cross each slice's plane.

    A fissure is two layers of visceral pleura, about a millimetre thick; on thin-section CT it is a fine line of
    soft-tissue density. Each slice is treated as a thin section through its centre plane: the line there is
    FISSURE_THICKNESS / |n_xy| wide in-plane (n: the surface normal) and is partial-volumed over the in-plane pixel
    only. Smearing it over the 3 mm slice thickness instead (the phantom's earlier rendering) turned every oblique
    fissure into a 4-6 mm grey band at about -600 HU: ground glass in density and width, which no real fissure is.
    """
    sx, sy, _ = grid.spacing
    half = int(np.searchsorted(grid.axis(0), a.midline))
    pix = img.reshape(-1)
    for side, sl in ((RIGHT, slice(0, half)), (LEFT, slice(half, None))):
        xs = x[..., sl]
        offset = sl.start or 0
        for d, (nx, ny, _nz) in a.fissures(xs, y, z, side):
            nxy = max(float(np.hypot(nx, ny)), 0.3)        # in-plane part of the normal (oblique fissure ~0.7)
            width = FISSURE_THICKNESS / nxy                   # the line's in-plane width (mm)
            pixel = (abs(nx) * sx + abs(ny) * sy) / nxy       # a pixel's extent across the line (mm)
            reach = 0.5 * (width + pixel) * nxy               # in distance along the normal
            zz, yy, xx = np.nonzero((np.abs(d) < reach) & (lungs[..., sl] == side))
            u = np.abs(d[zz, yy, xx]) / nxy                   # in-plane distance from the line's centre
            # exact overlap of the pixel [u - p/2, u + p/2] with the line [-w/2, w/2], as a fraction of the pixel
            w = (np.minimum(u + 0.5 * pixel, 0.5 * width) - np.maximum(u - 0.5 * pixel, -0.5 * width)) / pixel
            np.clip(w, 0.0, 1.0, out=w)
            flat = np.ravel_multi_index((zz, yy, xx + offset), img.shape)
            pix[flat] += w * (np.float32(MUSCLE) - pix[flat])


def _paint_lesions(scene: Scene, grid: Grid, z0, z1, img, lungs, instance):
    """Truth (instance ids, first come first served, clipped to the lesion's own lung) and HU of each lesion."""
    for k, shape in enumerate(scene.lesions, start=1):
        ix, iy, iz = grid.box(*shape.box())
        iz = (max(iz[0], z0), min(iz[1], z1))
        if ix[0] >= ix[1] or iy[0] >= iy[1] or iz[0] >= iz[1]:
            continue
        ax, ay, az = grid.axis(0, *ix), grid.axis(1, *iy), grid.axis(2, *iz)
        box = (slice(iz[0] - z0, iz[1] - z0), slice(*iy), slice(*ix))
        f = shape.field(ax, ay, az)
        own = lungs[box] == shape.side
        truth = (f > THRESHOLD) & own & (instance[box] == 0)
        instance[box][truth] = k
        w = np.clip((f - THRESHOLD) / shape.edge + 0.5, 0.0, 1.0)
        w = w * w * (3.0 - 2.0 * w)
        w *= own
        hu = scene.lesion_texture.sample(ax, ay, az)
        hu *= shape.texture
        hu += shape.hu
        view = img[box]
        np.maximum(view, view + w * (hu - view), out=view)
        air = shape.bronchogram(ax, ay, az)
        if air is not None:   # air bronchograms: inside the consolidation only, fading out before its margin
            air *= np.clip((f - THRESHOLD) / 0.15, 0.0, 1.0)
            air *= own
            view += air * (np.float32(AIR) - view)
