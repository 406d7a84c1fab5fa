"""The generated demo chest CT: a procedural adult thorax in HU with exact lung and lesion truth.

`make_demo_ct` is the fixture of most tests and what ``covidct analyze --demo`` analyses. The image is on the
canonical grid of the package (float32 HU, identity direction, LPS: x toward the patient's left, y posterior,
z superior); the truth label maps use the docs/CONTRACTS.md labels (lungs 1 right / 2 left; lesions 1 GGO /
2 consolidation) and lie on the same grid. Everything is determined by `seed`.

No seed paper defines a phantom; anatomy and HU values are our choice from common chest-CT knowledge (see
`anatomy`, `bones`, `render`, `lesions`): air -1000, fat -100, muscle and unenhanced blood +40, liver +58,
lung parenchyma ~ -870 with a supine gravity gradient (median ~ -850 with its vessels), fissures as ~1 mm lines,
ground-glass -660..-520 with texture and vessels visible through it, consolidation -70..+30 (heterogeneous, lobulated,
subpleural, with air bronchograms), cortical bone +700, marrow +250, CT-like noise ~19 HU.

Layout: `anatomy` (implicit shapes) -> `scene` (vessel and airway trees, lesion shapes) -> `render` (voxels,
slab by slab) -> here (the truth bookkeeping and the public types).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .anatomy import RIGHT, Anatomy
from .grid import Grid
from .render import render
from .scene import Scene, build_scene


@dataclass(frozen=True)
class DemoLesion:
    """One lesion of the truth.

    label: 1 ground-glass opacity, 2 consolidation (labels.GGO / labels.CONSOLIDATION); side: "right" or "left"
    (the patient's); centre_mm: LPS point of the centre of mass of its voxels; volume_ml: its voxel count times
    the voxel volume (exact); touches_pleura: some voxel is 6-adjacent to non-lung tissue of the body (chest
    wall, diaphragm or mediastinum), i.e. the lesion is flush with the pleura.
    """

    label: int
    side: str
    centre_mm: tuple[float, float, float]
    volume_ml: float
    touches_pleura: bool


@dataclass(frozen=True)
class DemoCase:
    """The demo CT and its truth, all on one grid.

    image: float32 HU; lungs: uint8 0 background, 1 right lung, 2 left lung (lesions, vessels and
    intrapulmonary airways are lung; trachea and main bronchi are not); lesions: uint8 0 none, 1 GGO,
    2 consolidation, every lesion voxel a lung voxel; lesion_list: one DemoLesion per lesion; seed: the seed.
    """

    image: sitk.Image
    lungs: sitk.Image
    lesions: sitk.Image
    lesion_list: tuple[DemoLesion, ...]
    seed: int


def make_demo_ct(size=(256, 256, 96), spacing=None, seed: int = 0, lesions: bool = True) -> DemoCase:
    """Generate the demo chest CT of `size` (x, y, z) voxels.

    spacing (mm, x y z) defaults to size over a 350 x 350 x 300 mm field of view (adult thorax from the root of
    the neck to the upper abdomen). The same seed gives the same case (anatomy, vessels, lesions, noise);
    lesions=False gives the same patient without lesions.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    grid = Grid.centred(size, spacing)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(5)]
    rng_anatomy, rng_trees, rng_lesions, rng_noise, rng_texture = streams
    anatomy = Anatomy.from_rng(rng_anatomy)
    scene = build_scene(anatomy, grid, rng_trees, rng_lesions if lesions else None, rng_texture)
    image, lungs, instance = render(scene, grid, rng_noise)
    lesion_list, lesion_labels = _lesion_truth(scene, grid, lungs, instance)
    del instance
    return DemoCase(_to_image(image, grid), _to_image(lungs, grid), _to_image(lesion_labels, grid),
                    lesion_list, int(seed))


# ---------------------------------------------------------------------------------------------- truth
def _lesion_truth(scene: Scene, grid: Grid, lungs, instance):
    """Per-lesion voxel truth -> DemoLesion list (exact volumes, centres of mass, pleural contact), label map."""
    lut = np.zeros(256, np.uint8)
    out = []
    a = scene.anatomy
    for k, shape in enumerate(scene.lesions, start=1):
        lut[k] = shape.label
        # the lesion's box, one voxel wider for its neighbours
        ix, iy, iz = ((max(lo - 1, 0), min(hi + 1, n)) for (lo, hi), n in zip(grid.box(*shape.box()), grid.size))
        box = (slice(*iz), slice(*iy), slice(*ix))
        mask = instance[box] == k
        n = int(mask.sum())
        if n == 0:
            continue
        idx = np.array(np.nonzero(mask), dtype=float).mean(1)  # z, y, x in the box
        centre = tuple(float(o + s * (i + off)) for o, s, i, off in
                       zip(grid.origin, grid.spacing, idx[::-1], (ix[0], iy[0], iz[0])))
        ring = ndimage.binary_dilation(mask) & ~mask        # 6-connected neighbours
        ax, ay, az = grid.axis(0, *ix), grid.axis(1, *iy), grid.axis(2, *iz)
        body = a.body(ax[None, None, :], ay[None, :, None], az[:, None, None]) < 1.0
        touches = bool((ring & (lungs[box] == 0) & body).any())
        out.append(DemoLesion(label=shape.label, side="right" if shape.side == RIGHT else "left",
                              centre_mm=centre, volume_ml=n * grid.voxel_ml, touches_pleura=touches))
    return tuple(out), lut[instance]


def _to_image(array: np.ndarray, grid: Grid) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return img
