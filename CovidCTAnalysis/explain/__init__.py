"""Explanations shared by the classifiers: multi-scale Grad-CAM (MONAI hooks), gradient-weighted features, overlays.

Public API:
    multiscale_gradcam(net, x, layers, size=None) -> GradCAMResult   one forward/backward, one map per layer + fusion
    normalize01(maps) -> tensor                                      per-map min-max to [0, 1]
    overlay_rgb(gray, heat, alpha=0.45) -> uint8 (H, W, 3)           heatmap over a gray image (figures, reports)
"""

from .gradcam import GradCAMResult, multiscale_gradcam, normalize01
from .overlay import overlay_rgb

__all__ = ["GradCAMResult", "multiscale_gradcam", "normalize01", "overlay_rgb"]
