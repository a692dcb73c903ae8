"""Structured filter pruning: the smaller model computes what the original does on the kept channels."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fedfleet.models import MODELS, build_model
from fedfleet.pruning import (
    PruningError,
    channel_counts,
    conv_sites,
    count_flops,
    filters_to_keep,
    l1_importance,
    prune_channels,
)

SHAPE = (1, 28, 28)


def with_batch_norm() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 6, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(6 * 12 * 12, 10))


def random_keep(model: nn.Sequential, data: st.DataObject) -> dict[int, list[int]]:
    keep = {}
    for site in conv_sites(model, SHAPE):
        channels = model[site.index].out_channels
        keep[site.index] = data.draw(st.lists(st.integers(0, channels - 1), min_size=1, max_size=channels,
                                              unique=True))
    return keep


def zero_removed_filters(model: nn.Sequential, keep: dict[int, list[int]]) -> nn.Sequential:
    """The original model with every removed filter's weights and bias set to zero."""
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        for index, channels in keep.items():
            removed = [c for c in range(zeroed[index].out_channels) if c not in channels]
            zeroed[index].weight[removed] = 0.0
            zeroed[index].bias[removed] = 0.0
    return zeroed


@pytest.mark.parametrize("name", ["cnn", "lenet5"])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_pruned_model_equals_original_with_removed_filters_zeroed(name: str, data: st.DataObject) -> None:
    torch.manual_seed(0)
    model = build_model(name, SHAPE, 10)
    keep = random_keep(model, data)
    pruned = prune_channels(model, keep, SHAPE)
    x = torch.rand(4, *SHAPE)
    torch.testing.assert_close(pruned(x), zero_removed_filters(model, keep)(x), rtol=1e-5, atol=1e-5)
    assert channel_counts(pruned, SHAPE) == {index: len(c) for index, c in keep.items()}


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_batch_norm_follows_the_kept_channels(data: st.DataObject) -> None:
    torch.manual_seed(1)
    model = with_batch_norm()
    with torch.no_grad():  # non-trivial running statistics, so a wrongly sliced batch norm shows
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    model.eval()
    keep = random_keep(model, data)
    pruned = prune_channels(model, keep, SHAPE).eval()
    reference = copy.deepcopy(model)
    with torch.no_grad():  # the consumers ignore the removed channels: same outputs as pruning them
        removed_first = [c for c in range(8) if c not in keep[0]]
        reference[4].weight[:, removed_first] = 0.0
        removed_second = [c for c in range(6) if c not in keep[4]]
        columns = [c * 144 + s for c in removed_second for s in range(144)]
        reference[8].weight[:, columns] = 0.0
    x = torch.rand(3, *SHAPE)
    torch.testing.assert_close(pruned(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS.names()))
def test_every_shipped_model_keeps_consistent_shapes_when_pruned(name: str) -> None:
    model = build_model(name, SHAPE, 10)
    keep = {site.index: [0] for site in conv_sites(model, SHAPE)}
    pruned = prune_channels(model, keep, SHAPE)
    assert pruned(torch.rand(2, *SHAPE)).shape == (2, 10)
    if keep:
        assert count_flops(pruned, SHAPE) < count_flops(model, SHAPE)


def test_a_rate_that_removes_every_filter_is_refused() -> None:
    assert filters_to_keep(6, 0.5) == 3
    assert filters_to_keep(6, 0.95) == 1
    with pytest.raises(PruningError, match="every filter"):
        filters_to_keep(6, 1.0)
    with pytest.raises(PruningError, match="every filter"):
        prune_channels(build_model("cnn", SHAPE, 10), {0: []}, SHAPE)


def test_bad_channel_lists_and_positions_are_refused() -> None:
    model = build_model("cnn", SHAPE, 10)
    with pytest.raises(PruningError, match="not a prunable conv"):
        prune_channels(model, {1: [0]}, SHAPE)
    with pytest.raises(PruningError, match="distinct"):
        prune_channels(model, {0: [0, 16]}, SHAPE)
    with pytest.raises(PruningError, match=r"nn\.Sequential"):
        conv_sites(nn.Module(), SHAPE)


def test_flops_of_a_single_conv_match_the_hand_count() -> None:
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False))  # 2 filters x 9 weights x 3x3 outputs, 2 FLOPs per MAC
    assert count_flops(conv, (1, 5, 5)) == 2 * 2 * 9 * 9


def test_l1_importance_ranks_filters_by_weight_magnitude() -> None:
    conv = nn.Conv2d(1, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -3.0, 2.0]).view(3, 1, 1, 1))
    assert l1_importance(conv).tolist() == [1.0, 3.0, 2.0]
