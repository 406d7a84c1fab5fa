"""`lungs-classic`: unsupervised right/left lung segmentation of a chest CT (or of one axial slice).

Seed 002 (§II-D) trains its lung U-Net on masks "segmented using an unsupervised learning method" and checked by
eye; its §II-F1 then windows the HU (e.g. -1200..600) before the network sees them. Seed 001 (§2.3) finds the
lungs on every slice by k-means (air vs tissue), erosion, dilation, connected components and "the larger object"
on each side; seed 003 (§2.1) needs a lung mask only to crop the lung region. This module is that unsupervised
method, made robust enough to be the project's default lung segmenter and the source of masks a learned one may be
trained on. The steps, one module each:

1. `grid`: all shape decisions are made on a coarse grid (~2.5 mm block means); an input that is already coarse is
   denoised instead (Gaussian, `DENOISE_MM`).
2. `airspace`: air = below half way between air and soft tissue (-500 HU; on display-windowed stacks the two levels
   are measured by 2-means, as seed 001 does); air around the body removed; pockets that are nearly pure air
   (gut gas, trachea) rejected, also where a thin diaphragm lets the stomach bubble touch the lung.
3. `airways`: trachea and main bronchi seeded at the top of the scan, grown with leak control, removed.
4. `split`: right/left by a watershed from the parts well away from the midline, so lungs touching at the anterior
   junction part along the junction line; label 1 = lower x = patient's right (docs/CONTRACTS.md). A view that holds
   one lung (the body cut off at one side by the field of view, or a pneumonectomy) gives that one lung, on its side.
5. `fill`, `pleura`: vessels, enclosed lesions and the hilum filled per lung; dense lesions against the costal
   pleura (the known failure of threshold masks, lungmask issue #35) added by the two fills of `pleura`; the domes
   of the liver, spleen and heart inside the basal lung ring (`domes`) kept out of both.
6. `grid`: back to the input grid; voxels within one coarse voxel of the border are re-decided at full
   resolution against a local threshold (half way between the nearby lung and soft tissue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import InputError, LungsNotFoundError
from ..labels import LEFT_LUNG, RIGHT_LUNG
from . import airspace, airways, fill, grid, pleura, split
from .domes import dome_islands, slice_domes
from .morphology import FACES, dilate, keep_large_components

Progress = Callable[[float, str], None]

#: Bone on the coarse grid (HU). Display-windowed data saturate at the window's top: there bone is the top
#: `DISPLAY_BONE_MARGIN` of the value range.
BONE_HU = 200.0
DISPLAY_BONE_MARGIN = 0.03
#: Rim (mm) around the large airways removed from the lung candidates (the airway wall reads as lung).
AIRWAY_RIM_MM = 3.0
#: Gaussian sigma (mm) that denoises an input already on a coarse grid (no block means were taken).
DENOISE_MM = 1.5


def _check(image: sitk.Image) -> None:
    if not isinstance(image, sitk.Image):
        raise TypeError(f"expected a SimpleITK image, got {type(image).__name__}")
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(None, f"expected a scalar 3-D image (a 2-D slice as one z slice), got a "
                               f"{image.GetDimension()}-D image with {image.GetNumberOfComponentsPerPixel()} "
                               f"components per voxel")
    if min(image.GetSize()[:2]) < 8:
        raise InputError(None, f"no lungs found in the image: size {list(image.GetSize())} is too small to hold lungs")


def _body(outside: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """The body: the parts of the not-outside region that hold lung (leaves out the table and other objects)."""
    pieces, n = ndi.label(~outside, structure=FACES)
    keep = np.zeros(n + 1, bool)
    keep[np.unique(pieces[lungs])] = True
    keep[0] = False
    return keep[pieces]


def _remove_airways(values, pockets, candidates, spacing, levels, midline_x) -> tuple[np.ndarray, np.ndarray]:
    """Candidates without the airway tree and the rim of its large airways; the large airways themselves."""
    forbidden = np.zeros(values.shape, bool)
    if values.shape[0] == 1:  # one slice: the trachea is a walled pure-air pocket, rejected in `airspace`
        return candidates, forbidden
    z_lungs = np.flatnonzero(candidates.any(axis=(1, 2)))
    seed = airways.find_trachea_seed(values, pockets.inner_air, spacing, levels, midline_x,
                                     z_limit=int(z_lungs.mean()))
    if seed is None:  # the scan starts below the carina
        return candidates, forbidden
    tree = airways.grow_airways(values, pockets.inner_air, spacing, levels, seed)
    forbidden = airways.large_airways(tree, spacing)
    candidates = candidates & ~tree & ~dilate(forbidden, spacing, AIRWAY_RIM_MM, in_plane_only=True)
    return keep_large_components(candidates, 0.01), forbidden


@dataclass(frozen=True)
class ClassicLungs:
    """What `classic_lungs` found: the lung labels, and the dense tissue the pleural fills counted as lung.

    ``labels``: uint8 on the input grid, 0 background, 1 right lung, 2 left lung. ``pleural``: uint8 0/1 on the
    coarse grid the shape decisions were made on (its own origin and spacing; resample it nearest-neighbour), 1 where
    `pleura.fill_pleural` added tissue against the costal pleura - consolidation flush with the chest wall, or an
    effusion (pleura.py) - which the lesion segmentation uses (lesions/pleural.py).
    """

    labels: sitk.Image
    pleural: sitk.Image


def segment_lungs_classic(image: sitk.Image, *, display_windowed: bool = False,
                          progress: Progress | None = None) -> sitk.Image:
    """Right (1) and left (2) lung labels of a canonical CT: the ``labels`` of `classic_lungs` (see there)."""
    return classic_lungs(image, display_windowed=display_windowed, progress=progress).labels


def classic_lungs(image: sitk.Image, *, display_windowed: bool = False,
                  progress: Progress | None = None) -> ClassicLungs:
    """Right (1) and left (2) lung labels of a canonical CT (float HU, identity direction, LPS), and the pleural fill.

    image: float32 HU on the canonical grid (x toward the patient's left); one z slice for a 2-D input.
    display_windowed: the HU are approximate (8-bit display values mapped through an assumed window); the air and
        soft-tissue levels are then measured from the image instead of being -1000 and 0 HU.
    progress: optional callback(fraction 0..1, message), called a few times.
    Returns the uint8 label image on the same grid (0 background, 1 right lung (low x), 2 left lung) and the
    pleural-fill mask on the coarse grid (`ClassicLungs`).
    Raises LungsNotFoundError("no lungs found in the image ...") when nothing lung-like is found (an abdominal CT
    without lung bases, an empty image).
    """
    _check(image)
    report = progress or (lambda fraction, message: None)
    image = sitk.Cast(image, sitk.sitkFloat32)

    factors = grid.shrink_factors(image.GetSpacing(), image.GetSize())
    coarse = grid.to_coarse(image, factors)
    if np.prod(factors) < 8:  # no block means were taken: denoise as an 8-voxel mean would
        coarse = grid.smooth(coarse, DENOISE_MM)
    spacing = coarse.GetSpacing()
    values = sitk.GetArrayFromImage(coarse)
    report(0.1, f"coarse grid {list(coarse.GetSize())} at {' x '.join(f'{s:.1f}' for s in spacing)} mm")

    levels = airspace.intensity_levels(values, display_windowed)
    pockets = airspace.find_air_pockets(values, spacing, levels)
    candidates = pockets.lungs
    if not candidates.any():
        raise LungsNotFoundError(None, "no lungs found in the image (no air-filled lung tissue inside the body)")
    body = _body(pockets.outside, candidates)
    midline_x = float(np.nonzero(body)[2].mean())  # the body's left-right centre (voxels)
    report(0.3, "air inside the body labelled, gut gas rejected")

    candidates, forbidden = _remove_airways(values, pockets, candidates, spacing, levels, midline_x)
    if not candidates.any():
        raise LungsNotFoundError(None, "no lungs found in the image (only airways)")
    report(0.45, "trachea and main bronchi removed")

    labels = split.split_right_left(candidates, values, spacing, midline_x,
                                    body_cut=split.body_cut_sides(body, candidates, spacing))
    sides = [name for value, name in ((RIGHT_LUNG, "right"), (LEFT_LUNG, "left")) if (labels == value).any()]
    if not sides:
        raise LungsNotFoundError(None, "no lungs found in the image (no lung-like pocket could be given a side)")
    report(0.6, "right and left lungs separated" if len(sides) > 1 else f"one lung in view: the {sides[0]} lung")

    top = float(values.max())
    bone_level = BONE_HU if not display_windowed else top - DISPLAY_BONE_MARGIN * (top - levels.air)
    aerated = labels > 0
    tissue = values >= levels.threshold
    if labels.shape[0] > 1:  # the domes of the liver, spleen or heart are never lung
        domes = dome_islands(labels, tissue, spacing)
    elif not display_windowed:
        domes = slice_domes(labels, values, tissue, spacing)
    else:
        domes = np.zeros(labels.shape, bool)
    labels = fill.fill_lungs(labels, values, spacing, bone_level, forbidden)
    labels[domes] = 0
    before = labels > 0
    labels = pleura.fill_pleural(labels, values, spacing, levels.threshold, bone_level, body, midline_x)
    labels[domes] = 0
    pleural = sitk.GetImageFromArray(((labels > 0) & ~before).astype(np.uint8))
    pleural.CopyInformation(coarse)
    labels = fill.fill_lungs(labels, values, spacing, bone_level, forbidden, closing_mm=0.0)
    labels[domes] = 0
    filled = (labels > 0) & ~aerated & (values >= levels.threshold)
    report(0.8, "vessels and lesions filled")

    thresholds = grid.local_thresholds(values, labels, spacing, levels.threshold, levels.tissue)
    out = sitk.GetImageFromArray(grid.to_fine(image, factors, labels, filled, thresholds))
    out.CopyInformation(image)
    report(1.0, "lungs segmented")
    return ClassicLungs(out, pleural)
