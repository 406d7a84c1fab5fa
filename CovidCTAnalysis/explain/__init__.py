"""Explanations shared by the classifiers, every method behind one signature: ``method(network, x, target, **options)
-> maps`` (N, 1, *spatial) at the input size.

    cam(network, x, target, *, layer, fc=None)         class activation map (Zhou et al. 2016), 0..1
    gradcam(network, x, target, *, layers)             Grad-CAM / multi-scale Grad-CAM (seed 003 §2.3), 0..1
    lrp(network, x, target, *, bounds, alpha, beta)    layer-wise relevance through captum, signed relevance

Also: ``multiscale_gradcam`` (each layer's map, activations and gradients from one pass), ``LRPExplainer`` (a network
canonized once for LRP), ``relevance_heatmap`` (LRP relevance -> a [0, 1] display map), ``overlay_rgb``.
"""

from .cam import cam
from .gradcam import GradCAMResult, gradcam, multiscale_gradcam, normalize01
from .heatmap import relevance_heatmap
from .lrp import LRPExplainer, lrp
from .overlay import overlay_rgb

#: method name -> function with the common signature (the keys name heatmap files: heatmap-MODEL-METHOD.nrrd).
METHODS = {"cam": cam, "gradcam": gradcam, "lrp": lrp}

__all__ = ["METHODS", "GradCAMResult", "LRPExplainer", "cam", "gradcam", "lrp", "multiscale_gradcam", "normalize01",
           "overlay_rgb", "relevance_heatmap"]
