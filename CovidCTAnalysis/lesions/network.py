"""The lesions-unet network: a 2-D MONAI BasicUNet, and loading its registered weights.

Architecture choice: a plain 2-D U-Net (Ronneberger et al. 2015) as MONAI's BasicUNet, instance normalization and
LeakyReLU (as the multi-class lesion U-Net of seed 000, section 4.1, which is 3-D; our labelled data are 2-D slices, so
the model is 2-D and 3-D volumes are segmented slice by slice). Feature widths in ``constants.FEATURES``.
"""

from __future__ import annotations

from pathlib import Path

from ..models.weights import registered_network, save_half
from .constants import FEATURES, NUM_CLASSES

MODEL_NAME = "lesions-unet"


def build_network():
    """An untrained network (1 input channel: normalized HU; NUM_CLASSES output logits)."""
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=NUM_CLASSES, features=FEATURES, dropout=0.0)


def save_weights(net, path: Path) -> None:
    """Save the trained network as a float16 state dict (``models.weights.save_half``)."""
    save_half(net, path)


def load_network(device="cpu", registry=None, weights: Path | None = None):
    """The registered lesions-unet (sha256 verified by the registry), or an explicit weights file for training."""
    return registered_network(MODEL_NAME, lambda state: build_network(), device, registry, weights)
