"""slice-resnet training augmentation (augment.py): seeded, shape- and range-preserving, and each profile does what
its docstring says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from CovidCTAnalysis.classifiers.slice_resnet import augment as aug


def _batch(n: int = 6, size: int = 64) -> torch.Tensor:
    """A bright disc on air, left-right asymmetric (a bar on the left), in [0, 1]."""
    yy, xx = np.mgrid[:size, :size]
    disc = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 3) ** 2).astype(np.float32) * 0.6
    disc[size // 2 - 2:size // 2 + 2, 4:size // 4] = 1.0
    return torch.from_numpy(np.repeat(disc[None, None], n, axis=0))


@pytest.mark.parametrize("profile", aug.PROFILES)
def test_same_seed_same_batch_and_output_stays_in_unit_range(profile):
    x = _batch()
    runs = []
    for seed in (3, 3, 4):  # pixel noise comes from torch's generator, seeded by training (train.py)
        torch.manual_seed(seed)
        runs.append(aug.augment(x, np.random.default_rng(seed), profile=profile)[0])
    a, b, c = runs
    assert a.shape == x.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)  # another seed, another batch
    assert torch.equal(x, _batch())  # the input is not modified in place


def test_flips_profile_only_mirrors_and_mirrors_masks_alike():
    x = _batch(n=32)
    m = (x > 0.5).float()
    out, masks = aug.augment(x, np.random.default_rng(0), m, profile="flips")
    flipped = [not torch.equal(out[i], x[i]) for i in range(len(x))]
    for i in range(len(x)):
        expected = x[i].flip(-1) if flipped[i] else x[i]
        assert torch.equal(out[i], expected)
        assert torch.equal(masks[i], m[i].flip(-1) if flipped[i] else m[i])
    assert 5 < sum(flipped) < 27  # about half


def test_frame_covers_borders_or_crops_inside_the_figure():
    x = torch.full((64, 1, 48, 48), 0.5)
    out = aug.frame(x, np.random.default_rng(0))
    changed = [not torch.equal(out[i], x[i]) for i in range(len(x))]
    assert 0.5 * len(x) < sum(changed) < len(x)  # 1 - 0.5 * 0.5 (crop) * ~0.53 (bands) expected
    for i in np.nonzero(changed)[0]:
        img = out[i, 0]
        assert set(torch.unique(img).tolist()) <= {0.0, 0.5, 1.0}  # air, white bands or untouched content
        assert (img == 0.5).any()  # some of the figure is always kept


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="profile"):
        aug.augment(_batch(), np.random.default_rng(0), profile="mixup")
