"""The strategy interface: paired hooks to configure local training and to aggregate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan


@dataclass(frozen=True)
class FederationInfo:
    """What the server knows about its clients before training starts.

    Attributes
    ----------
    num_samples : numpy.ndarray
        (num_clients,) local data set sizes.
    label_histograms : numpy.ndarray
        (num_clients, num_classes) label counts (the Non-IID degree is computed from these).
    """

    num_samples: np.ndarray
    label_histograms: np.ndarray


Combiner = Callable[[Sequence[torch.Tensor], np.ndarray], torch.Tensor]
"""Combines a cohort's vectors, given their aggregation weights, into one vector."""


class Strategy:
    """Base strategy: passes the plan through; subclasses override ``aggregate``.

    Strategies hold any server-side state they need in ``state_dict`` so runs can resume. A strategy
    that averages a cohort does so through :meth:`combine` and sets ``combines_cohort``, so a robust
    rule (``combiner``, e.g. the coordinate median) can replace its weighted mean.
    """

    name = "base"
    combines_cohort = False
    combiner: Combiner | None = None  # None: the weighted mean

    def setup(self, info: FederationInfo) -> None:
        """Called once before training with what the server knows of its clients."""
        self.info = info

    def configure_train(self, plan: LocalTrainingPlan, round_index: int) -> LocalTrainingPlan:
        """The local-training plan sent to this round's clients."""
        return plan

    def aggregate(self, global_params: torch.Tensor, updates: Sequence[ClientUpdate]) -> torch.Tensor:
        """New global parameters from the accepted updates (never empty)."""
        raise NotImplementedError

    def sample_mean_lr(self) -> float | None:
        """η when :meth:`aggregate` is w + η Σ_i (n_i / n) Δ_i and :meth:`check_update` accepts every
        update, so per-worker sums of n_i Δ_i can stand in for the updates; None otherwise."""
        return None

    def check_update(self, update: ClientUpdate) -> str | None:
        """Why this strategy cannot aggregate ``update`` (the runner rejects it with that reason), or None."""
        del update
        return None

    def combine(self, vectors: Sequence[torch.Tensor], weights: np.ndarray) -> torch.Tensor:
        """The cohort's weighted mean Σ w_i v_i, or the robust ``combiner`` in its place."""
        if self.combiner is None:
            return weighted_sum(vectors, weights)
        return self.combiner(vectors, weights)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


def sample_weights(updates: Sequence[ClientUpdate]) -> np.ndarray:
    """FedAvg weights: proportional to each update's ``num_samples``, summing to 1."""
    counts = np.array([u.num_samples for u in updates], dtype=np.float64)
    return counts / counts.sum()


def weighted_sum(vectors: Sequence[torch.Tensor], weights: Sequence[float] | np.ndarray) -> torch.Tensor:
    """Σ w_i v_i as a streaming sum (one accumulator, no stacked copy of the cohort)."""
    total = torch.zeros_like(vectors[0])
    for vector, weight in zip(vectors, weights, strict=True):
        total.add_(vector, alpha=float(weight))
    return total
