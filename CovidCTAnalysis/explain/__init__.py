"""Explanations shared by the classifiers, every method behind one signature: ``method(network, x, target, **options)
-> maps`` (N, 1, *spatial) at the input size. ``METHODS`` maps a method's name (the METHOD of
heatmap-MODEL-METHOD.nrrd) to its function:

    cam      cam.cam(network, x, target, *, layer, fc=None)             class activation map (Zhou et al. 2016), 0..1
    gradcam  gradcam.gradcam(network, x, target, *, layers)              Grad-CAM / multi-scale Grad-CAM (seed 003 §2.3)
    lrp      lrp.lrp(network, x, target, *, bounds, alpha, beta, ...)    relevance through captum, signed

Also: ``multiscale_gradcam`` (each layer's map, activations and gradients from one pass), ``LRPExplainer`` (a network
canonized once for LRP), ``relevance_heatmap`` (LRP relevance -> a [0, 1] display map), ``overlay_rgb``.
"""

from . import cam, gradcam, lrp
from .gradcam import GradCAMResult, multiscale_gradcam, normalize01
from .heatmap import relevance_heatmap
from .lrp import LRPExplainer
from .overlay import overlay_rgb

METHODS = {"cam": cam.cam, "gradcam": gradcam.gradcam, "lrp": lrp.lrp}

__all__ = ["METHODS", "GradCAMResult", "LRPExplainer", "multiscale_gradcam", "normalize01", "overlay_rgb",
           "relevance_heatmap"]
