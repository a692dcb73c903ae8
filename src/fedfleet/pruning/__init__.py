"""Structured pruning of convolution filters (FedDUAP's FedAP; docs/pruning.md)."""

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

__all__ = ["ConvSite", "PruningError", "channel_counts", "conv_sites", "count_flops", "filters_to_keep",
           "l1_importance", "prune_channels"]
