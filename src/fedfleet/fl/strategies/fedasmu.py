"""FedASMU (Liu et al., AAAI 2024): staleness-aware mixing weights learned per device, plus a device-side refresh.

The server mixes w ← (1 − α_i) w + α_i w_i with

    s = t − o + 1,   ξ_i = λ_i / (√max(t, 1) · s^σ_i) + ι_i,   α_i = μ ξ_i / (1 + μ ξ_i),

and learns λ_i, σ_i, ι_i of each device by projected gradient steps (docs/async.md):
after mixing device i's model along d = w_i − w_t, the next arriving delta Δ_j (a descent
direction of the loss near the new model) gives the hypergradient estimate
∂L/∂α_i ≈ −cos(Δ_j, d), and θ_i ← θ_i − η_meta · ∂L/∂α_i · ∂α_i/∂θ_i.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fedfleet.fl.strategies.async_base import Arrival, AsyncStrategy, mix
from fedfleet.fl.strategies.base import FederationInfo

LAMBDA_INIT, SIGMA_INIT, IOTA_INIT = 1.0, 0.5, 0.0
LAMBDA_MIN = 1e-3  # keeps ξ > 0, hence α in (0, 1)
XI_MAX = 1e6  # keeps μξ / (1 + μξ) below 1 in floating point


def mixing_weight(lam: float, sigma: float, iota: float, version: int, staleness: int,
                  mu: float) -> tuple[float, np.ndarray]:
    """α_i and its gradient (∂α/∂λ, ∂α/∂σ, ∂α/∂ι) for s = staleness + 1 at global version t."""
    s = staleness + 1
    root_t = math.sqrt(max(version, 1))
    base = 1.0 / (root_t * s**sigma)
    xi = min(lam * base + iota, XI_MAX)
    alpha = mu * xi / (1.0 + mu * xi)
    dalpha_dxi = mu / (1.0 + mu * xi) ** 2
    dxi = np.array([base, -lam * math.log(s) * base, 1.0])
    return alpha, dalpha_dxi * dxi


def refresh_weight(gained: int, beta_max: float) -> float:
    """β = β_max · g / (g + 1) for a fresh model g versions newer than the device's base: 0 when nothing changed."""
    return beta_max * gained / (gained + 1)


class FedASMU(AsyncStrategy):
    """Dynamic staleness-aware aggregation with per-device learned λ, σ, ι.

    Parameters
    ----------
    mix_scale : float
        μ.
    meta_lr : float
        Step size of the server-side gradient steps on (λ_i, σ_i, ι_i); 0 keeps them fixed.
    refresh_at : float
        Share of local steps after which a device fetches the current global model; 0 never.
    refresh_beta : float
        Upper bound of the device's blend weight β.
    """

    name = "fedasmu"

    def __init__(self, mix_scale: float = 1.0, meta_lr: float = 0.05, refresh_at: float = 0.5,
                 refresh_beta: float = 0.5) -> None:
        self.mix_scale, self.meta_lr = mix_scale, meta_lr
        self.refresh_at, self.refresh_beta = refresh_at, refresh_beta
        self.theta = np.zeros((0, 3))
        self.pending: dict[str, Any] = {}

    def setup(self, info: FederationInfo) -> None:
        super().setup(info)
        self.theta = np.tile([LAMBDA_INIT, SIGMA_INIT, IOTA_INIT], (len(info.num_samples), 1))

    def weight(self, client_id: int, version: int, staleness: int) -> tuple[float, np.ndarray]:
        lam, sigma, iota = self.theta[client_id]
        return mixing_weight(float(lam), float(sigma), float(iota), version, staleness, self.mix_scale)

    def receive(self, global_params: torch.Tensor, arrival: Arrival) -> torch.Tensor:
        self._learn(arrival.update.delta)
        client = arrival.update.client_id
        alpha, gradient = self.weight(client, arrival.version, arrival.staleness)
        local = arrival.local_params()
        self.pending = {"client": client, "gradient": gradient, "direction": local - global_params}
        return mix(global_params, local, alpha)

    def _learn(self, descent: torch.Tensor) -> None:
        """One projected gradient step on the parameters of the device mixed in last."""
        if not self.pending or self.meta_lr == 0:
            return
        direction = self.pending["direction"]
        norms = float(descent.norm()) * float(direction.norm())
        if norms == 0:
            return
        dloss_dalpha = -float(descent @ direction) / norms
        theta = self.theta[self.pending["client"]] - self.meta_lr * dloss_dalpha * np.asarray(self.pending["gradient"])
        self.theta[self.pending["client"]] = [max(theta[0], LAMBDA_MIN), max(theta[1], 0.0), max(theta[2], 0.0)]

    def refresh(self, local: torch.Tensor, fresh: torch.Tensor, gained: int) -> torch.Tensor:
        return mix(local, fresh, refresh_weight(gained, self.refresh_beta))

    def state_dict(self) -> dict[str, Any]:
        return {"theta": self.theta.copy(), "pending": dict(self.pending)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "theta" in state:
            self.theta = np.array(state["theta"], dtype=np.float64)
        self.pending = dict(state.get("pending", {}))
