"""Layers with a certified Lipschitz constant and the networks built from them.

A linear map's Lipschitz constant in the Euclidean norm is its largest singular value
(spectral norm); MaxMin (GroupSort with groups of two) permutes each pair of units and is
therefore 1-Lipschitz. Chaining spectrally normalised linear layers with MaxMin gives a
network whose Lipschitz constant is at most the product of the layer norms, each exactly 1
here, so the final scale ``L`` is the certified bound.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class MaxMin(nn.Module):
    """GroupSort with groups of two: ``(a, b) -> (max(a, b), min(a, b))`` on the last axis.

    It only permutes the entries of each pair, so it is 1-Lipschitz and preserves norms
    (unlike ReLU it discards no gradient). The feature size must be even.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., 2k) -> pairs (..., k, 2) -> (max, min) re-interleaved as (..., 2k)
        if x.shape[-1] % 2:
            raise ValueError(f"MaxMin needs an even feature size, got {x.shape[-1]}")
        pairs = x.unflatten(-1, (-1, 2))
        high = pairs.max(dim=-1).values
        low = pairs.min(dim=-1).values
        return torch.stack((high, low), dim=-1).flatten(-2)


class SpectralLinear(nn.Module):
    """A linear layer whose weight is divided by its exact largest singular value.

    Unlike power-iteration spectral normalisation, the norm is computed exactly on every
    forward pass (matrices here are small), so the bound is certified, not estimated.

    Parameters
    ----------
    in_features, out_features : int
        Input and output sizes.
    bias : bool
        Whether to add a bias (it does not affect the Lipschitz constant).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.raw = nn.Linear(in_features, out_features, bias=bias)

    @property
    def weight(self) -> torch.Tensor:
        """The normalised weight, shape (out_features, in_features), spectral norm 1."""
        return self.raw.weight / torch.linalg.matrix_norm(self.raw.weight, ord=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.raw.bias)


def spectral_norm(layer: nn.Module) -> float:
    """The exact spectral norm of a (Spectral)Linear layer's effective weight."""
    weight = layer.weight if isinstance(layer, SpectralLinear | nn.Linear) else None
    if weight is None:
        raise TypeError(f"no linear weight on {type(layer).__name__}")
    with torch.no_grad():
        return float(torch.linalg.matrix_norm(weight.double(), ord=2))


class TopModel(nn.Module):
    """The active party's top sub-model: an MLP from the interaction output to logits.

    Parameters
    ----------
    in_features : int
        Interaction-layer output size.
    hidden : int
        Width of each hidden layer (even when ``lipschitz`` is set, for MaxMin).
    depth : int
        Number of hidden layers.
    num_classes : int
        Number of logits.
    lipschitz : float or None
        With a value ``L``: spectrally normalised layers, MaxMin activations and a final
        scale by ``L``, so the map is certified L-Lipschitz. With None: plain linear layers
        with ReLU of the same sizes (the unconstrained baseline).
    """

    def __init__(
        self, in_features: int, hidden: int, depth: int, num_classes: int, lipschitz: float | None
    ) -> None:
        super().__init__()
        self.lipschitz = lipschitz
        sizes = [in_features, *([hidden] * depth), num_classes]
        linear = SpectralLinear if lipschitz is not None else nn.Linear
        activation = MaxMin if lipschitz is not None else nn.ReLU
        self.layers = nn.ModuleList(linear(a, b) for a, b in itertools.pairwise(sizes))
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, in_features) -> logits (batch, num_classes)
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        logits: torch.Tensor = self.layers[-1](x)
        return logits * self.lipschitz if self.lipschitz is not None else logits

    def lipschitz_bound(self) -> float:
        """A certified Lipschitz constant: product of the layers' exact spectral norms (x L)."""
        bound = math.prod(spectral_norm(layer) for layer in self.layers)
        return bound * self.lipschitz if self.lipschitz is not None else bound

    def pair_lipschitz_bounds(self) -> torch.Tensor:
        """(classes, classes) certified Lipschitz constants of each logit difference ``f_i - f_j``.

        The hidden layers' spectral norms times ``||w_i - w_j||`` for the last layer's rows (x L):
        never above ``sqrt(2)`` times :meth:`lipschitz_bound`, which bounds every pair alike.
        """
        hidden = math.prod(spectral_norm(layer) for layer in self.layers[:-1])
        last = self.layers[-1]
        assert isinstance(last, (nn.Linear, SpectralLinear))
        rows = last.weight.detach().double()
        bounds = torch.cdist(rows, rows) * hidden
        return bounds * self.lipschitz if self.lipschitz is not None else bounds
