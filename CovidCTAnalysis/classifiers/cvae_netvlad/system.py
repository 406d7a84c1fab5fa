"""cvae-netvlad behind the classifier interface (``classifiers.interface``): iCovid (seed 000) on a 2-D slice or a
volume, with its LRP-CMP heatmap (``heatmap-cvae-netvlad.nrrd``).

The lesion side information is the pipeline's ``lesions-unet`` map when the pipeline passes it (``needs_lesions``),
else it is segmented here (``covidct classify``).
"""

from __future__ import annotations

from typing import Any

from ...errors import InputError
from ..interface import SLICE, VOLUME, ClassifierResult, ModelClassifier


class CVAENetVLADClassifier(ModelClassifier):
    """A loaded iCovid classifier (``infer.CVAENetVLADModel``) that runs on one CT."""

    inputs = (SLICE, VOLUME)
    needs_lungs = True
    picture_lungs = "lungs-unet"  # a picture's lungs: slice_resnet.infer.image_lungs
    needs_lesions = True

    @staticmethod
    def load_model(device: Any, registry: Any = None):
        from .infer import load_model

        return load_model(device, registry)

    def run(self, ct, lungs, progress=None, lesions=None) -> ClassifierResult:
        from . import infer

        report = progress or (lambda fraction, message: None)
        if ct.is_2d:
            result, maps = infer.classify_image(ct, lungs, lesions, model=self.model)
            report(1.0, f"P(COVID-19) {result['probability']:.3f}")
        else:
            if lungs is None:  # a thin stack without lungs (pipeline/lungs.py): listed as not run
                raise InputError(ct.source, "no lung found: cvae-netvlad classifies a volume by its lung slices")
            result, maps = infer.classify_volume(ct.image, lungs, lesions, progress=report, model=self.model)
        details = {k: v for k, v in result.items() if k not in ("probability", "label")}
        return ClassifierResult(probability=result["probability"], label=result["label"], version=self.version,
                                heatmaps=maps, default_heatmap=infer.LRP, details=details)


CLASSIFIER = CVAENetVLADClassifier
