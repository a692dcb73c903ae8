"""FedNova (Wang et al., 2020): normalised averaging that removes objective inconsistency."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan
from fedfleet.fl.strategies.base import Strategy, sample_weights, weighted_sum


def momentum_normaliser(local_steps: int, momentum: float) -> float:
    """a_i = ‖a‖₁ of FedNova's local-update vector for SGD with momentum ρ over τ steps.

    ρ = 0 gives τ; otherwise [τ − ρ(1 − ρ^τ)/(1 − ρ)] / (1 − ρ).
    """
    if momentum == 0:
        return float(local_steps)
    rho = momentum
    return (local_steps - rho * (1 - rho**local_steps) / (1 - rho)) / (1 - rho)


class FedNova(Strategy):
    """w ← w + η_s τ_eff Σ_i p_i Δ_i / a_i, with τ_eff = Σ_i p_i a_i and p_i ∝ n_i."""

    name = "fednova"
    combines_cohort = True

    def __init__(self, server_lr: float = 1.0) -> None:
        self.server_lr = server_lr
        self.momentum = 0.0

    def configure_train(self, plan: LocalTrainingPlan, round_index: int) -> LocalTrainingPlan:
        self.momentum = plan.momentum
        return plan

    def aggregate(self, global_params: torch.Tensor, updates: Sequence[ClientUpdate]) -> torch.Tensor:
        weights = sample_weights(updates)
        norms = [momentum_normaliser(u.local_steps, self.momentum) for u in updates]
        tau_eff = float(sum(w * a for w, a in zip(weights, norms, strict=True)))
        if self.combiner is None:  # the weighted mean, as Σ (p_i / a_i) Δ_i in one streaming pass
            direction = weighted_sum([u.delta for u in updates], [w / a for w, a in zip(weights, norms, strict=True)])
        else:
            direction = self.combine([u.delta / a for u, a in zip(updates, norms, strict=True)], weights)
        return global_params + self.server_lr * tau_eff * direction
