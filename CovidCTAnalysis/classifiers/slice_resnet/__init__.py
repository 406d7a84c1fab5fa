"""slice-resnet: the COVID-19 slice classifier, multi-scale Grad-CAM and Corona score of Gozes et al. (seed 003).

Public API:
    classify_image(ct, device, *, model=None) -> dict                 one 2-D slice (CTVolume with is_2d)
    explain_image(ct, device, *, model=None) -> (dict, sitk.Image)    + fused Grad-CAM map on the slice grid
    classify_volume(ct_image, lungs, device, progress=None, *, model=None) -> (dict, sitk.Image)
        every lung slice; case probability, Corona score (cm3), 3-D localization heatmap on the canonical grid
    load_model(device, registry=None) -> SliceResNet                  weights from the registry (sha256 checked)
"""

from .infer import MODEL_NAME, SliceResNet, classify_image, classify_volume, explain_image, load_model

__all__ = ["MODEL_NAME", "SliceResNet", "classify_image", "classify_volume", "explain_image", "load_model"]
