"""slice-resnet behind the classifier interface (``classifiers.interface``): a 2-D slice or a volume (seed 003).

Gozes et al. classify 2-D slices (§2.2) and, for a CT, every lung slice inside the lung ROI of the case (§2.1); both
use the lung mask the pipeline already made (on a display-windowed figure the figure itself is framed). Explanations:
the fused multi-scale Grad-CAM of §2.3 (default heatmap; what the Corona score sums) and LRP, on the same slices.
"""

from __future__ import annotations

from typing import Any

from ...errors import InputError
from ..interface import SLICE, VOLUME, ClassifierResult, ModelClassifier


class SliceResNetClassifier(ModelClassifier):
    """A loaded slice-resnet (``infer.SliceResNet``) that runs on one CT."""

    inputs = (SLICE, VOLUME)
    needs_lungs = True

    @staticmethod
    def load_model(device: Any, registry: Any = None):
        from .infer import load_model

        return load_model(device, registry)

    def run(self, ct, lungs, progress=None) -> ClassifierResult:
        from . import infer

        report = progress or (lambda fraction, message: None)
        if ct.is_2d:
            result, maps = infer.explain_image(ct, self.model.device, model=self.model, lungs=lungs,
                                               methods=infer.METHODS)
            report(1.0, f"P(COVID-19) {result['probability']:.3f}")
        else:
            if lungs is None:  # a thin stack without lungs (pipeline/lungs.py): listed as not run
                raise InputError(ct.source, "no lung found: slice-resnet picks a volume's slices by their lungs")
            result, maps = infer.explain_volume(ct.image, lungs, self.model.device, report, model=self.model,
                                                methods=infer.METHODS)
        details = {k: v for k, v in result.items() if k not in ("probability", "label")}
        return ClassifierResult(probability=result["probability"], label=result["label"], version=self.version,
                                heatmaps=maps, default_heatmap=infer.GRADCAM, details=details)


CLASSIFIER = SliceResNetClassifier
