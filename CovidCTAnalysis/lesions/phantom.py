"""Training slices from the generated demo phantom (CovidCTAnalysis.demo), with its exact lesion truth.

Why: the demo CT is synthetic, and a model trained only on real slices misreads parts of it. With the phantom's first
rendering (fissures smeared into grey bands a few millimetres wide, consolidations as smooth round pleural blobs) it
called the bands ground glass and the blobs chest wall (infection Dice 0.21, +400 % volume error on the default demo
case). The phantom now draws ~1 mm fissure lines and lobulated subpleural consolidations with air bronchograms
(demo/lesions.py, demo/render.py), closer to real CT; a few phantom cases with other seeds than the demo's (seed 0
is never used for training; evaluate_lesions.py measures the volume error on seeds 0 and 1) taught the 1.x models
this domain. lesions-unet 2.0.0 ships without it: with training windows that reach the lung periphery, phantom
fine-tuning lowered validation Dice below 0.70 and made the network under-call the phantom (model card).

Slices are taken as inference takes them: the lung region's bounding box (from the truth lungs), every slice with a
lesion and every fourth slice with lung but no lesion (fissures and vessels as negatives).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .samples import Sample

#: Phantom seeds used for training (the demo CT of `covidct analyze --demo` is seed 0: never here).
TRAIN_SEEDS = tuple(range(101, 113))
#: Sizes (x, y, z) of the training phantoms: the demo's default and two others (other pixel sizes).
TRAIN_SIZES = ((256, 256, 96), (320, 320, 80), (200, 200, 72))
NEGATIVE_STRIDE = 4


def phantom_slices(seeds=TRAIN_SEEDS, sizes=TRAIN_SIZES) -> list[Sample]:
    """Samples (HU crops and their 0/1/2 truth) from phantom cases; seed i uses size sizes[i % len(sizes)]."""
    from ..demo import make_demo_ct
    from .inference import lung_box

    if 0 in seeds:
        raise ValueError("seed 0 is the demo CT used for evaluation; train on other seeds")
    samples = []
    for i, seed in enumerate(seeds):
        case = make_demo_ct(size=sizes[i % len(sizes)], seed=seed)
        hu = sitk.GetArrayFromImage(case.image).astype(np.float32)
        lungs = sitk.GetArrayFromImage(case.lungs) > 0
        truth = sitk.GetArrayFromImage(case.lesions).astype(np.uint8)
        box = lung_box(lungs)
        if box is None:
            continue
        zs, ys, xs = box
        with_lesion = truth[zs].any(axis=(1, 2))
        for k, z in enumerate(range(zs.start, zs.stop)):
            if with_lesion[k] or k % NEGATIVE_STRIDE == 0:
                samples.append(Sample(f"phantom-{seed}-{z}", hu[z, ys, xs], truth[z, ys, xs], "demo phantom"))
    return samples
