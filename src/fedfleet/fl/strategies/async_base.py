"""The asynchronous strategy interface: one arriving update at a time, on a versioned model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fedfleet.fl.messages import ClientUpdate
from fedfleet.fl.strategies.base import Strategy


@dataclass(frozen=True)
class Arrival:
    """An accepted update reaching the server while the global model is at ``version``.

    Attributes
    ----------
    update : ClientUpdate
        Its ``delta`` is relative to ``base_params``, the global model of ``update.base_version``.
    base_params : torch.Tensor
        (num_params,) the model the device started from.
    version : int
        The current global version t.
    """

    update: ClientUpdate
    base_params: torch.Tensor
    version: int

    @property
    def staleness(self) -> int:
        """t - o: versions created since the device got its model."""
        return self.version - self.update.base_version

    def local_params(self) -> torch.Tensor:
        """w_i, the device's trained model."""
        return self.base_params + self.update.delta


class AsyncStrategy(Strategy):
    """Base of FedAsync, FedBuff and FedASMU.

    ``receive`` returns the next global model, or None while it only buffers; the runner makes
    a new version from each non-None result. ``refresh_at`` > 0 asks devices to fetch the
    current model after that share of their local steps and ``refresh`` blends it in.
    """

    refresh_at: float = 0.0

    def receive(self, global_params: torch.Tensor, arrival: Arrival) -> torch.Tensor | None:
        raise NotImplementedError

    def refresh(self, local: torch.Tensor, fresh: torch.Tensor, gained: int) -> torch.Tensor:
        """The device's model after fetching ``fresh``, ``gained`` versions newer than its base."""
        del fresh, gained
        return local

    def aggregate(self, global_params: torch.Tensor, updates: Sequence[ClientUpdate]) -> torch.Tensor:
        raise TypeError(f"strategy {self.name} is asynchronous: the async runner calls receive(), not aggregate()")


def mix(global_params: torch.Tensor, local: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 - alpha) * w + alpha * w_i."""
    return global_params * (1.0 - alpha) + local * alpha
