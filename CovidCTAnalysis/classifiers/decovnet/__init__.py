"""decovnet: DeCoVNet, the weakly-supervised 3-D COVID-19 classifier and lesion localizer of Wang et al. (seed 002).

Public API:
    classify_volume(ct_image, lungs, device, progress=None, *, model=None) -> (dict, sitk.Image, dict | None)
        P(COVID-19) and label, the CAM heatmap (float32 0..1, canonical grid) and, for a positive volume, the
        localized lesion {"mask": uint8 sitk image, "centre_mm": (x, y, z), "source", "volume_ml"} (§II-E)
    load_model(device, registry=None) -> LoadedDeCoVNet      registered weights (sha256 checked) and their input grid
    build(name) -> torch module     'decovnet' (Table I), '2dclfnet' (Table VI), 'decovnet-fcclf' (Table VII)
    read_cohort(folder, labels_csv) -> [CohortItem]         a user's cohort for training (scripts/train_decovnet.py)

Modules: model (networks), inputs (CT + lung mask on the model grid), augment (§II-F3), localize (CAM, 3DCC, hit
rate), synthetic (the semi-synthetic 3-D data), cohort (labels CSV), train, infer.
"""

from .cohort import CohortItem, read_cohort
from .infer import MODEL_NAME, LoadedDeCoVNet, classify_volume, load_model
from .model import build

__all__ = ["MODEL_NAME", "CohortItem", "LoadedDeCoVNet", "build", "classify_volume", "load_model", "read_cohort"]
