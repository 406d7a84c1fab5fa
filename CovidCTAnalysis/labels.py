"""Label conventions of docs/CONTRACTS.md, with the names and colours written into .seg.nrrd files."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """One label value of a label map, as a named, coloured segment (colour: RGB floats 0..1)."""

    label: int
    name: str
    color: tuple[float, float, float]


# Lungs: 0 background, 1 right lung, 2 left lung (patient's right/left).
RIGHT_LUNG, LEFT_LUNG = 1, 2
LUNG_SEGMENTS = (
    Segment(RIGHT_LUNG, "right lung", (0.50, 0.68, 0.60)),
    Segment(LEFT_LUNG, "left lung", (0.42, 0.55, 0.75)),
)

# Lesions: 0 none, 1 ground-glass opacity, 2 consolidation, 3 crazy paving. Infection = any label > 0.
GGO, CONSOLIDATION, CRAZY_PAVING = 1, 2, 3
LESION_SEGMENTS = (
    Segment(GGO, "ground-glass opacity", (0.95, 0.85, 0.30)),
    Segment(CONSOLIDATION, "consolidation", (0.90, 0.35, 0.25)),
    Segment(CRAZY_PAVING, "crazy paving", (0.75, 0.40, 0.80)),
)

# DeCoVNet's weakly supervised lesion localization (seed 002 section II-E): 0 none, 1 the localized lesion.
LOCALIZATION_SEGMENT = Segment(1, "localized lesion (DeCoVNet CAM + 3DCC)", (1.0, 0.55, 0.0))

# The lobe-patch system (seed 001 section 2.3 and 2.8): its "lobes" are the right and left lung regions that k-means
# finds (1 right, 2 left; not anatomical lobes), and its infected region (coarse and fine maps > 0.5).
LOBE_REGION_SEGMENTS = (
    Segment(RIGHT_LUNG, "right k-means lung region", (0.55, 0.75, 0.65)),
    Segment(LEFT_LUNG, "left k-means lung region", (0.45, 0.60, 0.80)),
)
PATCH_INFECTION_SEGMENT = Segment(1, "infected (lobe-patch coarse x fine map)", (0.95, 0.30, 0.20))

#: A classifier's segmentation files by kind (report.json key ``KIND_segmentation``) and the segments each holds.
CLASSIFIER_SEGMENTS = {
    "localization": (LOCALIZATION_SEGMENT,),
    "lobes": LOBE_REGION_SEGMENTS,
    "infected": (PATCH_INFECTION_SEGMENT,),
}
