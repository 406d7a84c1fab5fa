"""Every constant of the lesions-unet model in one place: intensity normalization, input size, network shape, split.

Intensity: the model sees HU clipped to the lung window (width 1500, level -600: [-1350, 150] HU) and scaled to [0, 1].
An 8-bit display value v of a public slice set maps to HU = -1350 + v/255 * 1500 (the io helper's mapping for
display-windowed sources), so for such a slice the network input is exactly v/255; a real CT in HU goes through the
same clip and scale. Training therefore works in HU like inference does.

Orientation: the network works in radiological display orientation (anterior at the top of the image, the spine at the
bottom), which is what canonical LPS arrays give (array rows = y, anterior at low y). COVID-SemiSeg slices are stored
rotated by 90 degrees; :mod:`.semiseg` rotates them into display orientation (see there). Left/right cannot be told
reliably on these cropped slices, so training flips left-right at random and the model is mirror-symmetric in use.
"""

from __future__ import annotations

#: Lung window (W 1500, L -600) in HU; the same as the io helper's assumption for 8-bit display slices.
HU_MIN = -1350.0
HU_MAX = 150.0

#: The network's input: one axial slice (or lung-region crop of one) resized to INPUT_SIZE x INPUT_SIZE.
INPUT_SIZE = 256

#: Output channels: 0 background, 1 ground-glass opacity, 2 consolidation (labels of docs/CONTRACTS.md). The training
#: data (COVID-SemiSeg) has no crazy-paving label, so this model never predicts 3.
NUM_CLASSES = 3

#: MONAI BasicUNet feature widths (2-D) of the 1.x / 2.x weights: 300 slices in 18.2 s on two CPU cores (model card).
FEATURES = (16, 32, 64, 128, 256, 16)

#: Target value in training label maps meaning "infection, class unknown" (binary masks: Inf-Net pseudo-labels,
#: corrected binary segments). The loss then only asks P(GGO) + P(consolidation) to be high (see training.py).
INFECTION_UNKNOWN_CLASS = 4

#: Value in training label maps meaning "ignore this pixel".
IGNORE = 255

#: Fixed validation split of the 50 radiologist-labelled COVID-SemiSeg slices (file stems of
#: TrainingSet/MultiClassInfection-Train/Imgs). Chosen once, before any training, by a deterministic rule: slices with
#: consecutive numbers and crops of nearly equal size (probably one scan) form a group; groups sorted by their
#: consolidation fraction; every fourth group from the second on goes to validation (13 slices, stratified by
#: consolidation). The other 37 slices train.
VALIDATION_SLICES = (13, 16, 17, 23, 31, 34, 40, 46, 47, 50, 54, 57, 58)


def normalize_hu(hu):
    """Network input in [0, 1] from HU (numpy array or torch tensor): lung-window clip and scale."""
    return (hu.clip(HU_MIN, HU_MAX) - HU_MIN) * (1.0 / (HU_MAX - HU_MIN))


def display_to_hu(values):
    """HU from 8-bit display values under the lung window (-1350 + v/255 * 1500), as io does for 2-D slices."""
    return HU_MIN + values * ((HU_MAX - HU_MIN) / 255.0)
