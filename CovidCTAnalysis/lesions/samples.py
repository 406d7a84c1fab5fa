"""Training samples: one 2-D slice in HU (display orientation) and its target label map, plus resizing helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import INPUT_SIZE, normalize_hu


@dataclass
class Sample:
    """One training slice.

    ``hu``: float32 (rows, cols) in HU, radiological display orientation. ``target``: uint8 of the same shape with
    0 background, 1 GGO, 2 consolidation, INFECTION_UNKNOWN_CLASS (infection of unknown class) or IGNORE.
    ``source``: where it came from (for logs and the model card).
    """

    name: str
    hu: np.ndarray
    target: np.ndarray
    source: str


def resize_image(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a 2-D float image to size x size."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].numpy()


def resize_labels(labels: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D label map to size x size."""
    rows = (np.arange(size) + 0.5) * labels.shape[0] / size
    cols = (np.arange(size) + 0.5) * labels.shape[1] / size
    return labels[rows.astype(int).clip(0, labels.shape[0] - 1)][:, cols.astype(int).clip(0, labels.shape[1] - 1)]


def stack_samples(samples: list[Sample], size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(images float16 [N, size, size] normalized to [0, 1], targets uint8 [N, size, size]) for training."""
    images = np.empty((len(samples), size, size), np.float16)
    targets = np.empty((len(samples), size, size), np.uint8)
    for i, s in enumerate(samples):
        images[i] = normalize_hu(resize_image(s.hu, size))
        targets[i] = resize_labels(s.target, size)
    return images, targets
