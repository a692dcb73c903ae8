"""Filter importance (L1, HRank) and FedAP's per-layer rates from one model-level rate."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedfleet.models import build_model
from fedfleet.pruning import filter_importance, hrank_importance, magnitude_rates, ranked_keep

SHAPE = (1, 8, 8)


def test_a_dead_filter_has_feature_maps_of_rank_zero_and_goes_first():
    torch.manual_seed(0)
    model = build_model("cnn", SHAPE, 10)
    with torch.no_grad():
        model[0].bias.fill_(3.0)  # every other filter active on every pixel: its maps have high rank
        model[0].weight[5].zero_()
        model[0].bias[5] = -1.0  # ReLU of a negative constant: an all-zero map
        model[0].weight[9].zero_()
        model[0].bias[9] = 1.0  # a constant map: rank 1
    ranks = hrank_importance(model, 0, torch.rand(16, *SHAPE))
    assert ranks[5] == 0 and ranks[9] == 1
    assert ranks.min() == 0 and (ranks[[i for i in range(16) if i not in (5, 9)]] > 1).all()
    assert 5 not in ranked_keep(ranks, 15) and 9 not in ranked_keep(ranks, 14)


def test_hrank_needs_images_and_l1_is_the_weight_norm():
    model = build_model("cnn", SHAPE, 10)
    with pytest.raises(ValueError, match="images"):
        filter_importance(model, 0, "hrank")
    assert torch.equal(filter_importance(model, 0, "l1"), model[0].weight.detach().abs().sum(dim=(1, 2, 3)))


def test_ties_keep_the_lower_positions():
    assert ranked_keep(torch.tensor([1.0, 2.0, 2.0, 1.0]), 3) == [0, 1, 2]


def test_magnitude_rates_follow_each_layers_share_of_small_weights():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(64, 2))
    with torch.no_grad():
        model[0].weight.fill_(0.01)  # every weight of the first layer is small
        model[2].weight.copy_(torch.linspace(0.1, 1.0, model[2].weight.numel()).reshape(model[2].weight.shape))
    rates = magnitude_rates(model, SHAPE, target_rate=0.5, max_rate=0.8)
    assert rates[0] == 0.8  # capped
    share_small = (36 + 144) * 0.5 - 36  # the global median falls inside the second layer's weights
    assert rates[2] == pytest.approx(share_small / 144, abs=1 / 144)
