"""Consolidation flush with the chest wall: the dense tissue the lung segmentation itself counted as lung.

A consolidation against the costal pleura is as dense as the intercostal muscles next to it; in one axial slice
nothing in the image separates the two, only the shape of the lung's outline tells them apart. lesions-unet, a 2-D
network, calls most of such plaques chest wall (on the demo CT the shipped network alone misses 49-60 % of the
consolidation volume; model card). lungs-classic, on the other hand, is built to find exactly these: its pleural fills
(lungs/pleura.py) add dense tissue that bites into the convex costal outline of the lung or lies between aerated lung
and a rib, and they were checked to add next to nothing on normal lungs. What they added, where a voxel of it is
denser than ``DENSE_HU`` and inside the final lung mask, is labelled consolidation here (a pleural effusion would be
too: HU cannot tell the two apart, as pleura.py says; an annotator corrects it).

Consolidation is an increase in attenuation that hides the vessels (Hansell et al., "Fleischner Society: glossary of
terms for thoracic imaging", Radiology 2008); ``DENSE_HU`` lies half way between the densest ground glass of
COVID-19 (about -500 HU) and soft tissue (about -100 HU and above), so the filled voxels at the lesion's
partial-volume margin stay with whatever the network said. Only true-HU input (segment_lesions).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..labels import CONSOLIDATION

#: A pleural-fill voxel at least this dense (HU) is consolidation.
DENSE_HU = -300.0


def pleural_on_grid(pleural: sitk.Image, image: sitk.Image, box: tuple[slice, ...] | None = None) -> np.ndarray:
    """The pleural-fill mask (any grid: lungs-classic leaves it on its coarse grid) as bool [z, y, x] on ``image``'s
    grid, nearest neighbour; only on ``box`` (z, y, x slices with explicit bounds) when given."""
    if box is None:
        box = tuple(slice(0, n) for n in image.GetSize()[::-1])
    start = [int(box[2].start), int(box[1].start), int(box[0].start)]
    size = [box[2].stop - box[2].start, box[1].stop - box[1].start, box[0].stop - box[0].start]
    reference = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    reference.SetSpacing(image.GetSpacing())
    reference.SetDirection(image.GetDirection())
    reference.SetOrigin(image.TransformIndexToPhysicalPoint(start))
    resampled = sitk.Resample(pleural, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayViewFromImage(resampled) > 0


def add_pleural_consolidation(labels: np.ndarray, hu: np.ndarray, lung: np.ndarray,
                              pleural: np.ndarray) -> np.ndarray:
    """``labels`` with consolidation wherever the pleural fill is dense (> DENSE_HU) lung (in place)."""
    labels[pleural & lung & (hu > DENSE_HU)] = CONSOLIDATION
    return labels
