"""DA-CMIL: dual-attention contrastive multiple-instance learning (Chikontwe et al., 2020; seed 004).

A bag of instances gets one label. The patch variant of the paper (§4.1-§4.2) is what this package trains and runs:
an axial slice is a bag of square lung patches (``bags.py``), an instance encoder turns each patch into a feature map,
a gated spatial attention pools each map into one instance feature, a gated attention-MIL pooling (Ilse et al.) pools
the instances into one bag feature, and one fully connected layer classifies the bag (``model.py``). Training adds the
paper's unsupervised contrastive loss between instance and bag features (§3.4, Eq. 5-6; ``train.py``).

A CT volume is one bag of the lung patches of its lung slices (``infer.py``; the module doc says why this differs from
the paper's bag of whole slices). The explanations are the model's own: each instance's attention weight (summed per
slice for a volume) and each patch's spatial attention map, placed back on the CT grid (``heatmap-da-cmil.nrrd``).
"""
