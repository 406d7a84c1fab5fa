"""The lesions-unet network, and loading its registered weights.

The architectures, told apart by the weights file's keys, so that the registry, the pipeline and Slicer load each:

- ``lite0-unet`` (3.x): a U-Net on an ImageNet-pretrained EfficientNet-Lite0 encoder (``networks.lite_unet``), the
  encoder's features at strides 2-32 as skip connections. Few labelled slices favour a pretrained encoder; Inf-Net
  (Fan et al., IEEE TMI 2020) likewise builds on an ImageNet backbone.
- ``lite0-unet-edge``: the same with an edge branch supervised by the lesions' boundaries (Inf-Net's edge attention,
  ``networks.lite_unet``); an experiment of issue 25's cross-validation (model card).
- ``lite1-unet``, ``lite2-unet``: the same U-Net on the deeper EfficientNet-Lite1 / deeper and wider Lite2 encoder
  (issue 25 names Lite0 to Lite2); cross-validated against lite0-unet in the model card.
- ``basic-unet`` (1.x, 2.x): a plain 2-D U-Net (Ronneberger et al. 2015) as MONAI's BasicUNet, instance normalization
  and LeakyReLU (as the multi-class lesion U-Net of seed 000, section 4.1, which is 3-D; our labelled data are 2-D
  slices), feature widths ``constants.FEATURES``.

Both take one channel (normalized HU, ``constants.normalize_hu``) and give NUM_CLASSES logits at the input's size.
"""

from __future__ import annotations

from pathlib import Path

from ..models.weights import registered_network, save_half
from .constants import FEATURES, NUM_CLASSES

MODEL_NAME = "lesions-unet"
#: architecture -> EfficientNet-Lite encoder (networks.efficientnet_lite.VARIANTS); basic-unet has none
LITE_ENCODERS = {"lite0-unet": "efficientnet-lite0", "lite0-unet-edge": "efficientnet-lite0",
                 "lite1-unet": "efficientnet-lite1", "lite2-unet": "efficientnet-lite2"}
ARCHITECTURES = ("basic-unet", *LITE_ENCODERS)


def build_network(arch: str = "basic-unet", pretrained: Path | None = None):
    """An untrained network (1 input channel: normalized HU; NUM_CLASSES output logits).

    ``pretrained``: lite architectures only, the ImageNet state dict of its EfficientNet-Lite encoder (training).
    """
    if arch in LITE_ENCODERS:
        from ..networks.lite_unet import LiteUNet

        return LiteUNet(LITE_ENCODERS[arch], out_channels=NUM_CLASSES, pretrained=pretrained,
                        edge=arch.endswith("-edge"))
    if arch != "basic-unet":
        raise ValueError(f"arch must be one of {ARCHITECTURES}, not {arch!r}")
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=NUM_CLASSES, features=FEATURES, dropout=0.0)


def architecture_of(state: dict) -> str:
    """The architecture a state dict belongs to: a lite U-Net has an ``encoder`` whose block count and last block's
    width name its EfficientNet-Lite variant (``efficientnet_lite.stage_plan``), its edge variant an edge head; else
    basic-unet."""
    if any(k.startswith("edge_head.") for k in state):
        return "lite0-unet-edge"
    blocks = {int(k.split(".")[2]) for k in state if k.startswith("encoder._blocks.")}
    if not blocks:
        return "basic-unet"
    from ..networks.efficientnet_lite import stage_plan

    width = state[f"encoder._blocks.{max(blocks)}._bn2.weight"].shape[0]
    for arch, variant in LITE_ENCODERS.items():
        plan = stage_plan(variant)
        if not arch.endswith("-edge") and (sum(s[4] for s in plan), plan[-1][3]) == (len(blocks), width):
            return arch
    raise ValueError(f"no lite U-Net has {len(blocks)} encoder blocks ending {width} channels wide")


def save_weights(net, path: Path) -> None:
    """Save the trained network as a float16 state dict (``models.weights.save_half``)."""
    save_half(net, path)


def load_network(device="cpu", registry=None, weights: Path | None = None):
    """The registered lesions-unet (sha256 verified by the registry), or an explicit weights file; loaded strictly
    into the architecture its keys name."""
    return registered_network(MODEL_NAME, lambda state: build_network(architecture_of(state)), device, registry,
                              weights)
