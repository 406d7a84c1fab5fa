"""lobe-patch behind the classifier interface (``classifiers.interface``): a 2-D slice or a volume (seed 001).

The default heatmap is the infection map (coarse x fine patch probabilities, §2.8); the bounded attention (§2.9) is
the second view (``heatmap-lobe-patch-attention.nrrd``). The k-means lung regions (the paper's "lobes") and the
infected region are segments; % infected lung goes to report.json and the CSV.
"""

from __future__ import annotations

from typing import Any

from ...errors import InputError
from ...labels import CLASSIFIER_SEGMENTS
from ..interface import SLICE, VOLUME, ClassifierResult, ModelClassifier


class LobePatchClassifier(ModelClassifier):
    """A loaded lobe network (``infer.LobePatchModel``) that runs on one CT."""

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
            result, maps, masks = infer.classify_image(ct, lungs, model=self.model)
            report(1.0, f"P(COVID-19) {result['probability']:.3f}")
        else:
            if lungs is None:
                raise InputError(ct.source, "no lung found: lobe-patch classifies a volume by its lung slices")
            result, maps, masks = infer.classify_volume(ct.image, lungs, progress=report, model=self.model)
        details = {k: v for k, v in result.items() if k not in ("probability", "label")}
        segments = {kind: (masks[kind], CLASSIFIER_SEGMENTS[kind]) for kind in ("lobes", "infected")}
        return ClassifierResult(probability=result["probability"], label=result["label"], version=self.version,
                                heatmaps=maps, default_heatmap=infer.INFECTION, details=details, segments=segments)


CLASSIFIER = LobePatchClassifier
