"""slice-resnet: the COVID-19 slice classifier, multi-scale Grad-CAM and Corona score of Gozes et al. (seed 003).

Public API (imported on first use, so listing classifiers loads no torch):
    CLASSIFIER                 the system behind the classifier interface (``system.py``; what the pipeline runs)
    classify_image(ct, device, *, model=None, lungs=None) -> dict      one 2-D slice (CTVolume with is_2d)
    explain_image(ct, device, *, model=None, lungs=None, methods=("gradcam",)) -> (dict, {method: sitk.Image})
    classify_volume(ct_image, lungs, device, progress=None, *, model=None) -> (dict, sitk.Image)
        every lung slice; case probability, Corona score (cm3), 3-D Grad-CAM localization heatmap (canonical grid)
    explain_volume(..., methods=("gradcam",)) -> (dict, {method: sitk.Image})   the same with Grad-CAM and/or LRP
    load_model(device, registry=None) -> SliceResNet                  weights from the registry (sha256 checked)
"""

from __future__ import annotations

from ..lazy import lazy_getattr

_WHERE = {"CLASSIFIER": "system", "MODEL_NAME": "infer", "SliceResNet": "infer", "classify_image": "infer",
          "classify_volume": "infer", "explain_image": "infer", "explain_volume": "infer", "load_model": "infer"}

__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
