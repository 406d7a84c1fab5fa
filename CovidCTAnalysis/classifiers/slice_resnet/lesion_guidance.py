"""Lesion guidance for slice-resnet: an optional training term that ties the network's class activation map to
infection masks (not in Gozes et al.; an experiment, ``TrainConfig.lesion_guidance``).

Why. Trained on the 543 COVID-CT figures with figure-level labels alone, the network's Grad-CAM and LRP maxima sit
on the spine, the body wall and the figure's edge (model card); training on the lungs only did not move them
enough. Figure labels do not say where the disease is. COVID-SemiSeg's 1600 pseudo-labelled slices (Inf-Net's binary
infection masks; lesions.semiseg) do, for other patients and another source. The 50 radiologist-labelled slices are
never used here: they are where the explanations are scored.

How. The EfficientNet-Lite head is global average pooling then one linear unit, so the logit is the mean over the
head's feature map of ``W . f(x, y) + b`` - the class activation map of Zhou et al. (CVPR 2016), ``cam``. On a second
half-batch of SemiSeg squares (framed as a figure is: ``inputs.square_from_hu`` without lungs; the mask cropped,
padded and resized with it; the same random geometry as the image), that map is trained with binary cross-entropy
against the infected fraction of each of its cells (``cam_targets``). Nothing changes at inference: the network, its
input and its explanations are the shipped ones, only the weights differ. The figure-level loss of the paper stays
on the COVID-CT figures; SemiSeg slices never enter it (they are all COVID-19 and from one source: as figure labels
they would be a shortcut).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import inputs


def semiseg_tag() -> str:
    """Short hash of the framing code and of the SemiSeg reader, in the cache name."""
    from ...lesions import semiseg
    from ...models.training import code_tag

    return code_tag(inputs, semiseg)


def square_with_mask(hu: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A slice framed as a 2-D figure is (``inputs.square_from_hu``: window, trimmed borders, square, 256 px) and its
    infection mask through the same crop, padding and resize (float32 in [0, 1]: the infected fraction)."""
    unit = inputs.hu_to_unit(hu)
    rows, cols = inputs.content_box(unit)
    square = inputs.square_from_hu(hu, (rows, cols))
    fraction = inputs.resize(inputs.square_pad((np.asarray(mask)[rows, cols] > 0).astype(np.float32)),
                             inputs.CACHE_SIZE)
    return square, fraction


def semiseg_cache(data_root: Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """The 1600 pseudo-labelled COVID-SemiSeg slices as uint8 squares and infected fractions (x 255), cached."""
    from ...io.writers import atomic_path
    from ...lesions.semiseg import FOLDER, pseudo_labelled_slices

    cache = Path(cache_dir) / f"semiseg-pseudo-{semiseg_tag()}.npz"
    if cache.is_file():
        return dict(np.load(cache))
    squares, masks = [], []
    for sample in pseudo_labelled_slices(Path(data_root) / FOLDER):
        square, fraction = square_with_mask(sample.hu, sample.target)
        squares.append(inputs.to_cache(square))
        masks.append(inputs.to_cache(fraction))
    out = {"x": np.stack(squares), "mask": np.stack(masks)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **out)
    return out


def cam(net, features):
    """The class activation map (N, 1, h, w) of a single-logit EfficientNet-Lite from its head features: the logit
    in eval mode is its spatial mean."""
    import torch.nn.functional as F

    return F.conv2d(features, net._fc.weight[:, :, None, None], net._fc.bias)


def cam_targets(fractions, size: tuple[int, int]):
    """Infected fraction (N, 1, H, W) in [0, 1] -> the infected fraction of each CAM cell (N, 1, h, w)."""
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(fractions, size)


def guidance_loss(net, features, fractions):
    """Binary cross-entropy of the CAM cells against their infected fractions (soft targets)."""
    import torch.nn.functional as F

    logits = cam(net, features)
    return F.binary_cross_entropy_with_logits(logits, cam_targets(fractions, logits.shape[-2:]))
