"""Semi-synthetic 3-D training data for DeCoVNet: real lesions transplanted into lesion-free thorax volumes.

Why: DeCoVNet (seed 002) learns from whole CT volumes with patient-level labels; no labelled 3-D COVID-19 cohort
fits in ../shared/data (docs/DATA.md). What there is: a few lesion-free thorax volumes, and 50 axial slices with
radiologist-drawn ground-glass (1) and consolidation (2) masks (COVID-SemiSeg, MultiClassInfection-Train). This
module builds volumes from them, with exact 3-D lesion masks and boxes:

Backgrounds (``BACKGROUNDS``): the two imlab-lung3d thoraces (real, normal lungs), the TotalSegmentator thoracic
crop around the aorta and its abdominal CT with lung bases (real, partial chests), and generated demo thoraces
(``CovidCTAnalysis.demo``, ``lesions=False``; seed 0, the ``analyze --demo`` case, is never used). Each background is
used in several *variants*: a random run of slices covering at least ``MIN_Z_COVER`` of its lung range, plus
Gaussian noise of 0..``MAX_NOISE_HU`` HU. Every variant gives one negative (the variant as is) and one positive (the
same variant with lesions): matched pairs, so the only difference between the classes is the lesions.

Lesion bank (``load_lesion_bank``): each SemiSeg slice is rotated 90 degrees clockwise into display orientation (the
slices lie with the lungs one above the other and the spine on the right). Every connected lesion component of at
least ``MIN_PATCH_PIXELS`` pixels and a mean contrast of at least ``MIN_CONTRAST_HU`` becomes a patch: its label mask
(0/1/2) and its *contrast*, the 8-bit values minus the median of the aerated lung around it (a ring of ``RING_PX``
pixels, darker than the slice's Otsu level, outside any lesion), times 1500/255 HU per grey level (the lung window
of the io module). Transplanting contrast,
not grey values, adapts the lesion to the recipient's own lung level and to the unknown window of the JPEGs. The
slices carry no spacing: a slice is taken to span ``THORAX_WIDTH_MM`` from side to side (an adult thorax; the crops
end at the skin).

Severity: a positive volume gets lesions until they cover a lung fraction drawn log-uniformly from
``INVOLVEMENT_RANGE`` (1 % to 30 %, multifocal as COVID-19 usually is). Placement (``place_lesions``), per lesion: a
patch chosen at random, rotated by a random angle, scaled by ``SCALE_RANGE``; a centre drawn among the lung voxels
with weight ``exp(-d / PERIPHERAL_MM)`` (d: distance to non-lung tissue: subpleural lesions), times ``1 +
POSTERIOR_WEIGHT * depth`` (posterior) and ``1 + LOWER_WEIGHT * lowness`` (lower lobes), depth and lowness 0..1 over
the lung's extent - the distribution of early COVID-19 findings (peripheral, posterior, lower lobes; Chung et al.,
Radiology 2020, cited by seed 002 as [15]). In z the lesion is an ellipsoid of revolution: the patch is repeated on
the slices within half-height h = r_eq x U(0.6, 1.2) (r_eq its in-plane equivalent radius, at least the centre
slice) and shrunk by sqrt(1 - (dz/h)^2). Each lesion voxel becomes ``max(background, lung level + gain x contrast)``
(gain ``GAIN_RANGE``; vessels inside a lesion stay), blended inside the mask with weight ``mask * gaussian(mask)``
so edges are soft yet no voxel outside the mask changes; lesion voxels outside the recipient's lung mask are
dropped. The truth (label map, instance map, one box per lesion from its final voxels) is therefore exact: changed
voxels are lesion voxels and every box is the bounding box of its lesion's voxels.

Lesion sources (``LESION_SOURCES``): "labelled", the 50 radiologist-labelled slices above (ground glass and
consolidation apart), or "pseudo", one in ``PSEUDO_EVERY`` of COVID-SemiSeg's 1600 pseudo-labelled slices (Inf-Net's
binary infection masks on 20 other CT volumes; every lesion labelled 1, its class unknown). "pseudo" exists for
models whose explanations are scored on the 50 labelled slices (the heatmap harness): their training volumes must
not carry those slices' lesions.

Splits: backgrounds are assigned to ``train`` or ``test`` (imlab id002 and demo seeds 101..104 are test), and the
lesion slices too (labelled: every fifth slice, ``TEST_SLICE_EVERY``; pseudo: every fifth of the 20 source volumes),
so the synthetic test split shares neither anatomy nor lesion with training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from ...lesions.semiseg import FOLDER as SEMISEG_FOLDER, LABELLED
from .localize import Box, box_from_mask

SEMISEG = SEMISEG_FOLDER / LABELLED
LESION_SOURCES = ("labelled", "pseudo")
PSEUDO_EVERY = 4  # neighbouring pseudo-labelled slices repeat the same lesions
THORAX_WIDTH_MM = 320.0
HU_PER_GREY = 1500.0 / 255.0
MIN_PATCH_PIXELS = 80
MIN_CONTRAST_HU = 80.0
RING_PX = 12
TEST_SLICE_EVERY = 5

MIN_Z_COVER = 0.7
MAX_NOISE_HU = 20.0
SCALE_RANGE = (0.7, 1.3)
GAIN_RANGE = (0.8, 1.2)
#: Lung involvement of a positive volume, drawn log-uniformly: 1 % to 30 % spans MosMedData's CT-1 (< 25 %) and
#: CT-2 (25-50 %) categories, where most COVID-19 CTs lie; lesions are added until it is reached.
INVOLVEMENT_RANGE = (0.01, 0.30)
MAX_LESIONS = 40
PERIPHERAL_MM = 15.0
POSTERIOR_WEIGHT = 2.0
LOWER_WEIGHT = 2.0
HALF_HEIGHT_RANGE = (0.6, 1.2)
MIN_LESION_VOXELS = 8


# ---------------------------------------------------------------------------------------------- lesion bank


@dataclass(frozen=True)
class LesionPatch:
    """One lesion component of a SemiSeg slice in display orientation."""

    source: str  # "<slice>#<component>"
    labels: np.ndarray  # (h, w) uint8: 0 outside, 1 ground glass, 2 consolidation
    contrast_hu: np.ndarray  # (h, w) float32: HU above the surrounding aerated lung (0 outside the lesion)
    pixel_mm: float


def _slice_number(path: Path) -> int:
    return int(path.stem)


def semiseg_slices(data: Path) -> list[Path]:
    """The SemiSeg training images, in numeric order."""
    return sorted((Path(data) / SEMISEG / "Imgs").glob("*.jpg"), key=_slice_number)


def split_of_slice(index_in_order: int) -> str:
    return "test" if index_in_order % TEST_SLICE_EVERY == TEST_SLICE_EVERY - 1 else "train"


def patches_from_slice(grey: np.ndarray, labels: np.ndarray, name: str) -> list[LesionPatch]:
    """Lesion patches of one slice already in display orientation (grey uint8, labels 0/1/2, same shape)."""
    from skimage.filters import threshold_otsu

    grey = grey.astype(np.float32)
    lesion = labels > 0
    dark = grey < threshold_otsu(grey)
    comps, n = ndi.label(lesion, structure=np.ones((3, 3), bool))
    pixel_mm = THORAX_WIDTH_MM / grey.shape[1]
    out = []
    for i, sl in enumerate(ndi.find_objects(comps), start=1):
        comp = comps == i
        if comp.sum() < MIN_PATCH_PIXELS:
            continue
        ring = ndi.binary_dilation(comp, iterations=RING_PX) & ~lesion & dark
        if ring.sum() < 20:
            ring = dark & ~lesion
        level = float(np.median(grey[ring]))
        ys, xs = sl
        part = comp[ys, xs]
        lab = np.where(part, labels[ys, xs], 0).astype(np.uint8)
        contrast = np.where(part, (grey[ys, xs] - level) * HU_PER_GREY, 0.0).astype(np.float32)
        if contrast[part].mean() < MIN_CONTRAST_HU:
            continue
        out.append(LesionPatch(f"{name}#{i}", lab, contrast, pixel_mm))
    return out


def pseudo_volume(name: str) -> str:
    """The CT volume a pseudo-labelled slice comes from ("Data-1_coronacases_org_001_17" -> "..._org_001")."""
    return name.rsplit("_", 1)[0]


def load_pseudo_bank(data: Path, split: str | None = None) -> list[LesionPatch]:
    """Patches of one in ``PSEUDO_EVERY`` pseudo-labelled slices of the volumes of ``split`` (every fifth volume in
    name order is 'test'), in display orientation, every lesion labelled 1."""
    from PIL import Image

    from ...lesions.semiseg import PSEUDO, to_display

    paths = sorted((Path(data) / SEMISEG_FOLDER / PSEUDO / "Imgs").glob("*.jpg"))
    volumes = sorted({pseudo_volume(p.stem) for p in paths})
    bank = []
    for path in paths[::PSEUDO_EVERY]:
        if split is not None and split_of_slice(volumes.index(pseudo_volume(path.stem))) != split:
            continue
        grey = np.asarray(Image.open(path).convert("L"))
        mask = np.asarray(Image.open(path.parent.parent / "GT" / f"{path.stem}.png").convert("L")) > 127
        bank += patches_from_slice(to_display(grey, path.stem), to_display(mask.astype(np.uint8), path.stem),
                                   path.stem)
    return bank


def load_lesion_bank(data: Path, split: str | None = None, source: str = "labelled") -> list[LesionPatch]:
    """Patches of the lesion slices of ``split`` ('train', 'test' or None for all), rotated into display: the
    labelled SemiSeg slices, or with ``source="pseudo"`` the pseudo-labelled ones (``load_pseudo_bank``)."""
    from PIL import Image

    if source not in LESION_SOURCES:
        raise ValueError(f"lesion source must be one of {LESION_SOURCES}, not {source!r}")
    if source == "pseudo":
        return load_pseudo_bank(data, split)
    bank = []
    for k, img_path in enumerate(semiseg_slices(data)):
        if split is not None and split_of_slice(k) != split:
            continue
        grey = np.asarray(Image.open(img_path).convert("L"))
        labels = np.asarray(Image.open(img_path.parent.parent / "GT" / f"{img_path.stem}.png"))
        # 90 degrees clockwise: spine from the right edge to the bottom (display orientation)
        bank += patches_from_slice(np.rot90(grey, k=-1), np.rot90(labels, k=-1), img_path.stem)
    return bank


# ---------------------------------------------------------------------------------------------- backgrounds


@dataclass(frozen=True)
class BackgroundSpec:
    name: str
    split: str
    source: str  # path relative to the data folder, or "demo:<seed>"
    variants: int


BACKGROUNDS: tuple[BackgroundSpec, ...] = (
    BackgroundSpec("imlab-id001", "train", "imlab-lung3d/id001-128x128x64.nii.gz", 8),
    BackgroundSpec("ts-aorta-crop", "train",
                   "totalsegmentator/tests/reference_files/aorta_report/test_result/models/ct_cropped.nii.gz", 3),
    BackgroundSpec("ts-abdomen", "train", "totalsegmentator/tests/reference_files/example_ct.nii.gz", 3),
    *(BackgroundSpec(f"demo-{s}", "train", f"demo:{s}", 2) for s in range(1, 11)),
    BackgroundSpec("imlab-id002", "test", "imlab-lung3d/id002-128x128x64.nii.gz", 8),
    *(BackgroundSpec(f"demo-{s}", "test", f"demo:{s}", 2) for s in range(101, 105)),
)
#: Generated thoraxes' size (x, y, z voxels over the demo's 350 x 350 x 300 mm): DeCoVNet resamples every volume to
#: 224 px anyway, so 160 px (2.2 mm) saves generation time. ``build_dataset(demo_size=...)`` makes them at another size,
#: e.g. 512 px in-plane (0.68 mm, a clinical CT's resolution) for networks that see CT at its own resolution.
DEMO_SIZE = (160, 160, 64)


@dataclass
class Volume:
    """A CT as arrays: hu (z, y, x) float32, lungs (z, y, x) uint8 0/1/2, spacing (x, y, z) mm."""

    hu: np.ndarray
    lungs: np.ndarray
    spacing: tuple[float, float, float]


def load_background(data: Path, spec: BackgroundSpec, demo_size: Sequence[int] = DEMO_SIZE) -> Volume:
    """A background volume in canonical orientation with its lungs-classic mask (a generated thorax of
    ``demo_size`` voxels)."""
    import SimpleITK as sitk

    from ...lungs import segment_lungs_classic

    if spec.source.startswith("demo:"):
        from ...demo import make_demo_ct

        case = make_demo_ct(size=tuple(demo_size), seed=int(spec.source.split(":")[1]), lesions=False)
        image = case.image
    else:
        from ...io import load_ct

        image = load_ct(Path(data) / spec.source).image
    lungs = segment_lungs_classic(image)
    return Volume(sitk.GetArrayFromImage(image).astype(np.float32), sitk.GetArrayFromImage(lungs),
                  tuple(float(s) for s in image.GetSpacing()))


def variant(background: Volume, rng: np.random.Generator) -> Volume:
    """A random run of slices covering >= MIN_Z_COVER of the lung range, with added noise."""
    zs = np.nonzero(background.lungs.any(axis=(1, 2)))[0]
    n = background.hu.shape[0]
    if zs.size == 0:
        z0, z1 = 0, n
    else:
        lo, hi = int(zs.min()), int(zs.max()) + 1
        keep = max(int(np.ceil(MIN_Z_COVER * (hi - lo))), 1)
        length = int(rng.integers(keep, hi - lo + 1))
        start = int(rng.integers(lo, hi - length + 1))
        # some slices beyond the lungs on either side, as scans have
        z0 = max(start - int(rng.integers(0, 4)), 0)
        z1 = min(start + length + int(rng.integers(0, 4)), n)
    hu = background.hu[z0:z1].copy()
    sigma = float(rng.uniform(0.0, MAX_NOISE_HU))
    hu += rng.normal(0.0, sigma, hu.shape).astype(np.float32)
    return Volume(hu, background.lungs[z0:z1].copy(), background.spacing)


# ---------------------------------------------------------------------------------------------- placement


@dataclass(frozen=True)
class PlacedLesion:
    """One transplanted lesion: majority label, physical box (voxel edges), voxel count, centre, patch source."""

    label: int
    box: Box
    voxels: int
    centre_mm: tuple[float, float, float]
    source: str


@dataclass
class SyntheticCase:
    hu: np.ndarray
    lungs: np.ndarray  # the recipient's lung mask used for placement (0/1/2)
    lesions: np.ndarray  # uint8 0/1/2
    instances: np.ndarray  # uint16 0 = none, k = k-th lesion
    spacing: tuple[float, float, float]
    label: int
    placed: list[PlacedLesion] = field(default_factory=list)

    @property
    def boxes(self) -> list[Box]:
        return [p.box for p in self.placed]


def placement_weights(lungs: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Probability of each voxel being a lesion centre: peripheral x posterior x lower (module doc)."""
    lung = lungs > 0
    weights = np.zeros(lung.shape, np.float64)
    if not lung.any():
        return weights
    d = ndi.distance_transform_edt(lung, sampling=(spacing[2], spacing[1], spacing[0]))
    z, y, _ = np.nonzero(lung)
    zr = (z.min(), z.max())
    yr = (y.min(), y.max())
    depth = (y - yr[0]) / max(yr[1] - yr[0], 1)  # 0 anterior .. 1 posterior (y grows toward posterior)
    lowness = (zr[1] - z) / max(zr[1] - zr[0], 1)  # 0 top .. 1 bottom (z grows toward superior)
    w = np.exp(-d[lung] / PERIPHERAL_MM) * (1 + POSTERIOR_WEIGHT * depth) * (1 + LOWER_WEIGHT * lowness)
    weights[lung] = w
    return weights / weights.sum()


