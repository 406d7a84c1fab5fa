"""Explanations of slice-resnet: multi-scale Grad-CAM figures (§2.3, Fig. 2) and gradient-weighted features (§3.3).

§3.3 flattens "the output of the last convolutional layer to a d = 2048 feature vector" and multiplies it element-wise
by "the corresponding gradients vector". For ResNet-50 a 2048-vector is the channel dimension of ``layer4``, so we take
the global average of the last feature map per channel (``model.feature_layer``) and multiply it by the Grad-CAM
channel weights (the spatial mean of the gradient of the COVID-19 logit): d = 2048 for ResNet-50, 512 for
ResNet-18/34, 1280 for EfficientNet-Lite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import inputs
from .model import feature_layer, gradcam_layers


def gradient_weighted_features(model, squares: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, d), probabilities (N,)) of unit squares (``model.square_size``): mean_xy(A) * mean_xy(dS/dA) at
    ``layer4``."""
    import torch

    from ...explain import multiscale_gradcam

    feats, probs = [], []
    for i in range(0, len(squares), batch):
        x = model.tensor(squares[i:i + batch])
        layer = feature_layer(model.net)
        r = multiscale_gradcam(model.net, x, (layer,))
        a, g = r.activations[layer], r.gradients[layer]
        feats.append((a.mean(dim=(2, 3)) * g.mean(dim=(2, 3))).cpu().numpy())
        probs.append(torch.sigmoid(r.logits[:, 0]).cpu().numpy())
    return np.concatenate(feats), np.concatenate(probs)


def gradcam_figure(model, squares: np.ndarray, titles: list[str], path: Path) -> Path:
    """Paper Fig. 2 for a few images: input, Grad-CAM at strides 8 and 16 (28 x 28 and 14 x 14 for a 224 px input),
    and their fusion (rows = images)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ...explain import multiscale_gradcam, overlay_rgb

    x = model.tensor(squares)
    layers = gradcam_layers(model.net)
    r = multiscale_gradcam(model.net, x, layers)
    probs = torch.sigmoid(r.logits[:, 0]).cpu().numpy()
    gray = (x[:, 0].cpu().numpy() * inputs.STD + inputs.MEAN).clip(0, 1)
    cols = [("input", None)] + [(f"Grad-CAM {name} ({size}x{size})", r.maps[name][:, 0].cpu().numpy())
                                for name, size in zip(layers, (model.input_size // 8, model.input_size // 16))] + \
           [("fused (product)", r.fused[:, 0].cpu().numpy())]
    fig, axes = plt.subplots(len(squares), len(cols), figsize=(2.3 * len(cols), 2.4 * len(squares)), dpi=100,
                             squeeze=False)
    for i in range(len(squares)):
        for j, (name, maps) in enumerate(cols):
            ax = axes[i, j]
            ax.imshow(gray[i] if maps is None else overlay_rgb(gray[i], maps[i]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{titles[i]}\nP(COVID) {probs[i]:.2f}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
