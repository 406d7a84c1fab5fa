"""Lung segmentation: `lungs-classic` (unsupervised), `lungs-unet` (2-D U-Net), right/left labels, lung volumes.

Labels follow docs/CONTRACTS.md: 0 background, 1 right lung, 2 left lung (patient's right/left).
"""

from .classic import ClassicLungs, classic_lungs, segment_lungs_classic
from .unet import segment_lungs_unet
from .volumes import lung_volumes_ml

__all__ = ["ClassicLungs", "classic_lungs", "segment_lungs_classic", "segment_lungs_unet", "lung_volumes_ml"]
