"""Aggregation weighted by each device's Non-IID degree: FedJS (static) and FedDH (adaptive).

p_k ∝ n_k / max(λ_k D_k + b_k, ε), D_k the Jensen-Shannon divergence (base 2) between device k's
label distribution and the global one, computed on the device (see docs/noniid.md for the exact
rules and what the server learns).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from fedfleet.data.partition.stats import label_distribution
from fedfleet.fl.device_degree import DEGREE_METRIC
from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan
from fedfleet.fl.strategies.base import FederationInfo, Strategy, weighted_sum

Reference = Literal["counts", "uniform"]


def noniid_weights(num_samples: np.ndarray, degrees: np.ndarray, lam: np.ndarray, b: np.ndarray,
                   epsilon: float) -> np.ndarray:
    """p_k = q_k / Σ q_j with q_k = n_k / max(λ_k D_k + b_k, ε); all arrays (n,).

    The q_k are scaled by the smallest denominator first, so equal denominators give exactly
    ``n_k / Σ n_j`` (FedAvg's weights, bit for bit).
    """
    denominators = np.maximum(lam * degrees + b, epsilon)
    relative = denominators.min() / denominators  # in (0, 1], exactly 1 where the denominators are equal
    scaled = np.asarray(num_samples, dtype=np.float64) * relative
    return scaled / scaled.sum()


def weight_hypergradients(weights: np.ndarray, degrees: np.ndarray, denominators: np.ndarray,
                          deltas: torch.Tensor, direction: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """⟨∂w/∂λ_k, Δ̄⟩ and ⟨∂w/∂b_k, Δ̄⟩ for each device of the cohort.

    With w = w_0 + Σ_j p_j Δ_j and the weights of :func:`noniid_weights` (floor inactive),
    ∂w/∂b_k = -(p_k / den_k) (Δ_k - Δ̄) and ∂w/∂λ_k = D_k ∂w/∂b_k, where Δ̄ = Σ_j p_j Δ_j.

    Parameters
    ----------
    weights, degrees, denominators : numpy.ndarray
        (n,) p_k, D_k and λ_k D_k + b_k.
    deltas : torch.Tensor
        (n, d) the devices' updates Δ_k.
    direction : torch.Tensor
        (d,) Δ̄, the cohort's weighted mean update, taken as the descent direction of the global loss.

    Returns
    -------
    tuple of numpy.ndarray
        (n,) gradients with respect to λ_k and to b_k.
    """
    mean = direction.double()
    centred = (deltas.double() @ mean - mean @ mean).numpy()  # ⟨Δ_k - Δ̄, Δ̄⟩
    grad_b = -(weights / denominators) * centred
    return degrees * grad_b, grad_b


def min_max_signed(values: np.ndarray) -> np.ndarray:
    """Min-max normalisation onto [-1, 1] across the cohort; all zeros when the values are all equal."""
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return np.zeros_like(values)
    return 2.0 * (values - low) / (high - low) - 1.0


def degree_problem(update: ClientUpdate) -> str | None:
    """Why the degree an update reports is unusable (missing, NaN, outside [0, 1]), or None."""
    if DEGREE_METRIC not in update.metrics:
        return f"no Non-IID degree ({DEGREE_METRIC}) reported"
    degree = update.metrics[DEGREE_METRIC]
    if not isinstance(degree, int | float) or isinstance(degree, bool) or not math.isfinite(degree) \
            or not 0.0 <= degree <= 1.0:
        return f"Non-IID degree {degree!r} is not a number in [0, 1]"
    return None


class NonIIDWeighted(Strategy):
    """w ← w + η_s Σ_k p_k Δ_k with p_k ∝ n_k / max(λ_k D_k + b_k, ε).

    Parameters
    ----------
    adaptive : bool
        Learn λ_k, b_k per device (FedDH); False keeps λ = 1, b = ε (FedJS).
    epsilon : float
        Floor of the denominator and of λ_k, b_k (a device with D_k = 0 gets weight ∝ n_k / b_k).
    lr_lambda, lr_b : float
        Initial step sizes on λ_k and b_k.
    decay : float
        Each device's step sizes are multiplied by ``decay`` after every update of that device.
    reference : {"counts", "uniform"}
        The global label distribution sent to devices: the clients' summed label counts, or uniform.
    server_lr : float
        Global step size η_s.
    """

    name = "noniid"
    combines_cohort = True

    def __init__(self, adaptive: bool = True, epsilon: float = 1e-3, lr_lambda: float = 0.1, lr_b: float = 0.01,
                 decay: float = 0.99, reference: Reference = "counts", server_lr: float = 1.0) -> None:
        self.adaptive = adaptive
        self.epsilon = epsilon
        self.lr_lambda = lr_lambda
        self.lr_b = lr_b
        self.decay = decay
        self.reference = reference
        self.server_lr = server_lr

    def setup(self, info: FederationInfo) -> None:
        super().setup(info)
        histograms = np.asarray(info.label_histograms)
        num_classes = histograms.shape[1]
        if self.reference == "counts":  # only the column sums are used: what summing the counts reveals
            self.global_distribution = tuple(float(s) for s in label_distribution(histograms.sum(axis=0)))
        else:
            self.global_distribution = (1.0 / num_classes,) * num_classes
        num_clients = len(info.num_samples)
        self.lam = np.ones(num_clients)
        self.b = np.full(num_clients, self.epsilon)
        self.times_updated = np.zeros(num_clients, dtype=np.int64)

    def configure_train(self, plan: LocalTrainingPlan, round_index: int) -> LocalTrainingPlan:
        return dataclasses.replace(plan, label_reference=self.global_distribution)

    def check_update(self, update: ClientUpdate) -> str | None:
        return degree_problem(update)

    def aggregate(self, global_params: torch.Tensor, updates: Sequence[ClientUpdate]) -> torch.Tensor:
        ids = np.array([u.client_id for u in updates])
        degrees = np.array([u.metrics[DEGREE_METRIC] for u in updates], dtype=np.float64)
        counts = np.array([u.num_samples for u in updates], dtype=np.float64)
        weights = noniid_weights(counts, degrees, self.lam[ids], self.b[ids], self.epsilon)
        deltas = [u.delta for u in updates]
        direction = self.combine(deltas, weights)
        if self.adaptive:
            mean = direction if self.combiner is None else weighted_sum(deltas, weights)
            self._learn(ids, degrees, weights, torch.stack(deltas), mean)
        return global_params + self.server_lr * direction

    def _learn(self, ids: np.ndarray, degrees: np.ndarray, weights: np.ndarray, deltas: torch.Tensor,
               mean: torch.Tensor) -> None:
        """One ascent step on each device's λ_k, b_k along its normalised hypergradient."""
        denominators = np.maximum(self.lam[ids] * degrees + self.b[ids], self.epsilon)
        grad_lambda, grad_b = weight_hypergradients(weights, degrees, denominators, deltas, mean)
        scale = self.decay ** self.times_updated[ids]
        self.lam[ids] = np.maximum(self.lam[ids] + self.lr_lambda * scale * min_max_signed(grad_lambda),
                                   self.epsilon)
        self.b[ids] = np.maximum(self.b[ids] + self.lr_b * scale * min_max_signed(grad_b), self.epsilon)
        self.times_updated[ids] += 1

    def state_dict(self) -> dict[str, Any]:
        return {"lambda": self.lam.copy(), "b": self.b.copy(), "times_updated": self.times_updated.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        lam, b, times = (np.asarray(state[k]) for k in ("lambda", "b", "times_updated"))
        if not lam.shape == b.shape == times.shape == self.lam.shape:
            raise ValueError(f"noniid state holds {lam.shape} devices, the federation has {self.lam.shape}")
        self.lam, self.b, self.times_updated = lam.astype(np.float64), b.astype(np.float64), times.astype(np.int64)
