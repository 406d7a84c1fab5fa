"""da-cmil behind the classifier interface (``classifiers.interface``): a 2-D slice or a volume (seed 004).

A slice is a bag of lung patches, a volume a bag of lung slices (``infer``); the lung mask comes from the pipeline
(a display-windowed figure's from ``lungs-unet``). The default heatmap is the model's own attention (§5.4): the
spatial attention of each instance weighted by its instance attention; Grad-CAM of the bag logit on the same
feature maps is the second view (``heatmap-da-cmil-gradcam.nrrd``).
"""

from __future__ import annotations

from typing import Any

from ...errors import InputError
from ..interface import SLICE, VOLUME, ClassifierResult, ModelClassifier


class DACMILClassifier(ModelClassifier):
    """A loaded DA-CMIL (``infer.DACMILModel``) that runs on one CT."""

    inputs = (SLICE, VOLUME)
    needs_lungs = True
    picture_lungs = "lungs-unet"  # a picture's lungs: slice_resnet.infer.image_lungs

    @staticmethod
    def load_model(device: Any, registry: Any = None):
        from .infer import load_model

        return load_model(device, registry)

    def run(self, ct, lungs, progress=None) -> ClassifierResult:
        from . import infer

        report = progress or (lambda fraction, message: None)
        if ct.is_2d:
            result, maps = infer.classify_image(ct, lungs, model=self.model)
            report(1.0, f"P(COVID-19) {result['probability']:.3f}")
        else:
            if lungs is None:  # a thin stack without lungs (pipeline/lungs.py): listed as not run
                raise InputError(ct.source, "no lung found: da-cmil classifies a volume by its lung slices")
            result, maps = infer.classify_volume(ct.image, lungs, progress=report, model=self.model)
        details = {k: v for k, v in result.items() if k not in ("probability", "label")}
        return ClassifierResult(probability=result["probability"], label=result["label"], version=self.version,
                                heatmaps=maps, default_heatmap=infer.ATTENTION, details=details)


CLASSIFIER = DACMILClassifier
