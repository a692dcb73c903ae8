"""FedAvg (McMahan et al., 2017) and FedProx (Li et al., 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan
from fedfleet.fl.strategies.base import Strategy, sample_weights


class FedAvg(Strategy):
    """w ← w + η_s Σ_i (n_i / n) Δ_i.

    Parameters
    ----------
    server_lr : float
        Global step size η_s applied to the averaged delta (1.0 is plain FedAvg).
    """

    name = "fedavg"
    combines_cohort = True

    def __init__(self, server_lr: float = 1.0) -> None:
        self.server_lr = server_lr

    def sample_mean_lr(self) -> float | None:
        """η_s, unless a robust combiner replaces the mean or a subclass aggregates or checks updates its own way."""
        own_rule = type(self).aggregate is not FedAvg.aggregate or type(self).check_update is not Strategy.check_update
        return None if self.combiner is not None or own_rule else self.server_lr

    def aggregate(self, global_params: torch.Tensor, updates: Sequence[ClientUpdate]) -> torch.Tensor:
        weights = sample_weights(updates)
        direction = self.combine([u.delta for u in updates], weights)
        return global_params + self.server_lr * direction


class FedProx(FedAvg):
    """FedAvg aggregation with the proximal term ``mu/2 ||w - w_global||^2`` in local training."""

    name = "fedprox"

    def __init__(self, mu: float = 0.01, server_lr: float = 1.0) -> None:
        super().__init__(server_lr)
        self.mu = mu

    def configure_train(self, plan: LocalTrainingPlan, round_index: int) -> LocalTrainingPlan:
        return LocalTrainingPlan(**{**plan.__dict__, "prox_mu": self.mu})
