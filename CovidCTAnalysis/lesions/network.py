"""The lesions-unet network: a 2-D MONAI BasicUNet, and loading its registered weights.

Architecture choice: a plain 2-D U-Net (Ronneberger et al. 2015) as MONAI's BasicUNet, instance normalization and
LeakyReLU (as the multi-class lesion U-Net of seed 000, section 4.1, which is 3-D; our labelled data are 2-D slices, so
the model is 2-D and 3-D volumes are segmented slice by slice). Feature widths in ``constants.FEATURES``.
"""

from __future__ import annotations

from pathlib import Path

from .constants import FEATURES, NUM_CLASSES

MODEL_NAME = "lesions-unet"


def build_network():
    """An untrained network (1 input channel: normalized HU; NUM_CLASSES output logits)."""
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=NUM_CLASSES, features=FEATURES, dropout=0.0)


def save_weights(net, path: Path, half: bool = True) -> None:
    """Save the state dict (float16 when ``half``: halves the file; loading casts back to float32)."""
    import torch

    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def network_from_state(state: dict, device="cpu"):
    """A network in eval mode on ``device`` from a (possibly float16) state dict."""
    net = build_network()
    net.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    return net.to(device).eval()


def load_network(device="cpu", registry=None, weights: Path | None = None):
    """The registered lesions-unet (sha256 verified by the registry), or an explicit weights file for training."""
    import torch

    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    else:
        from ..models.registry import load_registry

        reg = registry if registry is not None and not isinstance(registry, (str, Path)) else load_registry(registry)
        state = reg.get(MODEL_NAME).load_state_dict("cpu")
    return network_from_state(state, device)
