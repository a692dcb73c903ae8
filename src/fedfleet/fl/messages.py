"""Messages between server and clients: frozen dataclasses, never string-keyed payloads."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class LocalTrainingPlan:
    """How a client trains locally.

    Attributes
    ----------
    epochs, batch_size, lr, momentum, weight_decay :
        Plain SGD settings.
    prox_mu : float
        FedProx proximal coefficient; 0 disables the term ``mu/2 * ||w - w_global||^2``.
    label_reference : tuple of float, optional
        A global label distribution (one share per class); when set, the client reports its
        Non-IID degree against it in ``ClientUpdate.metrics["noniid_degree"]`` (docs/noniid.md).
    """

    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    prox_mu: float = 0.0
    label_reference: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TrainTask:
    """The server asks ``client_id`` to train from ``params`` (global version ``base_version``)."""

    client_id: int
    params: torch.Tensor  # (num_params,) float32, the global model it starts from
    base_version: int
    plan: LocalTrainingPlan
    seed: int  # seeds the client's batch order, so a task's result does not depend on scheduling
    steps: tuple[int, int] | None = None  # run only local steps [first, stop) of the plan's schedule; None = all


@dataclass(frozen=True)
class ClientUpdate:
    """What a client returns: its parameter change and how it was obtained.

    Attributes
    ----------
    delta : torch.Tensor
        (num_params,) float32, local parameters minus ``TrainTask.params``.
    num_samples : int
        Local training set size, the usual aggregation weight.
    local_steps : int
        Optimiser steps taken (FedNova normalises by it).
    base_version : int
        Global version the update was trained from (staleness = current - base).
    metrics : dict
        e.g. ``train_loss``.
    """

    client_id: int
    delta: torch.Tensor
    num_samples: int
    local_steps: int
    base_version: int
    metrics: dict[str, float] = field(default_factory=dict)
