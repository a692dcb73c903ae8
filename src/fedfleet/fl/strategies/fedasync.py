"""FedAsync (Xie et al., 2019): mix each arriving model in with a staleness-discounted weight."""

from __future__ import annotations

from typing import Literal

import torch

from fedfleet.fl.strategies.async_base import Arrival, AsyncStrategy, mix

StalenessFunction = Literal["constant", "polynomial", "hinge"]


def staleness_factor(staleness: int, function: StalenessFunction, a: float, b: int) -> float:
    """s(t - o): 1 (constant), (t - o + 1)^-a (polynomial), or 1 up to b then 1 / (a (t - o - b) + 1) (hinge)."""
    if staleness < 0:
        raise ValueError(f"staleness {staleness} is negative: an update cannot come from a future version")
    if function == "constant":
        return 1.0
    if function == "polynomial":
        return float((staleness + 1) ** -a)
    return 1.0 if staleness <= b else 1.0 / (a * (staleness - b) + 1.0)


class FedAsync(AsyncStrategy):
    """w ← (1 − α_s) w + α_s w_i with α_s = α · s(t − o).

    Parameters
    ----------
    alpha : float
        Mixing weight in (0, 1] before the staleness factor.
    staleness : {"constant", "polynomial", "hinge"}
    a : float
        Polynomial exponent or hinge slope.
    b : int
        Hinge threshold (versions).
    """

    name = "fedasync"

    def __init__(self, alpha: float = 0.6, staleness: StalenessFunction = "polynomial", a: float = 0.5,
                 b: int = 4) -> None:
        self.alpha, self.staleness, self.a, self.b = alpha, staleness, a, b

    def weight(self, staleness: int) -> float:
        return self.alpha * staleness_factor(staleness, self.staleness, self.a, self.b)

    def receive(self, global_params: torch.Tensor, arrival: Arrival) -> torch.Tensor:
        return mix(global_params, arrival.local_params(), self.weight(arrival.staleness))
