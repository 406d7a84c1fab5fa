"""The Sharif lobe-patch system (Ghavami Modegh et al. 2020, seed 001): an interpretable patch/lobe network.

Each axial slice's two lung regions ("lobes", found by k-means and morphology, §2.3: ``lobes.py``) are cropped onto a
256 x 256 canvas with the slices above and below (``inputs.py``); a patch feature extractor, a vicinity U-Net and the
distance to the lung periphery give 385 features per 36 x 36 patch, from which the network decides each patch's
infection (coarse map), each 6 x 6 patch's (fine map), and, through bounded attention, the lobe (``model.py``). Lobe
probabilities are softened by the adjacent slices and maximised into the case's (Eq. 2), the two maps give % infected
lung (§2.8, ``aggregate.py``). Trained weakly, from case labels and intensity pseudo-masks (§2.7, ``train.py``), on
COVID-CT figures; a second copy of the network, for CT volumes, is that one fine-tuned on semi-synthetic CT volumes
whose patch labels are the transplanted lesions' masks. One weights file holds both
(``models.weights.merged_states``).
"""

from ..lazy import lazy_getattr

_WHERE = {"CLASSIFIER": "system", "MODEL_NAME": "infer", "classify_image": "infer", "classify_volume": "infer",
          "LobeNet": "model"}
__getattr__ = lazy_getattr(__name__, _WHERE)
