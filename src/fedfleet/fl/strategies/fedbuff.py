"""FedBuff (Nguyen et al., AISTATS 2022): buffer K deltas, then step by their mean."""

from __future__ import annotations

from typing import Any

import torch

from fedfleet.fl.strategies.async_base import Arrival, AsyncStrategy


class FedBuff(AsyncStrategy):
    """Every K-th arrival: w ← w + η_g · mean(Δ of the K buffered updates).

    The buffer is a streaming sum of Δ/K (one accumulator), so K = cohort size, η_g = 1 and
    equal client sizes give exactly FedAvg's arithmetic.

    Parameters
    ----------
    buffer_size : int
        K.
    server_lr : float
        η_g.
    """

    name = "fedbuff"

    def __init__(self, buffer_size: int = 10, server_lr: float = 1.0) -> None:
        self.buffer_size, self.server_lr = buffer_size, server_lr
        self.total: torch.Tensor | None = None
        self.count = 0

    def receive(self, global_params: torch.Tensor, arrival: Arrival) -> torch.Tensor | None:
        if self.total is None:
            self.total = torch.zeros_like(arrival.update.delta)
        self.total.add_(arrival.update.delta, alpha=1.0 / self.buffer_size)
        self.count += 1
        if self.count < self.buffer_size:
            return None
        direction, self.total, self.count = self.total, None, 0
        return global_params + self.server_lr * direction

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, **({"total": self.total} if self.total is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state.get("count", 0))
        self.total = state.get("total")
