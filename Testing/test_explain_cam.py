"""CAM (explain/cam.py): the last feature maps weighted by the linear layer, for a class or a contrast of classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from CovidCTAnalysis.explain.cam import cam, class_weights


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 2, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def test_cam_weights_the_features_with_the_target_row():
    net = Tiny().eval()
    with torch.no_grad():
        net.features.weight[:] = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)  # channel 0 = x, channel 1 = -x
        net.fc.weight[:] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # class 1 reads channel 0, class 0 channel 1
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 2] = 2.0
    x[0, 0, 3, 0] = -1.0
    m1 = cam(net, x, 1, layer="features")
    assert m1.shape == (1, 1, 4, 4)
    assert m1[0, 0, 1, 2] == pytest.approx(1.0) and m1[0, 0, 3, 0] == 0.0  # positive evidence only, max 1
    m0 = cam(net, x, 0, layer="features")
    assert m0[0, 0, 3, 0] == pytest.approx(1.0) and m0[0, 0, 1, 2] == 0.0
    contrast = cam(net, x, (-1.0, 1.0), layer="features")  # class 1 minus class 0: channel 0 - channel 1 = 2x
    assert torch.allclose(contrast, m1)


def test_class_weights_of_a_contrast():
    w = np.array([[1.0, 2.0], [3.0, 5.0]])
    assert np.allclose(class_weights(w, 1), [3.0, 5.0])
    assert np.allclose(class_weights(w, (-1.0, 1.0)), [2.0, 3.0])
    with pytest.raises(ValueError):
        class_weights(w, (1.0, 0.0, 0.0))