def _lung_level(hu: np.ndarray, lungs: np.ndarray) -> float:
    values = hu[lungs > 0]
    return float(np.median(values)) if values.size else -850.0


def _rotated(patch: LesionPatch, angle: float) -> tuple[np.ndarray, np.ndarray]:
    labels = ndi.rotate(patch.labels, angle, order=0, reshape=True, mode="constant", cval=0)
    contrast = ndi.rotate(patch.contrast_hu, angle, order=1, reshape=True, mode="constant", cval=0.0)
    return labels, np.where(labels > 0, contrast, 0.0).astype(np.float32)


def _zoom2d(labels: np.ndarray, contrast: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    if abs(factor - 1.0) < 1e-6:
        return labels, contrast
    lab = ndi.zoom(labels, factor, order=0, grid_mode=True, mode="grid-constant")
    con = ndi.zoom(contrast, factor, order=1, grid_mode=True, mode="grid-constant")
    return lab, np.where(lab > 0, con, 0.0).astype(np.float32)


def _paste(target: np.ndarray, patch: np.ndarray, where: np.ndarray, cy: int, cx: int) -> None:
    """Write ``patch`` into 2-D ``target`` centred on (cy, cx) where ``where`` is true, clipped to the bounds."""
    h, w = patch.shape
    y0, x0 = cy - h // 2, cx - w // 2
    ty0, tx0 = max(y0, 0), max(x0, 0)
    ty1, tx1 = min(y0 + h, target.shape[0]), min(x0 + w, target.shape[1])
    if ty1 <= ty0 or tx1 <= tx0:
        return
    sub = patch[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0]
    sel = where[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0]
    target[ty0:ty1, tx0:tx1][sel] = sub[sel]


def place_lesions(volume: Volume, bank: Sequence[LesionPatch], rng: np.random.Generator, count: int | None = None,
                  origin: Sequence[float] = (0.0, 0.0, 0.0), involvement: float | None = None) -> SyntheticCase:
    """Transplant lesions into the lungs of ``volume`` (module doc); the input is not modified.

    count: exactly this many lesions; or involvement: lesions are added until they cover this fraction of the lung
    voxels (at most ``MAX_LESIONS``).
    """
    if (count is None) == (involvement is None):
        raise ValueError("give either count or involvement")
    sx, sy, sz = volume.spacing
    hu = volume.hu.copy()
    lung = volume.lungs > 0
    weights = placement_weights(volume.lungs, volume.spacing).ravel()
    level = _lung_level(volume.hu, volume.lungs)
    instances = np.zeros(hu.shape, np.uint16)
    lesion_labels = np.zeros(hu.shape, np.uint8)
    target_hu = np.full(hu.shape, -np.inf, np.float32)
    sources = []
    n_lung = int(lung.sum())
    limit = 0 if weights.sum() == 0 or not bank else (count if count is not None else MAX_LESIONS)
    for k in range(1, limit + 1):
        if involvement is not None and (instances > 0).sum() >= involvement * n_lung:
            break
        patch = bank[int(rng.integers(len(bank)))]
        labels2d, contrast2d = _rotated(patch, float(rng.uniform(0, 360)))
        scale = float(rng.uniform(*SCALE_RANGE))
        gain = float(rng.uniform(*GAIN_RANGE))
        factor = patch.pixel_mm * scale / sx
        area_mm2 = float((labels2d > 0).sum()) * (patch.pixel_mm * scale) ** 2
        half_height = np.sqrt(area_mm2 / np.pi) * float(rng.uniform(*HALF_HEIGHT_RANGE))
        cz, cy, cx = np.unravel_index(int(rng.choice(weights.size, p=weights)), hu.shape)
        reach = int(np.floor(half_height / sz))
        for dz in range(-reach, reach + 1):
            z = cz + dz
            if not 0 <= z < hu.shape[0]:
                continue
            shrink = np.sqrt(max(1.0 - (dz * sz / half_height) ** 2, 0.0)) if half_height > 0 else 1.0
            lab, con = _zoom2d(labels2d, contrast2d, factor * shrink)
            if not (lab > 0).any():
                continue
            inside = lab > 0
            slice_ids = np.zeros(hu.shape[1:], np.uint16)
            _paste(slice_ids, np.full(lab.shape, k, np.uint16), inside, cy, cx)
            slice_lab = np.zeros(hu.shape[1:], np.uint8)
            _paste(slice_lab, lab, inside, cy, cx)
            slice_con = np.zeros(hu.shape[1:], np.float32)
            _paste(slice_con, con, inside, cy, cx)
            sel = (slice_ids > 0) & lung[z]
            instances[z][sel] = k
            lesion_labels[z][sel] = slice_lab[sel]
            target_hu[z][sel] = level + gain * slice_con[sel]
        sources.append(patch.source)
    mask = instances > 0
    if mask.any():
        sigma = (0.0, 1.0, 1.0)
        weight = mask * ndi.gaussian_filter(mask.astype(np.float32), sigma)
        new = np.maximum(hu, target_hu)
        hu = np.where(mask, hu + weight * (new - hu), hu).astype(np.float32)
    placed = []
    for k in range(1, len(sources) + 1):
        voxels = instances == k
        n = int(voxels.sum())
        if n < MIN_LESION_VOXELS:
            instances[voxels] = 0
            lesion_labels[voxels] = 0
            continue
        labs = np.bincount(lesion_labels[voxels], minlength=3)
        z, y, x = ndi.center_of_mass(voxels)
        centre = (origin[0] + x * sx, origin[1] + y * sy, origin[2] + z * sz)
        placed.append(PlacedLesion(int(np.argmax(labs[1:]) + 1), box_from_mask(voxels, volume.spacing, origin), n,
                                   tuple(float(c) for c in centre), sources[k - 1]))
    # voxels dropped with a too small lesion keep the blended values only if they were changed: undo them
    dropped = mask & (instances == 0)
    hu[dropped] = volume.hu[dropped]
    return SyntheticCase(hu=hu, lungs=volume.lungs, lesions=lesion_labels, instances=instances,
                         spacing=volume.spacing, label=1 if placed else 0, placed=placed)


def negative(volume: Volume) -> SyntheticCase:
    """The matching negative: the variant unchanged, empty truth."""
    z = np.zeros(volume.hu.shape, np.uint8)
    return SyntheticCase(hu=volume.hu.copy(), lungs=volume.lungs, lesions=z, instances=z.astype(np.uint16),
                         spacing=volume.spacing, label=0)


# ---------------------------------------------------------------------------------------------- files


def save_case(path: Path, case: SyntheticCase, input_lungs: np.ndarray, meta: dict) -> None:
    """Compressed .npz: hu (int16), lungs (the lungs-classic mask of the final volume: the model's input channel),
    lesions, instances, spacing, label, and JSON meta with the boxes."""
    meta = dict(meta, label=case.label, spacing=list(case.spacing),
                lesions=[{"label": p.label, "box": p.box, "voxels": p.voxels, "centre_mm": list(p.centre_mm),
                          "source": p.source} for p in case.placed])
    np.savez_compressed(path, hu=np.clip(np.round(case.hu), -32768, 32767).astype(np.int16),
                        lungs=input_lungs.astype(np.uint8), lesions=case.lesions,
                        instances=case.instances, meta=np.array(json.dumps(meta)))


def read_index(folder: Path, split: str | None = None) -> list[dict]:
    """The rows of ``folder/index.json`` (``build_dataset``), those of one ``split`` ("train" / "test") when given."""
    rows = json.loads((Path(folder) / "index.json").read_text(encoding="utf-8"))
    return [row for row in rows if split is None or row["split"] == split]


def load_case(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(hu float32, lungs uint8, lesions uint8, meta) of a saved case."""
    with np.load(path) as f:
        return f["hu"].astype(np.float32), f["lungs"], f["lesions"], json.loads(str(f["meta"]))


# ---------------------------------------------------------------------------------------------- the data set


def input_lungs(hu: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """The model's lung channel for a generated volume: lungs-classic on the final volume (lesions included), as at
    inference."""
    import SimpleITK as sitk

    from ...lungs import segment_lungs_classic

    image = sitk.GetImageFromArray(np.asarray(hu, np.float32))
    image.SetSpacing(tuple(float(s) for s in spacing))
    return sitk.GetArrayFromImage(segment_lungs_classic(image))


def build_dataset(data: Path, out: Path, seed: int = 0, backgrounds: Sequence[BackgroundSpec] = BACKGROUNDS,
                  log=print, lesions: str = "labelled", demo_size: Sequence[int] = DEMO_SIZE) -> list[dict]:
    """Generate every variant of ``backgrounds`` (a negative and a positive each) into ``out`` as .npz files and
    write ``out/index.json`` (file, split, background, label, lesion count, lesion source). Deterministic per seed;
    ``lesions``: the lesion source (``LESION_SOURCES``); ``demo_size``: the generated thoraxes' size (x, y, z)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    banks = {split: load_lesion_bank(data, split, lesions) for split in ("train", "test")}
    log(f"lesion bank ({lesions}): {len(banks['train'])} train patches, {len(banks['test'])} test patches")
    rng = np.random.default_rng(seed)
    index = []
    for spec in backgrounds:
        background = load_background(data, spec, demo_size)
        for v in range(spec.variants):
            var = variant(background, rng)
            involvement = float(np.exp(rng.uniform(*np.log(INVOLVEMENT_RANGE))))
            positive = place_lesions(var, banks[spec.split], rng, involvement=involvement)
            for case in (negative(var), positive):
                if case.label == 0 and case is positive:
                    continue  # no lesion survived placement: the negative already stands for this variant
                name = f"{spec.name}-v{v}-{'pos' if case.label else 'neg'}.npz"
                meta = {"background": spec.name, "split": spec.split, "variant": v}
                save_case(out / name, case, input_lungs(case.hu, case.spacing), meta)
                index.append({"file": name, "split": spec.split, "background": spec.name, "variant": v,
                              "label": case.label, "lesions": len(case.placed), "lesion_source": lesions,
                              "involvement": float((case.lesions > 0).sum() / max((case.lungs > 0).sum(), 1))})
                log(f"{name}: {len(case.placed)} lesions, {case.hu.shape[0]} slices")
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index
