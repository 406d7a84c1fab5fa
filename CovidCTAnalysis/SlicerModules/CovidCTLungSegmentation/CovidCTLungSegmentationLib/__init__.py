"""Qt-free logic of the lung segmentation module."""
