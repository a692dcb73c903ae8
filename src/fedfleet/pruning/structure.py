"""Remove whole convolution filters from a sequential model, shrinking the layer that consumes them.

A *site* is a :class:`torch.nn.Conv2d` inside an :class:`torch.nn.Sequential` whose output
reaches the next ``Conv2d`` or ``Linear`` (its *consumer*) only through channel-wise layers
(activations, pooling, dropout, batch norm) and at most one ``Flatten``. Pruning a site keeps
the listed output channels of the conv (and of any batch norm between), and the matching
input channels of the consumer: for a ``Linear`` after ``Flatten``, the block of
``height * width`` input features each channel flattens to. The pruned model is a new, smaller
module; its outputs equal the original's with the removed filters' weights and biases zeroed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fedfleet.errors import FedfleetError

CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.MaxPool2d, nn.AvgPool2d,
               nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.Dropout, nn.Dropout2d, nn.BatchNorm2d, nn.Identity)


class PruningError(FedfleetError):
    """A model or rate pruning cannot handle (e.g. a rate that removes every filter of a layer)."""


@dataclass(frozen=True)
class ConvSite:
    """A prunable conv layer of a sequential model.

    Attributes
    ----------
    index : int
        Position of the ``Conv2d`` in the ``Sequential``.
    consumer : int
        Position of the ``Conv2d`` or ``Linear`` that reads its channels.
    norms : tuple of int
        Positions of the ``BatchNorm2d`` layers between them.
    spatial : int
        Input features of the consumer per channel: ``height * width`` when it is a ``Linear``
        after ``Flatten``, else 1.
    """

    index: int
    consumer: int
    norms: tuple[int, ...]
    spatial: int


def conv_sites(model: nn.Module, input_shape: tuple[int, ...]) -> list[ConvSite]:
    """The prunable conv layers of ``model`` for inputs of ``input_shape`` (without the batch axis).

    Raises
    ------
    PruningError
        ``model`` is not an ``nn.Sequential``, a conv uses groups, or a layer between a conv and its
        consumer mixes channels in a way pruning does not follow.
    """
    if not isinstance(model, nn.Sequential):
        raise PruningError(f"pruning needs an nn.Sequential model, not {type(model).__name__}")
    layers = list(model)
    shapes = _output_shapes(model, input_shape)
    sites = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, nn.Conv2d):
            continue
        if layer.groups != 1:
            raise PruningError(f"layer {index} is a grouped conv (groups={layer.groups}); pruning supports groups=1")
        norms: list[int] = []
        flatten: int | None = None
        for after in range(index + 1, len(layers)):
            following = layers[after]
            if isinstance(following, nn.Conv2d) and flatten is None:
                sites.append(ConvSite(index, after, tuple(norms), 1))
                break
            if isinstance(following, nn.Linear) and flatten is not None:
                _, height, width = shapes[flatten - 1]
                sites.append(ConvSite(index, after, tuple(norms), height * width))
                break
            if isinstance(following, nn.Flatten) and flatten is None:
                flatten = after
                continue
            if isinstance(following, nn.BatchNorm2d):
                norms.append(after)
            if not isinstance(following, CHANNELWISE):
                raise PruningError(f"layer {after} ({type(following).__name__}) after conv {index} is not one "
                                   "pruning can follow (activations, pooling, dropout, batch norm, Flatten)")
    return sites


def channel_counts(model: nn.Module, input_shape: tuple[int, ...]) -> dict[int, int]:
    """Output channels of each prunable conv, keyed by its position: the pruned architecture."""
    layers = list(model.children())
    return {site.index: _conv(layers[site.index]).out_channels for site in conv_sites(model, input_shape)}


def filters_to_keep(num_filters: int, rate: float) -> int:
    """How many of ``num_filters`` survive pruning at ``rate`` (the share removed, rounded down).

    Raises
    ------
    PruningError
        ``rate`` is outside [0, 1) or would leave no filter.
    """
    if not 0.0 <= rate < 1.0:
        raise PruningError(f"pruning rate {rate} is outside [0, 1); a rate of 1 would remove every filter")
    kept = num_filters - int(rate * num_filters + 1e-9)  # 0.29 * 100 is 28.999...: 29 filters go
    if kept < 1:
        raise PruningError(f"pruning rate {rate} would remove all {num_filters} filters of a layer; lower it")
    return kept


def l1_importance(conv: nn.Conv2d) -> torch.Tensor:
    """(out_channels,) L1 norm of each filter's weights (Li et al., ICLR 2017)."""
    return conv.weight.detach().abs().sum(dim=(1, 2, 3))


