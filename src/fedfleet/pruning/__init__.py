"""Structured pruning of convolution filters while the federation trains (FedDUAP's FedAP; docs/pruning.md)."""

from fedfleet.pruning.controller import PruningHook, rebuild
from fedfleet.pruning.files import load_pruned_model
from fedfleet.pruning.importance import filter_importance, hrank_importance, magnitude_rates, ranked_keep
from fedfleet.pruning.structure import (
    ConvSite,
    PruningError,
    channel_counts,
    conv_sites,
    count_flops,
    filters_to_keep,
    l1_importance,
    prune_channels,
)

__all__ = ["ConvSite", "PruningError", "PruningHook", "channel_counts", "conv_sites", "count_flops",
           "filter_importance", "filters_to_keep", "hrank_importance", "l1_importance", "load_pruned_model",
           "magnitude_rates", "prune_channels", "ranked_keep", "rebuild"]
