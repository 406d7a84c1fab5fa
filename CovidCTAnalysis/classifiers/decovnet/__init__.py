"""decovnet: DeCoVNet, the weakly-supervised 3-D COVID-19 classifier and lesion localizer of Wang et al. (seed 002).

Public API (imported on first use, so listing classifiers loads no torch):
    CLASSIFIER                 the system behind the classifier interface (``system.py``; what the pipeline runs)
    classify_volume(ct_image, lungs, device, progress=None, *, model=None) -> (dict, sitk.Image, dict | None)
        P(COVID-19) and label, the CAM heatmap (float32 0..1, canonical grid) and, for a positive volume, the
        localized lesion {"mask": uint8 sitk image, "centre_mm": (x, y, z), "source", "volume_ml"} (§II-E)
    load_model(device, registry=None) -> LoadedDeCoVNet      registered weights (sha256 checked) and their input grid
    build(name) -> torch module     'decovnet' (Table I), '2dclfnet' (Table VI), 'decovnet-fcclf' (Table VII)
    read_cohort(folder, labels_csv) -> [CohortItem]         a user's cohort for training (scripts/train_decovnet.py)

Modules: model (networks), inputs (CT + lung mask on the model grid), augment (§II-F3), localize (3DCC, hit rate;
the CAM itself is ``explain.cam``), synthetic (the semi-synthetic 3-D data), cohort (labels CSV), train, infer, system.
"""

from __future__ import annotations

from ..lazy import lazy_getattr

_WHERE = {"CLASSIFIER": "system", "CohortItem": "cohort", "read_cohort": "cohort", "MODEL_NAME": "infer",
          "LoadedDeCoVNet": "infer", "classify_volume": "infer", "load_model": "infer", "build": "model"}

__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
