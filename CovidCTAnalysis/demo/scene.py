"""Everything of the demo CT that is not per voxel: tube sets (vessels, airways), lesion shapes, texture fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bones
from .anatomy import LEFT, RIGHT, Anatomy
from .grid import CoarseField, Grid
from .lesions import LesionShape, plan
from .trees import companion, grow
from .tubes import Tubes


@dataclass
class Scene:
    """The patient's non-voxel description, rendered slab by slab by `render`."""

    anatomy: Anatomy
    mediastinal: Tubes       # vessels, oesophagus, trachea and main-bronchus outer walls
    central_airways: Tubes   # trachea and main bronchi lumens (air)
    bronchi: Tubes           # intrapulmonary bronchial lumens (air, only inside the lungs)
    airway_wall: Tubes       # intrapulmonary bronchial walls
    vessels: Tubes           # intrapulmonary arteries and veins
    bone_tubes: Tubes        # rib necks, clavicles
    lesions: list[LesionShape]
    lung_texture: CoarseField
    lesion_texture: CoarseField


def sample_lung(anatomy: Anatomy, tubes: Tubes, side: int, n: int, rng) -> np.ndarray:
    """n points uniformly distributed inside one lung (rejection sampling in its bounding box)."""
    s = anatomy.scale
    lo = np.array([-160.0 * s if side == RIGHT else -20.0, -110.0 * s, 20.0])
    hi = np.array([20.0 if side == RIGHT else 160.0 * s, 110.0 * s, anatomy.apex_top + 2.0])
    out = []
    total = 0
    while total < n:
        pts = rng.uniform(lo, hi, size=(4 * n, 3))
        pts = pts[anatomy.lung_points(pts, side, tubes)]
        out.append(pts)
        total += len(pts)
    return np.concatenate(out)[:n]


def build_scene(anatomy: Anatomy, grid: Grid, rng_trees, rng_lesions, rng_texture) -> Scene:
    """Mediastinal and intrapulmonary tubes, bones made of tubes, lesions (None: no lesions), texture fields.

    The vessel trees are thinned on coarse grids (fewer terminal branches, same trunks); the lesions never
    depend on the grid.
    """
    lines = anatomy.mediastinal_lines()
    trachea = anatomy.trachea()
    vascular = Tubes.concat([Tubes.from_polyline(p) for p in lines.values()])
    base = Tubes.concat([vascular, Tubes.from_polyline(trachea).scaled(1.0, 2.2)])
    h = min(grid.spacing[:2])
    min_r = 0.2 * h   # thinner vessels would not show at this resolution

    # fewer, coarser terminal branches when the voxels could not show the fine ones anyway
    n_artery = int(np.clip(1500.0 / h, 250, 1200))
    vessels, lumen, wall, main = [], [], [], []
    # side of each artery its bronchus runs on: the right bronchi above and behind the arteries (eparterial
    # upper-lobe bronchus), the left ones below and behind (the left pulmonary artery arches over its bronchus)
    hints = {RIGHT: (0.3, 0.6, 0.75), LEFT: (-0.3, 0.45, -0.85)}
    carina = trachea[-1]
    for side, pa, pvs in ((RIGHT, "right pa", ("right superior pv", "right inferior pv")),
                          (LEFT, "left pa", ("left superior pv", "left inferior pv"))):
        pts = sample_lung(anatomy, base, side, 2 * n_artery, rng_trees)
        leaf = 0.55 * (1200.0 / n_artery) ** (1.0 / 3.0)   # same trunk radii whatever the number of leaves
        artery = grow(lines[pa][-1, :3], pts[:n_artery], rng_trees, leaf_radius=leaf)
        vessels.append(artery.tubes)
        veins = pts[n_artery:]
        split = np.median(veins[:, 2])
        for name, sel in ((pvs[0], veins[:, 2] >= split), (pvs[1], veins[:, 2] < split)):
            vessels.append(grow(lines[name][0, :3], veins[sel], rng_trees, leaf_radius=leaf).tubes)
        bronchi = companion(artery, np.asarray(hints[side]) / np.linalg.norm(hints[side]), min_radius=1.8)
        lumen.append(bronchi)
        wall.append(bronchi.scaled(1.3, 0.35))
        root = bronchi.a[0]
        sign = -1.0 if side == RIGHT else 1.0
        mid = carina[:3] + np.array([sign * 24.0, 3.0, -12.0])
        main.append(Tubes.from_polyline([(*carina[:3], 8.0), (*mid, 7.0 if side == RIGHT else 6.5),
                                         (*root, max(bronchi.ra[0], 5.0))]))
    main_lumen = Tubes.concat(main)
    mediastinal = Tubes.concat([base, main_lumen.scaled(1.0, 2.0)])
    vessels = Tubes.concat(vessels)
    vessels = vessels.select(vessels.rb >= min_r)
    shapes = []
    if rng_lesions is not None:
        # planned against the grid-independent tubes with their own random stream: same lesions at every grid
        # size (the main bronchi, which depend on the vessel trees, only matter at the hila)
        anchors = {side: sample_lung(anatomy, base, side, 500, rng_lesions) for side in (RIGHT, LEFT)}
        shapes = plan(anatomy, base, anchors, rng_lesions)
    lo, hi = [-185.0, -185.0, -10.0], [185.0, 185.0, 320.0]
    return Scene(
        anatomy=anatomy,
        mediastinal=mediastinal,
        central_airways=Tubes.concat([Tubes.from_polyline(trachea), main_lumen]),
        bronchi=Tubes.concat(lumen),
        airway_wall=Tubes.concat(wall),
        vessels=vessels,
        bone_tubes=Tubes.concat([bones.rib_necks(anatomy), bones.clavicles(anatomy)]),
        lesions=shapes,
        lung_texture=CoarseField(rng_texture, 6.0, lo, hi, smooth=1.0),
        lesion_texture=CoarseField(rng_texture, 3.0, [-170.0, -140.0, 10.0], [170.0, 140.0, 300.0], smooth=0.8),
    )
