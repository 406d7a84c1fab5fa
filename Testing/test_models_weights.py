"""Weights files that hold two networks sharing parts (models.weights.merged_states / split_states)."""

import torch

from CovidCTAnalysis.models.weights import merged_states, split_states


def test_two_networks_share_one_file_and_split_back():
    first = {"a.weight": torch.ones(1), "b.weight": torch.ones(2)}
    second = {"a.weight": torch.zeros(1), "b.weight": torch.ones(2)}  # b shared (a frozen encoder)
    both = merged_states(first, second, "x.")
    assert set(both) == {"a.weight", "b.weight", "x.a.weight"}  # a shared tensor is stored once
    back = split_states(both, "x.")
    assert set(back[0]) == set(back[1]) == set(first)
    assert all(torch.equal(back[0][k], first[k]) and torch.equal(back[1][k], second[k]) for k in first)
    assert split_states(first, "x.")[1] == {}  # a file of one network
    assert set(merged_states(both, second, "x.")) == set(both)  # a merged file as the start keeps its first network
