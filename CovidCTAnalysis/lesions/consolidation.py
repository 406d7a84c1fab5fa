"""Consolidation takes the whole dense region it lies in: the extent rule on the consolidation label.

Consolidation is an increase in attenuation that hides the vessels (Hansell et al., "Fleischner Society: glossary of
terms for thoracic imaging", Radiology 2008), so where it is, the lung *background* - the slice after the grey-level
opening of attenuation.py, which levels vessels and bronchial walls thinner than its 8 mm window - is as dense as soft
tissue. lesions-unet, trained on display-windowed slices, labels only part of such regions on true-HU CT: on the
phantom validation cases (seeds 2-5) the network left 70-94 % of the true consolidation unlabelled, and after the
pleural rule 25-55 % inside the lung still was, mostly denser than -300 HU (model card). Here every lung pixel whose
opened background is denser than ``pleural.DENSE_HU`` and that is connected, in its slice, through such pixels to a
consolidation label (the network's or the pleural fill's) becomes consolidation. Nothing starts without a label, and a
vessel cannot carry the label along itself: the opening has levelled it. On the phantom validation cases this raised
the consolidation Dice from 0.51 to 0.65 and the infection Dice from 0.77 to 0.81; it also spreads the network's false
consolidation (3.9 and 11.4 mL more on the two true-HU normal lungs of the model card: the heart's dome inside the
lung mask, hilar vessels).
Only true-HU input (segment_lesions).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..labels import CONSOLIDATION
from .attenuation import opened
from .pleural import DENSE_HU


def extend_consolidation(labels: np.ndarray, hu: np.ndarray, lung: np.ndarray,
                         spacing_xy: tuple[float, float]) -> np.ndarray:
    """``labels`` [Z, H, W] with each slice's consolidation spread over the dense lung connected to it (in place).

    ``lung``: where consolidation may spread (the gated lung region); the in-plane connectivity is 4-neighbour.
    """
    for z in np.flatnonzero((labels == CONSOLIDATION).any(axis=(1, 2))):
        seed = labels[z] == CONSOLIDATION
        room = lung[z] & (opened(hu[z], spacing_xy) > DENSE_HU)
        labels[z][ndi.binary_propagation(seed, mask=room | seed)] = CONSOLIDATION
    return labels
