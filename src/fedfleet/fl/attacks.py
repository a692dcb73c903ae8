"""Simulated model-poisoning clients, as client hooks (see :class:`fedfleet.fl.backend.ClientHook`).

Each hook rewrites the updates of a fixed set of attacking clients and passes the others through,
so tests and benchmarks share one definition of every attack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Literal

import numpy as np
import torch

from fedfleet.fl.messages import ClientUpdate, TrainTask

AttackName = Literal["sign_flip", "boost", "random"]


def choose_attackers(num_clients: int, fraction: float, seed: int) -> frozenset[int]:
    """``round(fraction * num_clients)`` distinct client ids, drawn reproducibly from ``seed``."""
    count = round(fraction * num_clients)
    return frozenset(int(c) for c in np.random.default_rng(seed).choice(num_clients, size=count, replace=False))


class ModelPoisoning:
    """Replaces the attackers' deltas Δ by a poisoned one.

    - ``sign_flip``: −scale · Δ (Fang et al., 2020 style: step against the honest direction);
    - ``boost``: scale · Δ (model replacement / boosting, Bhagoji et al., 2019);
    - ``random``: Gaussian noise with the norm of scale · Δ, seeded by the task.

    Parameters
    ----------
    attackers : collection of int
        Client ids that attack; the others' updates pass through unchanged.
    attack : {"sign_flip", "boost", "random"}
    scale : float
        Multiplier of the honest delta (or of its norm, for ``random``).
    """

    def __init__(self, attackers: Collection[int], attack: AttackName, scale: float = 5.0) -> None:
        self.attackers = frozenset(attackers)
        self.attack = attack
        self.scale = scale

    def __call__(self, task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        if update.client_id not in self.attackers:
            return update
        return dataclasses.replace(update, delta=self.poison(update.delta, task.seed))

    def poison(self, delta: torch.Tensor, seed: int) -> torch.Tensor:
        """The poisoned version of one honest ``delta`` (shape (num_params,))."""
        if self.attack == "sign_flip":
            return -self.scale * delta
        if self.attack == "boost":
            return self.scale * delta
        noise = torch.randn(delta.shape, generator=torch.Generator().manual_seed(seed), dtype=delta.dtype)
        return noise * (self.scale * float(delta.norm()) / float(noise.norm()))


class SignFlipToNorm:
    """Sign-flips the attackers' deltas and rescales them to ``ratio`` x the global model's norm.

    The largest update a global-norm test with ``max_norm_ratio`` above ``ratio`` lets through.
    """

    def __init__(self, attackers: Collection[int], ratio: float) -> None:
        self.attackers = frozenset(attackers)
        self.ratio = ratio

    def __call__(self, task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        if update.client_id not in self.attackers:
            return update
        flipped = -update.delta
        target = self.ratio * float(task.params.norm())
        return dataclasses.replace(update, delta=flipped * (target / float(flipped.norm())))
