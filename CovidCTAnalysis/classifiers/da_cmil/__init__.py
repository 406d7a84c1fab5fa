"""DA-CMIL: dual-attention contrastive multiple-instance learning (Chikontwe et al., 2020; seed 004).

A bag of instances gets one label. Both variants of the paper (§4.1-§4.2) are here. A 2-D slice is a bag of square
lung patches (``bags.py``) for the patch network, trained on COVID-CT; a CT volume is a bag of its lung slices for the
slice-bag network, trained on semi-synthetic volumes (``train.train_volumes``). In each, an instance encoder turns an
instance into a feature map, a gated spatial attention pools the map into one instance feature, a gated
attention-MIL pooling (Ilse et al.) pools the instances into one bag feature, and one fully connected layer
classifies the bag (``model.py``). Training adds the paper's unsupervised contrastive loss between instance and bag
features (§3.4, Eq. 5-6; ``train.py``). One weights file holds both networks (``models.weights.merged_states``).

The explanations are the model's own (``infer.py``): each instance's attention weight (per slice for a volume) and
each instance's spatial attention map, placed back on the CT grid (``heatmap-da-cmil.nrrd``).
"""
