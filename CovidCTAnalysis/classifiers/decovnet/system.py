"""DeCoVNet behind the classifier interface (``classifiers.interface``): volumes with their lung mask (seed 002).

DeCoVNet takes "the preprocessed CT-Mask volume" (§II-G): a CT volume or slice stack and its lung mask, never a
single slice. Its explanation is the CAM (default heatmap, §III-D) and, for a volume predicted positive, the localized
lesion (§II-E) as the ``localization`` segment and its centre as the ``lesion_centre`` point.
"""

from __future__ import annotations

from typing import Any

from ...errors import InputError
from ..interface import VOLUME, ClassifierResult, ModelClassifier


class DeCoVNetClassifier(ModelClassifier):
    """A loaded DeCoVNet (``infer.LoadedDeCoVNet``) that runs on one CT."""

    inputs = (VOLUME,)
    needs_lungs = True

    @staticmethod
    def load_model(device: Any, registry: Any = None):
        from .infer import load_model

        return load_model(device, registry)

    def run(self, ct, lungs, progress=None) -> ClassifierResult:
        from ...labels import LOCALIZATION_SEGMENT
        from .infer import classify_volume

        if lungs is None:
            raise InputError(ct.source, "no lung found: decovnet needs the lung mask of the volume")
        result, heatmap, located = classify_volume(ct.image, lungs, self.model.device, progress, model=self.model)
        details = {k: v for k, v in result.items() if k not in ("probability", "label")}
        out = ClassifierResult(probability=result["probability"], label=result["label"], version=self.version,
                               heatmaps={"cam": heatmap}, default_heatmap="cam", details=details)
        if located is not None:
            out.segments["localization"] = (located["mask"], LOCALIZATION_SEGMENT)
            out.points["lesion_centre"] = tuple(located["centre_mm"])
        return out


CLASSIFIER = DeCoVNetClassifier
