"""Where client training runs: the seam between the runner and local or cluster execution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from fedfleet.fl.messages import ClientUpdate, TrainTask
from fedfleet.fl.validation import UpdateSummary


class Backend(Protocol):
    """Executes training tasks and returns their updates in task order."""

    def run(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        ...

    def close(self) -> None:
        """Release what :meth:`run` started (processes, actors); a later :meth:`run` may start them again."""
        ...

    def set_model(self, model: nn.Module) -> None:
        """Train later tasks on ``model``'s architecture (a server hook replaced the global model)."""
        ...


@dataclass(frozen=True)
class LocalChecks:
    """What a worker needs to judge an update on its own (:func:`~fedfleet.fl.validation.summarise_update`).

    Attributes
    ----------
    num_samples : numpy.ndarray
        (num_clients,) the clients' registered data set sizes.
    reference_norm : float, optional
        The model norm the absolute norm bound is relative to; None: the task's global model's.
    max_norm_ratio : float
        ``validation.max_norm_ratio``.
    """

    num_samples: np.ndarray
    reference_norm: float | None
    max_norm_ratio: float


@runtime_checkable
class SummingBackend(Protocol):
    """A backend whose workers keep a round's deltas and return one weighted sum each.

    :meth:`train_held` trains the tasks and returns a summary per task (in task order); the workers
    keep the deltas. :meth:`sum_held` returns Σ_i weights[i] · delta_i over the held updates, where
    ``weights`` maps task positions to weights; each worker sends one vector, however many tasks it
    trained. A worker lost between the two calls trains its tasks again (their seeds fix the result).
    """

    def train_held(self, tasks: Sequence[TrainTask], checks: LocalChecks) -> list[UpdateSummary]:
        ...

    def sum_held(self, weights: dict[int, float]) -> torch.Tensor:
        ...


class ClientHook(Protocol):
    """Transforms an update after local training (e.g. compression, a simulated attacker)."""

    def __call__(self, task: TrainTask, update: ClientUpdate) -> ClientUpdate:
        ...
