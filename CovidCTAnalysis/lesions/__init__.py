"""Lesion segmentation (lesions-unet), the intensity pseudo-mask of suspected infection, and quantification.

- ``segment_lesions(image, lungs)``: uint8 label map 0 / 1 ground-glass opacity / 2 consolidation (docs/CONTRACTS.md) on
  the image's grid; 2-D slices and 3-D volumes (slice by slice). See inference.py; on true-HU input, ground glass
  must also be denser than normal lung and takes the raised lung next to it (attenuation.py), the lung
  segmentation's dense pleural fill is consolidation (pleural.py), and consolidation takes the dense lung connected
  to it (consolidation.py).
- ``pseudo_infection_mask(image, lungs)``: seed 001 section 2.7.2 suspected-infection mask for annotators. See
  pseudo_mask.py.
- ``quantify(lesions, lungs)``: volumes per class, % involvement per lung and total, MosMedData severity band.

Training and the corrected-masks folder: training.py, corrected.py and scripts/train_lesions.py.
"""

from .inference import segment_lesions
from .pseudo_mask import PSEUDO_MASK_SEGMENT, pseudo_infection_mask
from .quantify import quantify, severity_band

__all__ = ["segment_lesions", "pseudo_infection_mask", "quantify", "severity_band", "PSEUDO_MASK_SEGMENT"]
