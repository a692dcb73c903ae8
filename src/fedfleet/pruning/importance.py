"""How much each filter of a conv layer matters, and how much of each layer to prune."""

from __future__ import annotations

import torch
from torch import nn

from fedfleet.pruning.structure import conv_sites, l1_importance

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid)


@torch.no_grad()
def hrank_importance(model: nn.Sequential, index: int, images: torch.Tensor) -> torch.Tensor:
    """(out_channels,) average rank of each filter's feature maps over ``images`` (HRank, Lin et al., CVPR 2020).

    The maps are taken after the activation that follows the conv at position ``index`` (through
    any batch norm; the conv's own output when no activation follows); a filter whose maps have low rank carries
    little information and goes first.
    """
    layers = list(model.children())
    after = index + 1
    while after < len(layers) and isinstance(layers[after], nn.BatchNorm2d):
        after += 1
    tap = after if after < len(layers) and isinstance(layers[after], ACTIVATIONS) else index
    was_training = model.training
    model.eval()
    x = images
    for layer in layers[: tap + 1]:
        x = layer(x)
    model.train(was_training)
    ranks = torch.linalg.matrix_rank(x.double())  # (images, channels): rank of each H x W map
    return ranks.double().mean(dim=0).float()


def filter_importance(model: nn.Sequential, index: int, kind: str, images: torch.Tensor | None = None) -> torch.Tensor:
    """(out_channels,) importance of the filters of the conv at ``index``: ``l1`` or ``hrank`` (needs ``images``)."""
    conv = model[index]
    assert isinstance(conv, nn.Conv2d)
    if kind == "hrank":
        if images is None:
            raise ValueError("hrank importance needs images to compute feature maps on")
        return hrank_importance(model, index, images)
    return l1_importance(conv)


def magnitude_rates(model: nn.Sequential, input_shape: tuple[int, ...], target_rate: float,
                    max_rate: float) -> dict[int, float]:
    """Per-layer rates from one model-level rate, FedAP's way.

    The threshold is the ``target_rate`` quantile of the absolute weights of all prunable convs;
    a layer's rate is the share of its own weights below it, capped at ``max_rate``. Layers whose
    weights are small overall get pruned more.
    """
    layers = list(model.children())
    weights = {site.index: _weight(layers[site.index]).detach().abs().reshape(-1)
               for site in conv_sites(model, input_shape)}
    threshold = quantile(torch.cat(list(weights.values())), target_rate)
    return {index: min(max_rate, float((w < threshold).float().mean())) for index, w in weights.items()}


def quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q`` quantile of a 1-D tensor, interpolated linearly as ``torch.quantile`` does, for any size
    (``torch.quantile`` refuses tensors of more than 16 million values)."""
    ordered = values.sort().values
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def ranked_keep(importance: torch.Tensor, kept: int) -> list[int]:
    """The ``kept`` most important channel positions, ties to the lower position (deterministic)."""
    order = sorted(range(len(importance)), key=lambda c: (-float(importance[c]), c))
    return sorted(order[:kept])


def _weight(layer: nn.Module) -> torch.Tensor:
    assert isinstance(layer, nn.Conv2d)
    return layer.weight