def prune_channels(model: nn.Sequential, keep: Mapping[int, Sequence[int]],
                   input_shape: tuple[int, ...]) -> nn.Sequential:
    """A copy of ``model`` keeping, for each conv position in ``keep``, only the listed output channels.

    Raises
    ------
    PruningError
        A position is not a prunable conv, or its list is empty, repeats or is out of range.
    """
    sites = {site.index: site for site in conv_sites(model, input_shape)}
    pruned = copy.deepcopy(model)
    for index, channels in sorted(keep.items()):
        if index not in sites:
            raise PruningError(f"layer {index} is not a prunable conv (prunable: {sorted(sites)})")
        conv = _conv(pruned[index])
        chosen = torch.as_tensor(sorted(channels), dtype=torch.long)
        if len(chosen) == 0:
            raise PruningError(f"pruning would remove every filter of layer {index}; keep at least one")
        if len(set(chosen.tolist())) != len(chosen) or int(chosen[0]) < 0 or int(chosen[-1]) >= conv.out_channels:
            raise PruningError(f"channels to keep in layer {index} must be distinct and in "
                               f"[0, {conv.out_channels}), got {list(channels)}")
        _shrink(pruned, sites[index], chosen)
    return pruned


@torch.no_grad()
def _shrink(model: nn.Sequential, site: ConvSite, chosen: torch.Tensor) -> None:
    conv = _conv(model[site.index])
    smaller = _conv_like(conv, conv.in_channels, len(chosen))
    smaller.weight.copy_(conv.weight[chosen])
    if conv.bias is not None and smaller.bias is not None:
        smaller.bias.copy_(conv.bias[chosen])
    model[site.index] = smaller
    for position in site.norms:
        norm = model[position]
        assert isinstance(norm, nn.BatchNorm2d)
        kept_norm = nn.BatchNorm2d(len(chosen), norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
        kept_norm.load_state_dict({name: value[chosen] if value.ndim else value
                                   for name, value in norm.state_dict().items()})
        model[position] = kept_norm
    consumer = model[site.consumer]
    reader: nn.Conv2d | nn.Linear
    if isinstance(consumer, nn.Conv2d):
        reader = _conv_like(consumer, len(chosen), consumer.out_channels)
        reader.weight.copy_(consumer.weight[:, chosen])
    else:
        assert isinstance(consumer, nn.Linear)
        columns = (chosen[:, None] * site.spatial + torch.arange(site.spatial)).reshape(-1)
        reader = nn.Linear(len(columns), consumer.out_features, bias=consumer.bias is not None)
        reader.weight.copy_(consumer.weight[:, columns])
    if consumer.bias is not None and reader.bias is not None:
        reader.bias.copy_(consumer.bias)
    model[site.consumer] = reader


def _conv(layer: nn.Module) -> nn.Conv2d:
    assert isinstance(layer, nn.Conv2d), f"expected a Conv2d, found {type(layer).__name__}"
    return layer


def _conv_like(conv: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
    shape = {"kernel_size": conv.kernel_size, "stride": conv.stride, "padding": conv.padding,
             "dilation": conv.dilation}
    return nn.Conv2d(in_channels, out_channels, **shape, bias=conv.bias is not None,  # type: ignore[arg-type]
                     padding_mode=conv.padding_mode)


@torch.no_grad()
def _output_shapes(model: nn.Sequential, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Each layer's output shape (without the batch axis) for one input of ``input_shape``."""
    x = torch.zeros(1, *input_shape)
    shapes = []
    was_training = model.training
    model.eval()
    for layer in model:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    model.train(was_training)
    return shapes


def count_flops(model: nn.Module, input_shape: tuple[int, ...], training: bool = False) -> int:
    """FLOPs of one sample through ``model`` (``torch.utils.flop_counter``); with ``training``, forward and backward."""
    counted = copy.deepcopy(model)  # ``model``'s gradients and batch-norm statistics stay as they are
    with FlopCounterMode(display=False) as counter:
        out = counted(torch.zeros(1, *input_shape))
        if training:
            out.sum().backward()
    return int(counter.get_total_flops())
