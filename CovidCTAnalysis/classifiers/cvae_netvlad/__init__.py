"""iCovid: explainable-by-design semi-supervised representation learning for COVID-19 diagnosis from CT (Díaz
Berenguer et al., 2020; seed 000).

A conditional VAE whose encoder has a global branch on the CT slice and a side branch on the binarised lesion mask,
gated together (``branches.py``, ``cvae.py``), learns a representation; its encoder then starts a classifier with
spatial pyramid pooling, a 512-neuron layer, NetVLAD over the slices of a case and two output neurons, trained with
the focal loss (``classifier.py``, ``netvlad.py``, ``focal.py``, ``train.py``). Explanations are LRP-CMP heatmaps
(``explain.py``); ``infer.py`` runs a slice or a volume, ``system.py`` is what the pipeline calls.
"""
