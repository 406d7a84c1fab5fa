"""Lung segmentation: `lungs-classic` (unsupervised, right/left labels) and lung volumes.

Labels follow CONTRACTS.md: 0 background, 1 right lung, 2 left lung (patient's right/left).
"""

from .classic import segment_lungs_classic
from .volumes import lung_volumes_ml

__all__ = ["segment_lungs_classic", "lung_volumes_ml"]
