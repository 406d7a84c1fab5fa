"""Qt-free logic of the lesion segmentation module: pseudo-masks, correction, saving as training data."""
